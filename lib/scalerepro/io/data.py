"""Find, verify and load the upstream data files named in the registry.

Why this shape: replications must run offline (CI, air-gapped machines) and must never run on
bytes that differ from what the papers published. So every file is named once, in
``registry.yaml`` (shipped in the package; ``data/registry.yaml`` in the repository is a
symlink to it), with a commit-pinned URL and a sha256, and :func:`fetch` looks for it in
three places, in order:

1. ``$SCALEREPRO_DATA_DIR/<dataset>/<file>`` -- an offline mirror (read-only; for CI it is
   the shared data folder). Set but missing is an error: a typo must not silently fall back
   to the network.
2. ``<cache>/<dataset>/<file>`` with ``<cache>`` = ``$SCALEREPRO_CACHE`` or
   ``pooch.os_cache("scalerepro")``.
3. A download of the registry URL into the cache, with pooch checking the sha256.

Every copy is hashed before use. A mismatch is a :class:`ChecksumError` naming the file and
both hashes; a corrupt *cache* copy is deleted (it is ours, and keeping it would fail every
later run), a corrupt *mirror* copy is left for its owner to replace. There is no retry loop.

:func:`load` returns a validated :class:`pandas.DataFrame` with provenance in ``df.attrs``.
:func:`list_status` and :func:`verify` back ``scalerepro data list`` and
``scalerepro data verify``: they report, never download or delete.
"""

from __future__ import annotations

import csv
import difflib
import functools
import hashlib
import os
from pathlib import Path

import pandas as pd
import pooch
import yaml

from . import safe_pickle
from ..errors import ChecksumError, DataError, DataUnavailableError, MirrorNotFoundError, UnknownDatasetError
from .validate import InputError, validate_runs

__all__ = [
    "REGISTRY_PATH",
    "DataError",
    "UnknownDatasetError",
    "MirrorNotFoundError",
    "ChecksumError",
    "DataUnavailableError",
    "registry",
    "datasets",
    "files",
    "dataset_info",
    "mirror_dir",
    "cache_dir",
    "sha256_file",
    "fetch",
    "file_license",
    "load",
    "load_pickle_frame",
    "list_status",
    "verify",
]

REGISTRY_PATH = Path(__file__).with_name("registry.yaml")
MIRROR_ENV = "SCALEREPRO_DATA_DIR"
CACHE_ENV = "SCALEREPRO_CACHE"


MANIFESTS_DIR = Path(__file__).with_name("manifests")
# A manifest file's format, from its name: what load() and the registry test expect.
_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ipynb": "ipynb", ".md": "text",
            ".txt": "text", "": "text"}


@functools.cache
def registry() -> dict:
    """The parsed registry (``datasets`` -> name -> metadata and ``files``).

    A dataset with a ``manifest`` gets its ``files`` from that TSV (file, url, size, sha256,
    license per line); its ``files:`` block in the YAML, if any, only adds descriptions and
    columns to those files.
    """
    with open(REGISTRY_PATH, encoding="utf-8") as fh:
        parsed = yaml.safe_load(fh)
    for info in parsed["datasets"].values():
        if "manifest" in info:
            info["files"] = _manifest_files(info["manifest"], info.get("files") or {})
    return parsed


def _manifest_files(manifest: str, described: dict) -> dict:
    with open(MANIFESTS_DIR / manifest, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    files = {}
    for row in rows:
        name = row.pop("file")
        files[name] = dict(row, size=int(row["size"]), format=_FORMATS.get(Path(name).suffix, "text"),
                           **described.get(name, {}))
    return files


def datasets() -> list[str]:
    """Names of all registered datasets."""
    return list(registry()["datasets"])


def dataset_info(name: str) -> dict:
    """The registry entry of dataset ``name`` (citation, license, files, ...)."""
    known = registry()["datasets"]
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownDatasetError(f"unknown dataset {name!r}{hint}; registered: {', '.join(known)}")
    return known[name]


def files(name: str) -> list[str]:
    """File names of dataset ``name``, in registry order."""
    return list(dataset_info(name)["files"])


def _entry(name: str, file: str | None) -> tuple[str, dict]:
    info = dataset_info(name)
    file = file or info["default_file"]
    if file not in info["files"]:
        raise UnknownDatasetError(
            f"dataset {name!r} has no file {file!r}; its files: {', '.join(info['files'])}"
        )
    return file, info["files"][file]


def mirror_dir() -> Path | None:
    """The offline mirror from ``$SCALEREPRO_DATA_DIR``, or None when unset."""
    value = os.environ.get(MIRROR_ENV)
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise MirrorNotFoundError(
            f"{MIRROR_ENV}={value!r} is not an existing directory. Point it at the folder that "
            f"holds <dataset>/<file> (e.g. besiroglu2024_chinchilla/svg_extracted_data.csv), "
            f"or unset it to use the cache and download."
        )
    return path


def cache_dir() -> Path:
    """The download cache: ``$SCALEREPRO_CACHE`` or pooch's per-user cache for scalerepro."""
    value = os.environ.get(CACHE_ENV)
    return Path(value).expanduser() if value else Path(pooch.os_cache("scalerepro"))


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _located(name: str, file: str) -> tuple[str, Path] | None:
    """Where the copy :func:`fetch` would use lives: ("mirror"|"cache", path), or None."""
    mirror = mirror_dir()
    if mirror is not None and (mirror / name / file).is_file():
        return "mirror", mirror / name / file
    cached = cache_dir() / name / file
    return ("cache", cached) if cached.is_file() else None


def fetch(name: str, file: str | None = None) -> Path:
    """Path of a verified local copy of ``file`` of dataset ``name`` (default: its main file)."""
    file, entry = _entry(name, file)
    expected = entry["sha256"]
    found = _located(name, file)
    if found is not None:
        location, path = found
        actual = sha256_file(path)
        if actual == expected:
            return path
        if location == "mirror":
            raise ChecksumError(
                f"{path}: sha256 {actual} does not match the registry's {expected} for "
                f"{name}/{file}. The mirror copy is not the published file: replace it with "
                f"{entry['url']}."
            )
        path.unlink()
        raise ChecksumError(
            f"{path}: cached copy of {name}/{file} has sha256 {actual}, expected {expected}; "
            "the corrupt copy was deleted. Run again to download a fresh copy."
        )
    return _download(name, file, entry)


def _download(name: str, file: str, entry: dict) -> Path:
    target = cache_dir() / name
    mirror = os.environ.get(MIRROR_ENV)
    try:
        return Path(
            pooch.retrieve(
                entry["url"],
                known_hash=f"sha256:{entry['sha256']}",
                fname=file,
                path=target,
                progressbar=False,
            )
        )
    except ValueError as error:  # pooch's hash mismatch; it has already deleted the download
        if "hash" not in str(error).lower():
            raise
        raise ChecksumError(
            f"{name}/{file}: the download from {entry['url']} does not have the registry's "
            f"sha256 {entry['sha256']} and was deleted ({error})"
        ) from error
    except OSError as error:  # requests' RequestException (what pooch raises) is an OSError
        searched = [
            f"{MIRROR_ENV}: " + (f"{Path(mirror) / name / file} (not there)" if mirror else "not set"),
            f"cache: {target / file} (not there)",
            f"download: {entry['url']} failed ({type(error).__name__}: {error})",
        ]
        raise DataUnavailableError(
            f"data file {name}/{file} is not available. Searched:\n  - "
            + "\n  - ".join(searched)
            + f"\nTo provide it, either set {MIRROR_ENV} to a folder that contains "
            f"{name}/{file}, or download {entry['url']} into {target}/ "
            f"(expected sha256 {entry['sha256']})."
        ) from error


# Per CSV file: which columns a loader needs and how to check them (see validate_runs).
_CSV_CHECKS: dict[tuple[str, str], dict] = {
    ("besiroglu2024_chinchilla", "svg_extracted_data.csv"): dict(
        required=("Model Size", "Training FLOP", "loss"),
        positive=("Model Size", "Training FLOP", "loss"),
        unique=("Model Size", "Training FLOP"),
        roles={"N": "Model Size", "C": "Training FLOP", "loss": "loss"},
    ),
    **{
        ("brandfonbrener2024_loss_to_loss", f): dict(
            required=("id", "data", "params", "tokens", "iso_flop", "val_loss"),
            text=("id", "data"),
            positive=("params", "tokens", "iso_flop", "val_loss"),
            unique=("data", "params", "tokens"),
            roles={"N": "params", "D": "tokens", "C": "iso_flop", "loss": "val_loss"},
        )
        for f in ("sweep.csv", "extrapolation.csv")
    },
    ("eythor2024_chinchilla_isoflops", "chinchilla_isoflopslices_fig4_right.csv"): dict(
        required=("compute_flops", "n_params", "n_tokens", "loss"),
        positive=("compute_flops", "n_params", "n_tokens", "loss"),
        unique=("compute_flops", "n_params"),
        roles={"N": "n_params", "D": "n_tokens", "C": "compute_flops", "loss": "loss"},
    ),
    ("brandfonbrener2024_loss_to_loss", "opt_params_data.csv"): dict(
        required=("data", "loss_name", "kaplan", "A", "B", "E", "alpha", "beta", "extrap_pred", "extrap_loss"),
        text=("data", "loss_name", "kaplan"),
        positive=("A", "B", "alpha", "beta", "extrap_pred", "extrap_loss"),
        unique=("data", "loss_name", "kaplan"),
        roles={},
    ),
}


def _meanings(entry: dict, columns) -> dict[str, str]:
    """Column -> 'meaning (unit)' from the registry, for validation messages."""
    documented = entry.get("columns", {})
    out = {}
    for column in columns:
        doc = documented.get(column, {})
        out[column] = f"{doc.get('meaning', column)} ({doc.get('unit', '?')})"
    return out


def _provenance(df: pd.DataFrame, name: str, file: str, path: Path, entry: dict) -> pd.DataFrame:
    info = dataset_info(name)
    df.attrs.update(
        dataset=name,
        file=file,
        path=str(path),
        sha256=entry["sha256"],
        url=entry["url"],
        license=file_license(name, file),
        citation=info["citation"],
    )
    return df


def _load_csv(name: str, file: str, entry: dict, path: Path) -> pd.DataFrame:
    if (name, file) not in _CSV_CHECKS:
        raise DataError(
            f"{name}/{file} has no registered table checks; read it through its data set's "
            f"own loader (or fetch() for its path)"
        )
    try:
        df = pd.read_csv(path)
    except (ValueError, pd.errors.ParserError) as error:
        raise InputError(str(path), [f"cannot parse as CSV: {error}"]) from error
    checks = dict(_CSV_CHECKS[(name, file)])
    checks["required"] = _meanings(entry, checks["required"])
    issued = validate_runs(df, file=str(path), **checks)
    if name == "besiroglu2024_chinchilla":
        derived = pd.DataFrame({"N": df["Model Size"], "C": df["Training FLOP"]})
        derived["D"] = derived["C"] / (6.0 * derived["N"])
        df = pd.concat([derived, df], axis=1)
    elif name == "eythor2024_chinchilla_isoflops":
        derived = pd.DataFrame({"N": df["n_params"].astype(float), "C": df["compute_flops"].astype(float),
                                "D": df["n_tokens"].astype(float)})
        df = pd.concat([derived, df], axis=1)
    df.attrs["warnings"] = [str(w) for w in issued]
    return df


def load_pickle_frame(name: str, file: str | None = None) -> pd.DataFrame:
    """A pickled DataFrame (e.g. Porian et al.'s results), unpickled with the allow-list.

    Raises :class:`safe_pickle.UnsafePickleError` if the file references anything but the
    pandas/numpy classes a DataFrame needs, and :class:`InputError` if it is not a DataFrame
    or lacks the columns the registry documents.
    """
    file, entry = _entry(name, file)
    if entry["format"] != "pickle.xz":
        raise DataError(f"{name}/{file} is a {entry['format']} file, not a pickled DataFrame")
    path = fetch(name, file)
    df = safe_pickle.load_xz(path)
    if not isinstance(df, pd.DataFrame):
        raise InputError(str(path), [f"holds a {type(df).__name__}, not a pandas DataFrame"])
    documented = list(entry.get("columns", {}))
    numeric = [c for c, doc in entry.get("columns", {}).items() if doc.get("unit") == "nats/token"]
    issued = validate_runs(
        df,
        _meanings(entry, documented),
        str(path),
        text=[c for c in documented if c not in numeric],
        positive=numeric,
        roles={},
    )
    df.attrs["warnings"] = [str(w) for w in issued]
    return _provenance(df, name, file, path, entry)


def load(name: str, file: str | None = None) -> pd.DataFrame:
    """The validated table of ``file`` (default: the dataset's main file), with provenance.

    ``df.attrs`` holds dataset, file, path, sha256, url, license and citation (what
    ``Recorder.add_dataset`` records). ``besiroglu2024_chinchilla`` gains columns N, C and
    D = C / (6 N) in front of the original ones, ``eythor2024_chinchilla_isoflops`` columns
    N, C and D (float copies of n_params, compute_flops, n_tokens); other CSVs are returned as published.
    Pickled files go through :func:`load_pickle_frame`; non-tabular files (the SVG) are an
    error -- use :func:`fetch` for their path.
    """
    file, entry = _entry(name, file)
    if entry["format"] == "pickle.xz":
        return load_pickle_frame(name, file)
    if entry["format"] != "csv":
        raise DataError(f"{name}/{file} is a {entry['format']} file, not a table; use fetch() for its path")
    path = fetch(name, file)
    return _provenance(_load_csv(name, file, entry, path), name, file, path, entry)


def file_license(name: str, file: str) -> str:
    """The license a file is published under: its own (manifest row) or its dataset's."""
    return dataset_info(name)["files"][file].get("license") or dataset_info(name)["license"]


def _selected(name: str | None) -> list[tuple[str, str, dict]]:
    names = [name] if name is not None else datasets()
    return [(n, f, e) for n in names for f, e in dataset_info(n)["files"].items()]


def list_status(name: str | None = None) -> list[dict]:
    """One row per registered file: where its copy is (mirror, cache, or missing), no hashing.

    Row keys: dataset, file, status (``mirror`` | ``cache`` | ``missing``), path, size
    (registry bytes), optional, url, license. Backs ``scalerepro data list``.
    """
    rows = []
    for dataset, file, entry in _selected(name):
        found = _located(dataset, file)
        rows.append(
            dict(
                dataset=dataset,
                file=file,
                status=found[0] if found else "missing",
                path=str(found[1]) if found else None,
                size=entry["size"],
                optional=bool(entry.get("optional", False)),
                url=entry["url"],
                license=file_license(dataset, file),
            )
        )
    return rows


def verify(name: str | None = None) -> list[dict]:
    """Hash the copy :func:`fetch` would use of each file; report, never download or delete.

    Row keys: dataset, file, status (``ok`` | ``missing`` | ``checksum_mismatch`` |
    ``no_license``: a file must say under which license it may be used), location
    (``mirror`` | ``cache`` | None), path, sha256 (actual, None if missing), expected_sha256,
    license (the file's own or its dataset's), optional. Backs ``scalerepro data verify``; a missing optional file
    (the Chinchilla SVG) should not fail that command.
    """
    rows = []
    for dataset, file, entry in _selected(name):
        found = _located(dataset, file)
        actual = sha256_file(found[1]) if found else None
        license = file_license(dataset, file)
        if found is None:
            status = "missing"
        elif actual != entry["sha256"]:
            status = "checksum_mismatch"
        else:
            status = "ok" if license.strip() else "no_license"
        rows.append(
            dict(
                dataset=dataset,
                file=file,
                status=status,
                location=found[0] if found else None,
                path=str(found[1]) if found else None,
                sha256=actual,
                expected_sha256=entry["sha256"],
                license=license,
                optional=bool(entry.get("optional", False)),
            )
        )
    return rows
