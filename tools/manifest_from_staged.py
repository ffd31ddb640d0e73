"""Write a dataset's file manifest from a staged provenance table (``STAGED-*.md``).

Why: a staged data set can hold hundreds of files (Gadre et al.'s testbed has 212). Listing
each in ``registry.yaml`` by hand invites typos in sha256s; the shared folder's provenance
table is the checked source. This turns its rows into ``lib/scalerepro/io/manifests/<dataset>.tsv``
(pooch-style: one line per file), which the registry names with ``manifest:``.

    python tools/manifest_from_staged.py ../shared/data/STAGED-gadre2024.md

Rows whose repository column says "same" take the previous row's repository and commit.
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

MANIFESTS = Path(__file__).resolve().parents[1] / "lib" / "scalerepro" / "io" / "manifests"
ROW = re.compile(r"^\| (?P<local>[\w.-]+/\S+) \| (?P<repo>.+?) \| (?P<path>\S+) \| (?P<size>\d+) \| "
                 r"(?P<sha>[0-9a-f]{64}) \| (?P<license>.+?) \|\s*$")
REPO = re.compile(r"^(?P<owner_repo>[\w.-]+/[\w.-]+) @ (?P<commit>[0-9a-f]{40})$")


def staged_rows(table: Path) -> list[dict]:
    """The table's file rows, each with its resolved raw URL."""
    rows, previous = [], None
    for line in table.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if not match:
            continue
        repo = match["repo"].strip()
        source = previous if repo == "same" else REPO.match(repo)
        if source is None:
            raise SystemExit(f"{table}: cannot read the repository of {match['local']!r}: {repo!r}")
        previous = source
        dataset, file = match["local"].split("/", 1)
        rows.append(dict(
            dataset=dataset, file=file,
            url=f"https://raw.githubusercontent.com/{source['owner_repo']}/{source['commit']}/{match['path']}",
            size=match["size"], sha256=match["sha"], license=match["license"].strip(),
        ))
    return rows


def main(tables: list[str]) -> None:
    by_dataset: dict[str, list[dict]] = {}
    for table in tables:
        for row in staged_rows(Path(table)):
            by_dataset.setdefault(row.pop("dataset"), []).append(row)
    MANIFESTS.mkdir(parents=True, exist_ok=True)
    for dataset, rows in by_dataset.items():
        out = MANIFESTS / f"{dataset}.tsv"
        with open(out, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, ["file", "url", "size", "sha256", "license"], delimiter="\t",
                                    lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        print(f"{out}: {len(rows)} files")


if __name__ == "__main__":
    main(sys.argv[1:])
