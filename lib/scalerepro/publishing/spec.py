"""Replication specs: the single source of truth for a replication's design.

A spec (``replications/NAME.yaml``) names the notebook, its parameters with their types and
constraints, the run profiles and the published claims with the rule that decides whether a
reproduced number replicates them. Everything here runs before any kernel starts, so a typo
in ``-p`` or in the YAML costs a one-line error instead of a half-executed notebook.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from ..errors import SpecError

TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list}
CONSTRAINTS = ("min", "max", "exclusive_min", "exclusive_max", "choices")
RULES = ("abs_tol", "rel_tol", "in_published_interval", "published_in_reproduced_interval",
         "at_least", "not_testable", "at_most")
VERDICTS = ("replicated", "not_replicated", "inconclusive", "not_testable")
RESERVED_PARAMETERS = ("out_dir",)  # injected by the runner, never user-set


def replications_dir() -> Path:
    """Where specs live: $SCALEREPRO_REPLICATIONS_DIR, else the specs shipped in the package.

    The package's ``replications/`` and ``notebooks/`` are, in a checkout, symlinks to the
    repository's top-level folders, and in a built wheel copies of them. Resolving follows
    the links, so a checkout (editable install included) reads its own ``replications/``
    and a plain ``pip install`` works from any directory. Either way a spec's notebook path,
    relative to the folder above ``replications/``, finds the matching ``notebooks/``.
    """
    env = os.environ.get("SCALEREPRO_REPLICATIONS_DIR")
    if env:
        return Path(env).expanduser().resolve()
    return Path(str(resources.files("scalerepro") / "replications")).resolve()


@dataclass
class Parameter:
    """One notebook parameter: its type, default and constraints."""

    name: str
    type: str
    default: object
    help: str = ""
    constraints: dict = field(default_factory=dict)

    def describe_constraints(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in self.constraints.items()) or "none"

    def check(self, value, origin: str):
        """Return ``value`` coerced to this parameter's type, or raise naming the problem."""
        want = TYPES[self.type]
        if self.type == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if self.type == "int" and isinstance(value, bool) or not isinstance(value, want):
            raise SpecError(f"{origin}: parameter {self.name!r} must be {self.type}, "
                            f"got {value!r} ({type(value).__name__})")
        if self.type == "float" and not math.isfinite(value):
            raise SpecError(f"{origin}: parameter {self.name!r} must be a finite float, got {value!r}")
        c = self.constraints
        failed = (("min" in c and value < c["min"], f"min {c.get('min')} (value >= min)"),
                  ("max" in c and value > c["max"], f"max {c.get('max')} (value <= max)"),
                  ("exclusive_min" in c and value <= c["exclusive_min"],
                   f"exclusive_min {c.get('exclusive_min')} (value > {c.get('exclusive_min')})"),
                  ("exclusive_max" in c and value >= c["exclusive_max"],
                   f"exclusive_max {c.get('exclusive_max')} (value < {c.get('exclusive_max')})"),
                  ("choices" in c and value not in c["choices"], f"choices {c.get('choices')}"))
        for bad, constraint in failed:
            if bad:
                raise SpecError(f"{origin}: parameter {self.name!r} = {value!r} violates {constraint}")
        return value

    def parse(self, text: str, origin: str):
        """Parse a ``-p name=text`` value: YAML scalar syntax, then the type check.

        YAML 1.1 reads ``1e-3`` as a string and ``123`` as an int, so a float falls back to
        ``float(text)`` and a str parameter keeps the raw text whatever YAML thought it was.
        """
        if self.type == "str":
            return self.check(text, origin)
        try:
            value = yaml.safe_load(text) if text.strip() else text
        except yaml.YAMLError as exc:
            raise SpecError(f"{origin}: cannot parse parameter {self.name!r} value {text!r}: "
                            f"{exc.__class__.__name__}") from None
        if isinstance(value, str) and self.type in ("float", "int"):
            try:
                value = TYPES[self.type](text)
            except ValueError:
                pass  # check() reports the type mismatch
        return self.check(value, origin)


@dataclass
class Spec:
    """A loaded, validated replication spec."""

    name: str
    path: Path
    title: str
    notebook: Path
    parameters: dict[str, Parameter]
    profiles: dict[str, dict]
    claims: list[dict]
    datasets: list[str] = field(default_factory=list)
    paper: dict = field(default_factory=dict)
    purpose: str = ""
    original_reporting: dict = field(default_factory=dict)
    declared: dict = field(default_factory=dict)  # checklist answers no record can give

    def claim(self, claim_id: str) -> dict:
        for c in self.claims:
            if c["id"] == claim_id:
                return c
        raise SpecError(f"{self.path}: unknown claim id {claim_id!r}; "
                        f"valid: {', '.join(c['id'] for c in self.claims)}")

    def defaults(self) -> dict:
        return {name: p.default for name, p in self.parameters.items()}


def list_specs() -> list[str]:
    """Names of every spec in the replications directory, sorted."""
    d = replications_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def load_spec(name: str) -> Spec:
    """Load and validate ``replications/NAME.yaml``; an unknown name lists the valid ones."""
    names = list_specs()
    if name not in names:
        valid = ", ".join(names) or f"(none in {replications_dir()})"
        raise SpecError(f"unknown replication {name!r}; valid: {valid}")
    path = replications_dir() / f"{name}.yaml"
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: invalid YAML: {exc}") from None
    return _build(raw, path)


def _build(raw, path: Path) -> Spec:
    def fail(msg):
        raise SpecError(f"{path}: {msg}")

    if not isinstance(raw, dict):
        fail("top level must be a mapping")
    for key in ("name", "notebook", "claims"):
        if key not in raw:
            fail(f"missing required key {key!r}")
    if raw["name"] != path.stem:
        fail(f"name {raw['name']!r} does not match the file name {path.stem!r}")

    parameters = {}
    for pname, p in (raw.get("parameters") or {}).items():
        if pname in RESERVED_PARAMETERS:
            fail(f"parameter {pname!r} is reserved (the runner sets it)")
        if not isinstance(p, dict) or p.get("type") not in TYPES or "default" not in p:
            fail(f"parameter {pname!r} needs a type ({', '.join(TYPES)}) and a default")
        unknown = set(p) - {"type", "default", "help", *CONSTRAINTS}
        if unknown:
            fail(f"parameter {pname!r} has unknown keys {sorted(unknown)}")
        bounds = [k for k in CONSTRAINTS[:4] if k in p]
        if bounds and p["type"] not in ("int", "float"):
            fail(f"parameter {pname!r}: {', '.join(bounds)} only apply to int and float")
        if any(k in p and not _is_number(p[k]) for k in CONSTRAINTS[:4]):
            fail(f"parameter {pname!r}: {', '.join(bounds)} must be numbers")
        if "choices" in p and not (isinstance(p["choices"], list) and p["choices"]):
            fail(f"parameter {pname!r}: choices must be a non-empty list")
        param = Parameter(pname, p["type"], p["default"], p.get("help", ""),
                          {k: p[k] for k in CONSTRAINTS if k in p})
        param.default = param.check(p["default"], f"{path}: default")
        parameters[pname] = param

    profiles = raw.get("profiles") or {}
    for prof, values in profiles.items():
        for pname, value in (values or {}).items():
            if pname not in parameters:
                fail(f"profile {prof!r} sets unknown parameter {pname!r}; "
                     f"valid: {', '.join(parameters)}")
            parameters[pname].check(value, f"{path}: profile {prof!r}")

    claims, seen = raw["claims"] or [], set()
    if not isinstance(claims, list):
        fail("claims must be a list")
    for i, c in enumerate(claims):
        if not isinstance(c, dict):
            fail(f"claim #{i} must be a mapping")
        for key in ("id", "source", "rule"):
            if key not in c:
                fail(f"claim #{i} ({c.get('id', 'no id')}) is missing {key!r}")
        if c["id"] in seen:
            fail(f"duplicate claim id {c['id']!r}")
        seen.add(c["id"])
        _check_rule(c, lambda msg, cid=c["id"]: fail(f"claim {cid!r}: {msg}"))

    notebook = Path(raw["notebook"])
    if not notebook.is_absolute():
        notebook = path.parent.parent / notebook  # relative to the folder holding replications/
    return Spec(name=raw["name"], path=path, title=raw.get("title", raw["name"]),
                notebook=notebook, parameters=parameters,
                profiles={k: dict(v or {}) for k, v in profiles.items()}, claims=claims,
                datasets=list(raw.get("datasets") or []), paper=raw.get("paper") or {},
                purpose=raw.get("purpose", ""), original_reporting=raw.get("original_reporting") or {},
                declared=raw.get("declared") or {})


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _is_interval(x) -> bool:
    return isinstance(x, (list, tuple)) and len(x) == 2 and all(map(_is_number, x)) and x[0] <= x[1]


def _check_rule(claim: dict, fail):
    rule = claim["rule"]
    if not isinstance(rule, dict) or rule.get("kind") not in RULES:
        fail(f"rule kind must be one of {', '.join(RULES)}, got {rule!r}")
    kind = rule["kind"]
    if kind == "not_testable":
        return
    if kind in ("abs_tol", "rel_tol") and not (_is_number(rule.get("tol")) and rule["tol"] >= 0):
        fail(f"rule {kind} needs a non-negative number 'tol'")
    if kind != "in_published_interval" and not _is_number(claim.get("published")):
        fail(f"rule {kind} needs a numeric 'published' value")
    if kind == "in_published_interval" and not _is_interval(claim.get("published_interval")):
        fail("rule in_published_interval needs 'published_interval: [low, high]'")
    if "widen" in rule and not (_is_number(rule["widen"]) and rule["widen"] >= 0):
        fail("'widen' must be a non-negative number")
    if "max_interval_width" in rule and not (_is_number(rule["max_interval_width"])
                                             and rule["max_interval_width"] > 0):
        fail("'max_interval_width' must be a positive number")


def resolve_parameters(spec: Spec, profile: str | None = None, overrides: dict[str, str] | None = None) -> dict:
    """Defaults, then the profile, then ``-p`` overrides (strings), each validated."""
    values = spec.defaults()
    if profile is not None:
        if profile not in spec.profiles:
            raise SpecError(f"{spec.name}: unknown profile {profile!r}; "
                            f"valid: {', '.join(spec.profiles) or '(none)'}")
        values.update(spec.profiles[profile])
    for key, text in (overrides or {}).items():
        if key not in spec.parameters:
            raise SpecError(f"{spec.name}: unknown parameter {key!r}; "
                            f"valid: {', '.join(spec.parameters) or '(none)'}")
        values[key] = spec.parameters[key].parse(text, f"{spec.name}: -p {key}={text}")
    return values


def _le(a, b, scale) -> bool:
    """``a <= b`` up to float rounding: 2.1 is within tol 0.1 of 2.0 as the spec author meant."""
    return a <= b + 1e-12 * max(1.0, abs(a), abs(b), abs(scale))


def evaluate_claim(claim: dict, reproduced, interval=None) -> tuple[str, str]:
    """Apply the claim's rule to a reproduced value; return ``(verdict, why)``.

    ``why`` states the comparison that decided the verdict, so a reader can check it.
    """
    rule = claim["rule"]
    kind = rule["kind"]
    if kind == "not_testable":
        return "not_testable", rule.get("reason", "not testable with the available data")
    if reproduced is None or not _is_number(reproduced):
        return "inconclusive", "no reproduced value"
    if interval is not None and not _is_interval(interval):
        raise SpecError(f"claim {claim['id']!r}: interval must be [low, high] numbers, got {interval!r}")
    max_width = rule.get("max_interval_width")
    if max_width is not None:
        if interval is None:
            return "inconclusive", f"rule needs a reproduced interval no wider than {max_width:g}; none given"
        width = interval[1] - interval[0]
        if width > max_width:
            return "inconclusive", f"reproduced interval width {width:.4g} > max_interval_width {max_width:g}"
    p = claim.get("published")
    if kind == "abs_tol":
        diff = abs(reproduced - p)
        ok, why = _le(diff, rule["tol"], p), f"|{reproduced:.6g} - {p:.6g}| = {diff:.4g} vs tol {rule['tol']:g}"
    elif kind == "rel_tol":
        diff, allowed = abs(reproduced - p), rule["tol"] * abs(p)
        ok, why = _le(diff, allowed, p), (f"|{reproduced:.6g} - {p:.6g}| = {diff:.4g} vs "
                                    f"{rule['tol']:g} x |published| = {allowed:.4g}")
    elif kind == "in_published_interval":
        w = rule.get("widen", 0.0)
        lo, hi = claim["published_interval"][0] - w, claim["published_interval"][1] + w
        ok, why = _le(lo, reproduced, hi) and _le(reproduced, hi, lo), f"{reproduced:.6g} vs published interval [{lo:.6g}, {hi:.6g}]"
        if w:
            why += f" (widened by {w:g})"
    elif kind == "at_least":
        # A published threshold statement ("more than 10x"): the reproduced value must reach it.
        ok, why = _le(p, reproduced, p), f"{reproduced:.6g} vs threshold {p:.6g} (at least)"
    elif kind == "at_most":
        # A published upper bound ("within 2 points"): the reproduced value must not exceed it.
        ok, why = _le(reproduced, p, p), f"{reproduced:.6g} vs bound {p:.6g} (at most)"
    else:  # published_in_reproduced_interval
        if interval is None:
            return "inconclusive", "rule needs a reproduced interval; none given"
        ok, why = _le(interval[0], p, p) and _le(p, interval[1], p), f"published {p:.6g} vs reproduced interval " \
                                                   f"[{interval[0]:.6g}, {interval[1]:.6g}]"
    return ("replicated" if ok else "not_replicated"), why + (" -> within" if ok else " -> outside")
