"""Each rule of the verdict table on its own (fires / stays silent), the table's order, and the
Verdict type's stored shape: classes carry exit code, colour and wording; older and malformed
stored verdicts read without an exception."""

from __future__ import annotations

import json

import pytest

from harness.analysis import Reference, compare
from harness.analysis.observe import CaseObs
from harness.analysis.rules import (
    EVIDENCE,
    RULES,
    Facts,
    classify,
    rule_fallback_route,
    rule_infra,
    rule_judge_down,
    rule_judge_drift,
    rule_new_fingerprint,
    rule_noise,
    rule_ok,
    rule_regression,
    rule_same_code_moved,
)
from harness.errors import ExitCode
from harness.records import RunInfo
from harness.spec import AnalysisSpec
from harness.verdict import Evidence, Verdict, VerdictClass

SPEC = AnalysisSpec()


def obs(case_id: str, statuses: list[str], *, route: str = "primary", model: str = "m1", fp: str = "fp1",
        answer: str = "same") -> CaseObs:
    o = CaseObs(case_id, "reservation")
    o.statuses = list(statuses)
    o.answers = [answer if s in ("passed", "failed") else None for s in statuses]
    o.scores = [1.0 if s == "passed" else 0.0 for s in statuses]
    o.serving[(route, model, fp)] = len(statuses)
    return o


def run(sha: str | None = "a1", **kw) -> RunInfo:
    return RunInfo(run_id="r2", suite="s", git_sha=sha, status=kw.pop("status", "complete"), **kw)


def ref(cases: dict[str, CaseObs], sha: str | None = "a1") -> Reference:
    return Reference("accepted baseline", "r1", sha, cases, history_rates={"reservation": [1.0]})


def facts(now: dict[str, CaseObs], reference: Reference, r: RunInfo | None = None) -> Facts:
    return Facts(r or run(), compare(now, reference, {}, SPEC), reference, SPEC)


def green(n: int = 4, repeats: int = 5, **kw) -> dict[str, CaseObs]:
    return {f"c{i}": obs(f"c{i}", ["passed"] * repeats, **kw) for i in range(n)}


def red(n: int = 4, repeats: int = 5, **kw) -> dict[str, CaseObs]:
    return {f"c{i}": obs(f"c{i}", ["failed"] * repeats, **kw) for i in range(n)}


# ---------------------------------------------------------------- the table


def test_rules_are_tried_in_order_of_blame_and_the_last_always_finds():
    assert [r.__name__ for r in RULES] == [
        "rule_infra", "rule_judge_down", "rule_fallback_route", "rule_primary_down", "rule_judge_drift", "rule_repointed",
        "rule_new_fingerprint", "rule_same_code_moved", "rule_regression", "rule_noise", "rule_ok"]
    f = facts(green(), ref(green()))
    assert all(rule(f) is None for rule in RULES[:-1])
    assert RULES[-1](f) is not None


def test_evidence_is_gathered_once_whatever_the_class():
    f = facts(red(), ref(green()), run("b2", extra={"judge": {"canaries": {"agreed": 1, "disagreed": 2}}}))
    first = f.evidence
    assert f.evidence is first  # cached: the rules share one list
    kinds = [e.kind for e in first]
    # judge drift wins, but the drop that would have made it a regression is still evidence
    assert classify(f.run, f.cmp, f.ref, SPEC).cls is VerdictClass.JUDGE_DRIFT
    assert kinds == ["judge_canaries", "pass_rate", "cases"]
    assert len(EVIDENCE) == 14


# ---------------------------------------------------------------- one rule at a time


def test_rule_infra():
    base = ref(green())
    aborted = run(status="aborted", message="target unreachable: 5 consecutive failures")
    found = rule_infra(facts(green(), base, aborted))
    assert found.cls is VerdictClass.INFRA and found.headline == "infra: target unreachable: 5 consecutive failures"
    assert rule_infra(facts(green(), base, run(status="aborted"))).headline.startswith("infra: 0% of calls")
    errors = {f"c{i}": obs(f"c{i}", ["error"] * 5) for i in range(4)}
    errors["c0"] = obs("c0", ["passed"] * 5)
    found = rule_infra(facts(errors, base))
    assert found.cls is VerdictClass.INFRA
    assert found.headline == "infra: 75% of calls did not reach a model — not counted against the agent"
    assert rule_infra(facts(green(), base)) is None


def test_rule_judge_down():
    """Cases whose judge could not answer are errors of the judge, not calls that missed a model."""
    base = ref(green())
    errors = {f"c{i}": obs(f"c{i}", ["error"] * 5) for i in range(4)}
    down = run(extra={"judge": {"stats": {"unavailable_cases": 20, "down": "the judge is down"}}})
    f = facts(errors, base, down)
    assert rule_infra(f) is None and f.bad == 0
    found = rule_judge_down(f)
    assert found.cls is VerdictClass.INFRA
    assert found.headline == ("infra: the judge could not answer for 20 of 20 calls (100%) — judged checks not "
                              "counted against the agent")
    assert classify(f.run, f.cmp, f.ref, SPEC).cls is VerdictClass.INFRA
    assert rule_judge_down(facts(green(), base)) is None


def test_rule_fallback_route():
    base = ref(green())
    moved = red(route="fallback", model="m2", fp="fp9")
    found = rule_fallback_route(facts(moved, base))
    assert found.cls is VerdictClass.INFRA
    assert found.headline == ("infra: the primary route was down; fallback served 100% of replies — changes follow "
                              "the provider, not the agent")
    # the fallback served, but nothing moved: not infra
    assert rule_fallback_route(facts(green(route="fallback", model="m2", fp="fp9"), base)) is None
    assert rule_fallback_route(facts(red(), base)) is None


def test_rule_judge_drift():
    base = ref(green())
    r = run(extra={"judge": {"canaries": {"agreed": 3, "disagreed": 1}}})
    found = rule_judge_drift(facts(green(), base, r))
    assert found.cls is VerdictClass.JUDGE_DRIFT
    assert found.headline == "judge drift: the judge disagreed with 1 labelled canaries — judge scores are not trusted"
    r.extra["judge"]["canaries"]["disagreed"] = 0
    assert rule_judge_drift(facts(green(), base, r)) is None
    assert rule_judge_drift(facts(green(), base, run(extra={"judge": "not a dict"}))) is None


def test_rule_new_fingerprint():
    base = ref(green())
    found = rule_new_fingerprint(facts(green(fp="fp2"), base))
    assert found == (VerdictClass.DRIFT, "drift: the model changed (new fingerprint); no answers moved yet")
    found = rule_new_fingerprint(facts(red(fp="fp2", answer="other"), base, run("b2")))
    assert found.cls is VerdictClass.DRIFT
    assert found.headline.startswith("drift: the model changed (new fingerprint); answers changed in c0, c1, c2, c3")
    assert "; quality dropped in topic reservation — cases c0, c1, c2, c3" in found.headline
    assert rule_new_fingerprint(facts(red(), base)) is None


def test_rule_same_code_moved():
    base = ref(green(), sha="a1")
    found = rule_same_code_moved(facts(red(), base, run("a1")))
    assert found.cls is VerdictClass.DRIFT
    assert found.headline == "drift: same code (a1), but quality dropped in topic reservation — cases c0, c1, c2, c3"
    assert rule_same_code_moved(facts(red(), base, run("b2"))) is None  # code changed: not this rule
    assert rule_same_code_moved(facts(red(), base, run(None))) is None  # code unknown: not the same code
    assert rule_same_code_moved(facts(green(), base, run("a1"))) is None  # nothing moved


def test_rule_regression():
    found = rule_regression(facts(red(), ref(green(), sha="a1"), run("b2")))
    assert found.cls is VerdictClass.REGRESSION
    assert found.headline == ("regression: significant drop in topic reservation — cases c0, c1, c2, c3 with the "
                              "same model; code changed a1 → b2")
    unknown = rule_regression(facts(red(), ref(green(), sha=None), run(None)))
    assert unknown.headline.endswith("with the same model; code version unknown")
    assert rule_regression(facts(green(), ref(green(), sha="a1"), run("b2"))) is None


def test_rule_noise():
    base = ref(green(repeats=1))
    now = green(repeats=1)
    now["c0"] = obs("c0", ["failed"])  # one repeat: a flip, not a significant drop
    found = rule_noise(facts(now, base))
    assert found.cls is VerdictClass.NOISE
    assert found.headline == ("noise: 1 case(s) differ from the accepted baseline within the variance history "
                              "shows: c0")
    assert rule_noise(facts(green(repeats=1), base)) is None


def test_rule_ok():
    base = ref(green())
    assert rule_ok(facts(green(), base)) == (VerdictClass.OK, "ok: matches the accepted baseline")
    assert rule_ok(facts({}, base)).headline == "ok: nothing ran"
    known = green()
    known["c0"] = obs("c0", ["failed"] * 5)
    before = green()
    before["c0"] = obs("c0", ["failed"] * 5)
    assert rule_ok(facts(known, ref(before))).headline == (
        "ok: matches the accepted baseline (1 case(s) fail as they did before: c0)")
    first = Reference("trailing window", None, None, {})
    assert rule_ok(facts(green(), first)).headline == "ok: no baseline or history to compare with yet"


def test_classify_builds_a_typed_verdict_with_the_figures_surfaces_need():
    v = classify(run("b2"), compare(red(), ref(green()), {}, SPEC), ref(green()), SPEC)
    assert isinstance(v, Verdict) and v.cls is VerdictClass.REGRESSION
    assert v.baseline_run == "r1" and v.reference == "accepted baseline" and v.same_code is False
    assert v.infra_share == 0.0 and v.topics["reservation"]["pass_rate"] == 0.0
    assert v.case_ids == ["c0", "c1", "c2", "c3"]
    assert [c["change"] for c in v.changed_cases] == ["verdict"] * 4
    assert v.exit_code(ExitCode.OK) is ExitCode.FAILED


# ---------------------------------------------------------------- the type


@pytest.mark.parametrize("cls, checks, expected", [
    (VerdictClass.INFRA, ExitCode.OK, ExitCode.UNREACHABLE),
    (VerdictClass.INFRA, ExitCode.FAILED, ExitCode.UNREACHABLE),
    (VerdictClass.REGRESSION, ExitCode.OK, ExitCode.FAILED),
    (VerdictClass.DRIFT, ExitCode.OK, ExitCode.FAILED),
    (VerdictClass.JUDGE_DRIFT, ExitCode.OK, ExitCode.FAILED),
    (VerdictClass.NOISE, ExitCode.FAILED, ExitCode.FAILED),
    (VerdictClass.OK, ExitCode.OK, ExitCode.OK),
    (VerdictClass.OK, ExitCode.FAILED, ExitCode.FAILED),
])
def test_a_class_carries_its_exit_code(cls, checks, expected):
    assert cls.exit_code(checks) is expected


def test_every_class_carries_its_colour_and_wording():
    for c in VerdictClass:
        assert c.style and c.tone in {"pass", "fail", "drift", "err", "other"} and c.emoji.startswith(":")
        assert c.label and c.description
        assert str(c) == c.value and f"{c}" == c.value and json.dumps(c) == f'"{c.value}"'
    assert {c.value for c in VerdictClass if c.healthy} == {"ok", "noise"}
    assert {c.value for c in VerdictClass if c.alerting} == {"infra", "fallback", "judge_drift", "drift", "regression"}
    assert VerdictClass.OK.alert is None and VerdictClass.REGRESSION.alert == "error"


def test_the_stored_shape_round_trips():
    v = classify(run("b2"), compare(red(), ref(green()), {}, SPEC), ref(green()), SPEC)
    v.consistency = {"c0": {"agreement": 1.0, "flag": False}}
    stored = json.loads(json.dumps(v.to_dict()))
    assert list(stored)[:6] == ["class", "headline", "evidence", "topics", "changed_cases", "baseline_run"]
    assert stored["class"] == "regression" and stored["evidence"][0] == {
        "kind": "pass_rate", "detail": v.evidence[0].detail, "topic": "reservation"}
    back = Verdict.from_dict(stored)
    assert back == v
    assert back.to_dict() == stored


def test_verdicts_stored_by_older_versions_still_read():
    v = Verdict.from_stored({"kind": "drift", "evidence": ["wording changed"], "confidence": 0.9,
                             "baseline_run": {"run_id": "r1"}})
    assert v.cls is VerdictClass.DRIFT and v.note is None
    assert v.evidence == [Evidence("", "wording changed")]
    assert v.baseline_run == "r1" and v.changed_cases is None
    assert v.extra == {"confidence": 0.9} and v.to_dict()["confidence"] == 0.9
    assert Verdict.from_stored("regression").cls is VerdictClass.REGRESSION
    assert Verdict.from_stored("passed").cls is VerdictClass.OK
    assert Verdict.from_stored(None) is None and Verdict.from_stored({}) is None
    assert Verdict.of_extra({"verdict": {"class": "noise"}}).cls is VerdictClass.NOISE
    assert Verdict.of_extra("not a dict") is None


@pytest.mark.parametrize("stored, note", [
    ({"class": "mystery", "headline": "from the future"}, "unknown verdict class 'mystery'"),
    ({"headline": "no class"}, "the stored verdict has no class"),
    ([1, 2], "the stored verdict is a list, not an object"),
    (42, "the stored verdict is a int, not an object"),
    ({"class": 7, "topics": "x", "evidence": 5}, "the stored verdict has no class; its topics could not be read"),
])
def test_a_malformed_stored_verdict_reads_as_unknown_with_a_note(stored, note):
    v = Verdict.from_stored(stored)
    assert v.cls is VerdictClass.UNKNOWN and v.note == note
    assert v.headline
    assert not v.cls.healthy and v.exit_code(ExitCode.OK) is ExitCode.OK
    assert v.to_dict()["note"] == note


def test_a_known_class_with_an_unreadable_field_keeps_its_class_and_says_so():
    v = Verdict.from_stored({"class": "noise", "headline": "fine", "topics": ["not", "a", "dict"]})
    assert v.cls is VerdictClass.NOISE and v.topics == {} and v.note == "its topics could not be read"


def test_a_verdict_from_counts_alone():
    assert Verdict.from_counts("complete", None, {"passed": 3}).cls is VerdictClass.OK
    failed = Verdict.from_counts("complete", None, {"passed": 2, "failed": 1})
    assert failed.cls is VerdictClass.FAILED and failed.headline == "2/3 passed, 1 failed"
    infra = Verdict.from_counts("aborted", "breaker open", {"passed": 1, "not_run": 2})
    assert infra.cls is VerdictClass.INFRA and infra.headline == "breaker open (1/1 passed, 2 not run)"
    stored, derived = Verdict.for_run("complete", None, {"verdict": {"class": "drift"}}, {"passed": 1})
    assert stored.cls is VerdictClass.DRIFT and not derived and stored.headline == "1/1 passed"
    plain, derived = Verdict.for_run("complete", None, {"verdict": {"headline": "no class"}}, {"passed": 1})
    assert plain.cls is VerdictClass.OK and derived
