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
    rule_drift,
    rule_failing,
    rule_fallback_route,
    rule_infra,
    rule_judge_down,
    rule_judge_drift,
    rule_mixed,
    rule_noise,
    rule_ok,
    rule_regression,
)
from harness.errors import ExitCode
from harness.records import RunInfo
from harness.spec import AnalysisSpec
from harness.verdict import Evidence, Verdict, VerdictClass

SPEC = AnalysisSpec()


def obs(case_id: str, statuses: list[str], *, route: str = "primary", model: str = "m1", fp: str = "fp1",
        answer: str = "same", inputs: str | None = None) -> CaseObs:
    o = CaseObs(case_id, "reservation")
    o.note_inputs(inputs)
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
        "rule_mixed", "rule_drift", "rule_regression", "rule_failing", "rule_noise", "rule_ok"]
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
    assert kinds == ["judge_canaries", "pass_rate", "cases", "behaviour_outcome_worse", "attribution"]
    assert len(EVIDENCE) == 15


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


def many(n: int, statuses: list[str], **kw) -> dict[str, CaseObs]:
    return {f"c{i}": obs(f"c{i}", statuses, **kw) for i in range(n)}


def test_rule_drift_new_fingerprint_with_behaviour_unchanged():
    base = ref(green(inputs="in1"))
    found = rule_drift(facts(green(fp="fp2", inputs="in1"), base))
    assert found == (VerdictClass.DRIFT, "drift (model changed, behaviour unchanged): new fingerprint; no answers moved yet")
    assert rule_drift(facts(green(inputs="in1"), base)) is None


def test_rule_drift_says_the_direction_whichever_way_the_pass_rate_went():
    base = ref(many(40, ["passed"], inputs="in1"))
    # worse: 20 of 40 cases now fail with the same inputs; a git sha that changed does not matter
    now = many(40, ["passed"], inputs="in1")
    now.update(many(20, ["failed"], answer="other", inputs="in1"))
    found = rule_drift(facts(now, base, run("b2")))
    assert found.cls is VerdictClass.DRIFT and found.headline.startswith("drift (worse): 20 case(s) now fail")
    # better
    before = many(40, ["passed"], inputs="in1")
    before.update(many(20, ["failed"], inputs="in1"))
    found = rule_drift(facts(many(40, ["passed"], answer="other", inputs="in1"), ref(before)))
    assert found.headline.startswith("drift (better): 20 case(s) now pass")
    # the pass rate held, the answers moved
    found = rule_drift(facts(many(40, ["passed"], answer="quite another", inputs="in1"),
                             ref(many(40, ["passed"], inputs="in1"))))
    assert found.headline.startswith("drift (changed, pass rate unchanged): answers changed in 40 of 40 cases")
    # our inputs changed: not the model's doing
    assert rule_drift(facts(many(40, ["failed"], answer="x", inputs="in2"), base)) is None


def test_rule_mixed_names_both_sides():
    base = ref(many(40, ["passed"], inputs="in1"))
    now = {k: obs(k, ["passed"], answer="model moved", inputs="in1") for k in list(base.cases)[:20]}
    now.update({k: obs(k, ["failed"], answer="ours", inputs="in2") for k in list(base.cases)[20:]})
    found = rule_mixed(facts(now, base))
    assert found.cls is VerdictClass.MIXED
    assert "the model moved with the same inputs (answers changed in 20 of 20 cases" in found.headline
    assert ": c0, c1, c10" in found.headline
    assert "our inputs changed (20 case(s) now fail" in found.headline and "c20" in found.headline
    # both changed in the same cases: ask `harness attribute`
    both = many(40, ["failed"], answer="x", inputs="in2", fp="fp2")
    found = rule_mixed(facts(both, base))
    assert found.cls is VerdictClass.MIXED and "harness attribute r2" in found.headline
    assert rule_mixed(facts(many(40, ["passed"], answer="model moved", inputs="in1"), base)) is None


def test_rule_regression_is_our_inputs_not_the_git_sha():
    base = ref(many(40, ["passed"], inputs="in1"), sha="a1")
    found = rule_regression(facts(many(40, ["failed"], answer="x", inputs="in2"), base, run("a1")))
    assert found.cls is VerdictClass.REGRESSION
    assert found.headline.startswith("regression: significant drop in topic reservation")
    assert "our inputs changed in 40 case(s) and the model did not" in found.headline
    # same inputs: never ours, whatever git says
    assert rule_regression(facts(many(40, ["failed"], answer="x", inputs="in1"), base, run("b2"))) is None
    # results stored before fingerprints: the git sha is the fallback
    legacy = rule_regression(facts(red(), ref(green(), sha="a1"), run("b2")))
    assert legacy.headline.endswith("the code changed and the model did not; git a1 → b2")


def test_rule_failing_first_run_and_known_failures():
    first = Reference("trailing window", None, None, {})
    now = green()
    now["c0"] = obs("c0", ["failed"] * 5)
    found = rule_failing(facts(now, first))
    assert found == (VerdictClass.FAILING, "failing: 1 of 4 case(s) fail: c0; no baseline or history to compare "
                                           "with yet")
    before = green()
    before["c0"] = obs("c0", ["failed"] * 5)
    found = rule_failing(facts(now, ref(before)))
    assert found.headline == "failing: 1 of 4 case(s) fail: c0; nothing moved against the accepted baseline"
    assert rule_failing(facts(green(), ref(green()))) is None
    assert VerdictClass.FAILING.healthy and VerdictClass.FAILING.alert == "error"


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
    first = Reference("trailing window", None, None, {})
    assert rule_ok(facts(green(), first)).headline == "ok: no baseline or history to compare with yet"
    # a run with a failing case is never ok: rule_failing comes first
    known = green()
    known["c0"] = obs("c0", ["failed"] * 5)
    assert classify(run(), compare(known, first, {}, SPEC), first, SPEC).cls is VerdictClass.FAILING


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
    assert {c.value for c in VerdictClass if c.healthy} == {"ok", "noise", "failing"}
    assert {c.value for c in VerdictClass if c.alerting} == {"infra", "fallback", "judge_drift", "drift", "mixed",
                                                             "regression", "failing"}
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
    assert failed.cls is VerdictClass.FAILING and failed.headline == "2/3 passed, 1 failed"
    assert Verdict.from_dict({"class": "failed"}).cls is VerdictClass.FAILING  # stored by older versions
    infra = Verdict.from_counts("aborted", "breaker open", {"passed": 1, "not_run": 2})
    assert infra.cls is VerdictClass.INFRA and infra.headline == "breaker open (1/1 passed, 2 not run)"
    stored, derived = Verdict.for_run("complete", None, {"verdict": {"class": "drift"}}, {"passed": 1})
    assert stored.cls is VerdictClass.DRIFT and not derived and stored.headline == "1/1 passed"
    plain, derived = Verdict.for_run("complete", None, {"verdict": {"headline": "no class"}}, {"passed": 1})
    assert plain.cls is VerdictClass.OK and derived
