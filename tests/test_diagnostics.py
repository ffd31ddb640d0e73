"""The diagnostics record: the contract other analyses and reports rely on."""

import pytest

from scalerepro.diagnostics import CODES, Diagnostic, DiagnosticError, sorted_by_severity, worst


def test_record_round_trips_and_names_its_code():
    d = Diagnostic("collinear_design", "error", "D/N is constant", ["N", "D"])
    assert d.record() == {"code": "collinear_design", "severity": "error", "message": "D/N is constant",
                           "subjects": ["N", "D"]}
    assert Diagnostic.from_record(d.record()) == d
    assert "[collinear_design]" in str(d)


@pytest.mark.parametrize("code, severity", [("no_such_check", "error"), ("extrapolation", "fatal")])
def test_unknown_code_or_severity_is_refused(code, severity):
    with pytest.raises(DiagnosticError):
        Diagnostic(code, severity, "x")


def test_worst_and_order():
    ds = [Diagnostic("extrapolation", "warning", "w"), Diagnostic("dropped_points", "info", "i"),
          Diagnostic("not_identified", "error", "e")]
    assert worst(ds) == "error" and worst(ds[:2]) == "warning" and worst([]) is None
    assert [d.severity for d in sorted_by_severity(ds)] == ["error", "warning", "info"]
    assert worst([d.record() for d in ds[1:2]]) == "info"


def test_issue_codes_are_known():
    # the codes named by the own-runs and approaches contracts
    for code in ("duplicate_nd", "design_points", "collinear_design", "implausible_parameter",
                 "not_identified", "influential_run", "holdout_ties", "extrapolation"):
        assert code in CODES
