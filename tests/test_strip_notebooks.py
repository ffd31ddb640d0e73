"""`make strip-notebooks` (tools/strip_notebooks.py) leaves what the committed-notebook test accepts."""

import importlib.util
import json
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("strip_notebooks", ROOT / "tools" / "strip_notebooks.py")
strip_notebooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(strip_notebooks)


def executed_notebook() -> nbformat.NotebookNode:
    """What papermill leaves: outputs, counts, its metadata, and (after a copy-paste) a repeated id."""
    cells = [new_code_cell("x = 1", metadata={"tags": ["parameters"], "papermill": {"duration": 0.1}}),
             new_markdown_cell("# Title"),
             new_code_cell("print(x)", execution_count=2, outputs=[new_output("stream", text="1\n")])]
    nb = new_notebook(cells=cells, metadata={"papermill": {"parameters": {}}})
    cells[2]["id"] = cells[0]["id"]
    cells[0].execution_count = 1
    return nb


def test_stripping_leaves_no_outputs_counts_run_metadata_or_repeated_ids(tmp_path):
    path = tmp_path / "executed.ipynb"
    path.write_text(json.dumps(executed_notebook()))  # as written, repeated id and all
    assert strip_notebooks.main([str(path)]) == 0
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert "papermill" not in nb.metadata and all("papermill" not in c.metadata for c in nb.cells)
    assert code[0].metadata["tags"] == ["parameters"]
    assert len({c.id for c in nb.cells}) == len(nb.cells)


def test_committed_notebooks_are_left_byte_for_byte(tmp_path):
    for source in sorted((ROOT / "notebooks").glob("*.ipynb")):
        copy = tmp_path / source.name
        copy.write_bytes(source.read_bytes())
        strip_notebooks.main([str(copy)])
        assert copy.read_bytes() == source.read_bytes(), source.name
