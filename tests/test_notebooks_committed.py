"""The notebooks as committed: valid nbformat, outputs stripped, parameters cell first."""

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
    assert "parameters" in code[0].metadata.get("tags", []), "first code cell must be tagged 'parameters'"
    assert len({c.id for c in nb.cells}) == len(nb.cells), "cell ids must be unique"
