"""Reducers, agreement, the significance tests and the classifier, on plain data."""

from __future__ import annotations

import pytest

from harness.analysis import Reference, compare, consistency_entry, reduce_case
from harness.analysis.observe import CaseObs
from harness.analysis.significance import fisher_drop, holm, mann_whitney_drop
from harness.analysis.rules import classify
from harness.verdict import VerdictClass
from harness.records import RunInfo
from harness.spec import AnalysisSpec, ReducerSpec


def obs(case_id: str, statuses: list[str], answers: list[str | None] | None = None, topic: str = "reservation",
        scores: list[float | None] | None = None, fp: str = "fp1") -> CaseObs:
    o = CaseObs(case_id, topic)
    o.statuses = list(statuses)
    o.answers = answers if answers is not None else ["same" if s in ("passed", "failed") else None for s in statuses]
    o.scores = scores if scores is not None else [1.0 if s == "passed" else 0.0 for s in statuses]
    o.serving[("primary", "m1", fp)] = len(statuses)
    return o


R = ReducerSpec.model_validate


@pytest.mark.parametrize("reducer, expected", [
    ("all", "failed"),
    ("majority", "passed"),
    ({"at_least_k": 3}, "passed"),
    ({"at_least_k": 4}, "failed"),
    ({"pass@k": 1}, "failed"),
    ({"pass@k": 2}, "passed"),
    ({"mean_score": 0.6}, "passed"),
    ({"mean_score": 0.8}, "failed"),
])
def test_reducers(reducer, expected):
    o = obs("c", ["failed", "passed", "passed", "error", "passed"])
    assert reduce_case(o, R(reducer)).status == expected


def test_infra_errors_never_count_as_failures():
    assert reduce_case(obs("c", ["error", "not_run"])).status == "error"
    assert reduce_case(obs("c", ["passed", "error"])).status == "passed"


def test_agreement_counts_distinct_answers_and_flags_more_scatter_than_baseline():
    now = obs("c", ["passed"] * 4, answers=["a", "a", "b", "c"])
    before = obs("c", ["passed"] * 4, answers=["a", "a", "a", "b"])
    entry = consistency_entry(now, None, before)
    assert entry["agreement"] == 0.5
    assert entry["distinct"] == [["a", 2], ["b", 1], ["c", 1]]
    assert entry["flag"] is True
    assert consistency_entry(before, None, now)["flag"] is False


def test_fisher_and_mann_whitney_are_one_sided_drops():
    assert fisher_drop(16, 4, 100, 0) < 0.01
    assert fisher_drop(20, 0, 16, 4) == 1.0
    assert fisher_drop(0, 0, 5, 0) is None
    assert mann_whitney_drop([0.2, 0.3, 0.1, 0.2], [0.9, 0.8, 0.95, 0.85]) < 0.05
    assert mann_whitney_drop([0.9, 0.8, 0.95, 0.85], [0.2, 0.3, 0.1, 0.2]) > 0.5
    adjusted = holm({"a": 0.01, "b": 0.04, "c": 0.03})
    assert adjusted == pytest.approx({"a": 0.03, "b": 0.06, "c": 0.06})


def _run(**kw) -> RunInfo:
    return RunInfo(run_id="r2", suite="s", git_sha=kw.pop("git_sha", "a1"), status=kw.pop("status", "complete"),
                   **kw)


def _reference(cases: dict[str, CaseObs], sha: str = "a1") -> Reference:
    return Reference("accepted baseline", "r1", sha, cases, history_rates={"reservation": [1.0]})


def test_canaries_the_judge_disagrees_with_make_judge_drift_not_a_regression():
    base = {f"c{i}": obs(f"c{i}", ["passed"] * 5) for i in range(4)}
    now = {f"c{i}": obs(f"c{i}", ["failed"] * 5) for i in range(4)}
    spec = AnalysisSpec()
    run = _run(git_sha="b2", extra={"judge": {"canaries": {"agreed": 1, "disagreed": 2, "errors": 0, "details": []}}})
    v = classify(run, compare(now, _reference(base), {}, spec), _reference(base), spec)
    assert v.cls is VerdictClass.JUDGE_DRIFT, v.headline
    assert any(e.kind == "judge_canaries" and e.figures["disagreed"] == 2 for e in v.evidence)
    # the same run with canaries that agree is a regression (code changed, same model)
    run.extra["judge"]["canaries"] = {"agreed": 3, "disagreed": 0, "errors": 0, "details": []}
    assert classify(run, compare(now, _reference(base), {}, spec), _reference(base), spec).cls is VerdictClass.REGRESSION


def test_an_aborted_run_is_infra_whatever_else_moved():
    base = {"c": obs("c", ["passed"] * 3)}
    now = {"c": obs("c", ["failed", "not_run", "not_run"])}
    spec = AnalysisSpec()
    run = _run(status="aborted", message="target unreachable: 5 consecutive failures", git_sha="b2")
    v = classify(run, compare(now, _reference(base), {}, spec), _reference(base), spec)
    assert v.cls is VerdictClass.INFRA
    assert "target unreachable" in v.headline


def test_a_topic_drop_the_healthy_history_already_showed_is_not_a_topic_finding():
    base = {f"c{i}": obs(f"c{i}", ["passed"] * 5) for i in range(4)}
    now = {f"c{i}": obs(f"c{i}", ["passed"] * 5) for i in range(4)}
    now["c0"] = obs("c0", ["failed"] * 5)
    spec = AnalysisSpec()
    ref = _reference(base)
    ref.history_rates = {"reservation": [1.0, 0.7, 0.95]}  # a healthy day went as low as 70%
    v = classify(_run(git_sha="b2"), compare(now, ref, {}, spec), ref, spec)
    assert not any(e.kind == "pass_rate" for e in v.evidence)
    # the case that always passed and now always fails is still named on its own
    assert v.cls is VerdictClass.REGRESSION
    assert any(e.kind == "cases" and e.figures["cases"] == ["c0"] for e in v.evidence)
    ref.history_rates = {"reservation": [1.0]}
    assert any(e.kind == "pass_rate" for e in classify(_run(git_sha="b2"), compare(now, ref, {}, spec), ref, spec).evidence)


def test_first_run_without_reference_is_ok():
    spec = AnalysisSpec()
    ref = Reference("trailing window", None, None, {})
    v = classify(_run(), compare({"c": obs("c", ["passed"])}, ref, {}, spec), ref, spec)
    assert v.cls is VerdictClass.OK and v.baseline_run is None


def test_a_first_run_with_a_few_infra_errors_says_so_in_its_headline():
    spec = AnalysisSpec()
    ref = Reference("trailing window", None, None, {})
    now = {f"c{i}": obs(f"c{i}", ["passed"]) for i in range(39)}
    now["c39"] = obs("c39", ["error"])  # 1 of 40 calls: under the infra threshold
    v = classify(_run(), compare(now, ref, {}, spec), ref, spec)
    assert v.cls is VerdictClass.NOISE
    assert v.headline == ("noise: no baseline or history to compare with yet; 0 case(s) failed; "
                             "1 of 40 calls did not reach a model (below the infra threshold)")
