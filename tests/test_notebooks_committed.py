"""The notebooks as committed: valid nbformat, outputs stripped, and each opens on a title and a
line per parameter (markdown) before its one cell tagged ``parameters``."""

import ast
import re
import warnings
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_valid_stripped_and_parameterized(path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nbformat only warns about a cell without an id, for now
        nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
        nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "outputs must be stripped"
    assert len({c.id for c in nb.cells}) == len(nb.cells), "cell ids must be unique"

    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and nb.cells[tagged[0]].cell_type == "code", "one code cell tagged 'parameters'"
    before = nb.cells[:tagged[0]]
    assert before and all(c.cell_type == "markdown" for c in before), \
        "only markdown (the title and the parameters explained) comes before the parameters cell"
    text = "\n".join(c.source for c in before)
    assert re.match(r"# \S", text), "the notebook opens on a '# title'"
    names = [t.id for node in ast.parse(nb.cells[tagged[0]].source).body if isinstance(node, ast.Assign)
             for t in node.targets]
    unexplained = [n for n in names if f"`{n}`" not in text]
    assert names and not unexplained, f"parameters not explained before the parameters cell: {unexplained}"
