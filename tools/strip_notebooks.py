"""`make strip-notebooks`: notebooks as they are committed.

No outputs and no execution counts (a notebook's results belong in ``out/``, written by
``scalerepro run``), no run metadata (papermill's, widget state), and every cell with a
unique id, which nbformat requires and JupyterLab relies on. Files already stripped are
left byte for byte as they are. ``tests/test_notebooks_committed.py`` checks the result.

Usage: ``python tools/strip_notebooks.py NOTEBOOK.ipynb ...``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
from nbformat.corpus.words import generate_corpus_id

RUN_METADATA = ("papermill", "widgets", "execution")


def strip(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    seen = set()
    for cell in nb.cells:
        if cell.get("id") in seen or not cell.get("id"):
            cell["id"] = generate_corpus_id()
        seen.add(cell["id"])
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        for key in RUN_METADATA:
            cell.metadata.pop(key, None)
    for key in RUN_METADATA:
        nb.metadata.pop(key, None)
    return nb


def main(paths: list[str]) -> int:
    if not paths:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    for path in map(Path, paths):
        before = path.read_text(encoding="utf-8")
        # from_dict, not reads: reads would 'repair' repeated ids itself, with a warning
        nb = strip(nbformat.from_dict(json.loads(before)))
        nbformat.validate(nb)
        after = nbformat.writes(nb)
        if not after.endswith("\n"):
            after += "\n"
        if after != before:
            path.write_text(after, encoding="utf-8")
            print(f"stripped {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
