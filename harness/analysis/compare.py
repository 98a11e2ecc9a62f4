"""Compare a run with its reference: the baseline plus the healthy runs of the trailing window.

Per case: did the reduced verdict flip, did the answer move to something never seen
before, is the drop significant after correcting for the number of cases tested. Per topic:
pass rate against the reference (Fisher's exact test), judge scores (Mann-Whitney U),
latency p50/p95, tokens and cost. Per run: which routes, models and fingerprints served.

Pooling the baseline with the healthy window gives the tests their power (one baseline run
of 20 calls cannot tell 16/20 from 20/20; ten days of history can) and defines "normal
variance": a pass rate some healthy day already had is noise, not news.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..spec import AnalysisSpec, ReducerSpec
from ..percentiles import percentile
from ..records import pass_rate
from .behaviour import CaseBehaviour, case_behaviour
from .consistency import ALL, reduce_case
from .observe import NO_ROUTE, CaseObs, short
from .significance import binomial_excess, fisher_drop, holm, mann_whitney_drop

__all__ = ["CaseDiff", "Comparison", "Reference", "compare", "diff_cases"]

LATENCY_FLOOR_MS = 25.0  # below this, a relative latency shift is timer noise
FINGERPRINT_SHARE = 0.1  # a new fingerprint on this share of a route's replies is a change
COST_SHIFT = 0.5  # relative change in tokens or cost per call worth reporting


@dataclass
class Reference:
    """What a run is compared with: a baseline (accepted or the previous run) and healthy history."""

    label: str  # "accepted baseline", "previous run", …
    run_id: str | None
    git_sha: str | None
    cases: dict[str, CaseObs]
    history: list[dict[str, CaseObs]] = field(default_factory=list)  # oldest first, baseline excluded
    history_rates: dict[str, list[float]] = field(default_factory=dict)  # topic -> pass rate per healthy run

    def pooled(self, case_id: str) -> list[CaseObs]:
        """Every reference observation of a case, oldest first (the baseline is taken as oldest)."""
        out = [self.cases[case_id]] if case_id in self.cases else []
        out += [h[case_id] for h in self.history if case_id in h]
        return out

    @property
    def empty(self) -> bool:
        return not self.cases and not any(self.history)


@dataclass
class CaseDiff:
    case_id: str
    topic: str
    before: str | None  # reduced status in the baseline (None: not in it)
    after: str
    before_answer: str | None
    after_answer: str | None
    answer_new: bool  # most repeats gave an answer the reference never gave
    p_value: float | None = None  # Holm-adjusted, one-sided drop against the pooled reference
    significant: bool = False
    passes: int = 0
    executed: int = 0


@dataclass
class Comparison:
    cases: list[CaseDiff]
    topics: dict[str, dict[str, Any]]
    significant_topics: list[str]
    judge_drops: list[str]
    answers_moved: tuple[int, int, float | None]  # cases with new answers, cases compared, p-value
    fingerprint_changes: list[dict[str, Any]]
    new_routes: list[dict[str, Any]]
    latency: dict[str, Any]
    usage: dict[str, Any]
    infra: dict[str, int]
    # per route in this run: {"replies": n, "models": [the deployments that served it]}
    routes: dict[str, dict[str, Any]] = field(default_factory=dict)
    behaviour: list[CaseBehaviour] = field(default_factory=list)

    @property
    def significant_cases(self) -> list[CaseDiff]:
        return [c for c in self.cases if c.significant]

    @property
    def flipped(self) -> list[CaseDiff]:
        return [c for c in self.cases if c.before == "passed" and c.after == "failed"]

    @property
    def new_answers(self) -> list[CaseDiff]:
        return [c for c in self.cases if c.answer_new]


def _modal(obs: CaseObs | None) -> str | None:
    if obs is None:
        return None
    answers = [a for a in obs.answers if a is not None]
    if len(answers) <= 1:  # one repeat, the usual case: no tally needed
        return answers[0] if answers else None
    return Counter(answers).most_common(1)[0][0]


def _is_new(obs: CaseObs, seen: set[str]) -> bool:
    answers = [a for a in obs.answers if a is not None]
    return bool(answers) and bool(seen) and sum(a not in seen for a in answers) * 2 > len(answers)


def _history_novelty(pooled: list[CaseObs]) -> tuple[int, int]:
    """(runs whose answers were new, runs compared): how often this case's wording moves anyway."""
    seen: set[str] = set()
    events = trials = 0
    for obs in pooled:
        if seen and obs.answer_counts:
            trials += 1
            events += _is_new(obs, seen)
        seen |= set(obs.answer_counts)
    return events, trials


def diff_cases(current: dict[str, CaseObs], ref: Reference, reducers: dict[str, ReducerSpec],
               default: ReducerSpec, alpha: float) -> tuple[list[CaseDiff], tuple[int, int, float | None]]:
    """Per-case comparison, and whether answers moved more than history explains."""
    diffs: list[CaseDiff] = []
    raw_p: dict[str, float] = {}
    events = trials = moved = compared = 0
    for case_id, obs in sorted(current.items()):
        reducer = reducers.get(case_id) or default
        now = reduce_case(obs, reducer)
        base = ref.cases.get(case_id)
        pooled = ref.pooled(case_id)
        seen = set().union(*(set(p.answer_counts) for p in pooled)) if pooled else set()
        new = _is_new(obs, seen)
        e, t = _history_novelty(pooled)
        events, trials = events + e, trials + t
        if seen and obs.answer_counts:
            compared += 1
            moved += new
        diff = CaseDiff(case_id, obs.topic, reduce_case(base, reducer).status if base is not None else None,
                        now.status, short(_modal(base)), short(_modal(obs)), new,
                        passes=now.passes, executed=now.executed)
        if pooled and obs.failed:
            p = fisher_drop(obs.passed, obs.failed, sum(p.passed for p in pooled), sum(p.failed for p in pooled))
            if p is not None:
                raw_p[case_id] = p
        diffs.append(diff)
    adjusted = holm(raw_p)
    for d in diffs:
        if d.case_id in adjusted:
            d.p_value = adjusted[d.case_id]
            # a drop, not a case that always failed: the reference passed it at least once
            d.significant = d.p_value < alpha and d.after == "failed" and d.before != "failed"
    p_moved = binomial_excess(moved, compared, (events + 1) / (trials + 2)) if compared else None
    return diffs, (moved, compared, p_moved)


def _majority(*obs: CaseObs) -> str:
    """passed when at least half the calls that reached the model passed (over every observation
    given: the reference's whole record of a case, so a case that passes one day in ten is a
    failing case, not a flip every time it fails); else failed (error: none reached the model)."""
    executed = sum(o.executed for o in obs)
    if not executed:
        return "error"
    return "passed" if sum(o.passed for o in obs) * 2 >= executed else "failed"


def _topic_stats(current: dict[str, CaseObs], ref: Reference, diffs: list[CaseDiff],
                 spec: AnalysisSpec) -> tuple[dict[str, dict[str, Any]], list[str], list[str]]:
    by_topic: dict[str, list[CaseObs]] = {}
    for obs in current.values():
        by_topic.setdefault(obs.topic, []).append(obs)
    reduced = {d.case_id: d for d in diffs}
    topics: dict[str, dict[str, Any]] = {}
    significant: list[str] = []
    judge_drops: list[str] = []
    for topic, cases in sorted(by_topic.items()):
        cp, cf = sum(c.passed for c in cases), sum(c.failed for c in cases)
        base = [ref.cases[c.case_id] for c in cases if c.case_id in ref.cases]
        pooled = [p for c in cases for p in ref.pooled(c.case_id)]
        bp, bf = sum(b.passed for b in base), sum(b.failed for b in base)
        rp, rf = sum(p.passed for p in pooled), sum(p.failed for p in pooled)
        rate, base_rate, ref_rate = pass_rate(cp, cf), pass_rate(bp, bf), pass_rate(rp, rf)
        p = fisher_drop(cp, cf, rp, rf)
        judge_now = [s for c in cases for s in c.judge_scores]
        judge_ref = [s for c in pooled for s in c.judge_scores]
        judge_p = mann_whitney_drop(judge_now, judge_ref)
        turn_ms = [m for c in cases for m in c.turn_ms]
        ref_ms = [m for c in pooled for m in c.turn_ms]
        executed = cp + cf
        info: dict[str, Any] = {
            "pass_rate": rate if rate is not None else 0.0,
            "baseline_pass_rate": base_rate,
            "delta": rate - base_rate if rate is not None and base_rate is not None else None,
            "p_value": p,
            "reference_pass_rate": ref_rate,
            "judge_score": sum(judge_now) / len(judge_now) if judge_now else None,
            "baseline_judge_score": sum(judge_ref) / len(judge_ref) if judge_ref else None,
            "judge_p_value": judge_p,
            "p50_turn_ms": percentile(turn_ms, 50),
            "p95_turn_ms": percentile(turn_ms, 95),
            "baseline_p95_turn_ms": percentile(ref_ms, 95),
            "cases": len(cases),
            "cases_passed": sum(1 for c in cases if reduced[c.case_id].after == "passed"),
            "executed": executed,
            "errors": sum(len(c.statuses) - c.executed for c in cases),
            "tokens": sum(c.tokens for c in cases),
            "cost": sum(c.cost for c in cases),
        }
        topics[topic] = info
        drop = (ref_rate - rate) if rate is not None and ref_rate is not None else 0.0
        # within what healthy days already showed: noise, however small the p-value
        seen_rates = ref.history_rates.get(topic, [])
        seen_as_low = bool(seen_rates) and rate is not None and rate >= min(seen_rates) - 1e-9
        if p is not None and p < spec.alpha and drop >= spec.min_pass_rate_drop and not seen_as_low:
            significant.append(topic)
        if judge_p is not None and judge_p < spec.alpha and info["baseline_judge_score"] is not None \
                and info["baseline_judge_score"] - (info["judge_score"] or 0.0) >= spec.min_pass_rate_drop:
            judge_drops.append(topic)
    return topics, significant, judge_drops


def _serving(current: dict[str, CaseObs], ref: Reference) -> tuple[list[dict], list[dict]]:
    """Model fingerprint changes per route, and routes the reference never used.

    A reply's (model, fingerprint) is new when the reference never served it *to that case*:
    a case that always ran on another model (a chaos case, a pinned route) does not make its
    model "known" for every other case.
    """
    now: Counter = Counter()
    fresh: Counter = Counter()  # (route, model, fp) -> replies that are new for their case
    known_routes: dict[Any, set[tuple]] = {}
    for case_id, obs in current.items():
        seen: set[tuple] = set()
        for p in ref.pooled(case_id):
            seen.update(p.serving)
        for (route, model, fp) in seen:
            known_routes.setdefault(route, set()).add((model, fp))
        now.update(obs.serving)
        if seen:
            for key, n in obs.serving.items():
                if key not in seen:
                    fresh[key] += n
    if not known_routes:
        return [], []
    route_total: Counter = Counter()
    for (route, _, _), n in now.items():
        route_total[route] += n
    all_replies = sum(now.values()) or 1
    changes: list[dict] = []
    new_routes: list[dict] = []
    for route, total in route_total.items():
        pairs = {(m, f): n for (r, m, f), n in now.items() if r == route}
        if route not in known_routes:
            if route != NO_ROUTE:
                models = sorted({m or "?" for m, _ in pairs})
                new_routes.append({"route": route, "share": total / all_replies, "models": models})
            continue
        new = {(m, f): n for (r, m, f), n in fresh.items() if r == route}
        share = sum(new.values()) / total
        if new and share >= FINGERPRINT_SHARE and route != NO_ROUTE:
            changes.append({
                "route": route,
                "share": share,
                "before": sorted(f"{m}/{f}" for m, f in known_routes[route]),
                "after": sorted(f"{m}/{f}" for m, f in new),
                "models_before": sorted({m or "?" for m, _ in known_routes[route]}),
                "models_after": sorted({m or "?" for m, _ in new}),
            })
    return changes, new_routes


def _per_call(cases: list[CaseObs], attr: str) -> float | None:
    calls = sum(c.executed for c in cases)
    return sum(getattr(c, attr) for c in cases) / calls if calls else None


def compare(current: dict[str, CaseObs], ref: Reference, reducers: dict[str, ReducerSpec],
            spec: AnalysisSpec, default: ReducerSpec | None = None, code_changed: bool | None = None) -> Comparison:
    """Everything a verdict is decided from. `code_changed` (the git sha moved) stands in for
    the input fingerprints of results stored before them."""
    default = default or ALL
    diffs, moved = diff_cases(current, ref, reducers, default, spec.alpha)
    behaviour = []
    for d in diffs:
        pooled = ref.pooled(d.case_id)
        if not pooled:
            continue
        # outcomes compared by majority, the reference's over all its runs: a reducer like `all`
        # would read five repeats as worse than one of the same model
        behaviour.append(case_behaviour(d.case_id, d.topic, _majority(*pooled), _majority(current[d.case_id]),
                                        current[d.case_id], pooled, code_changed))
    topics, significant, judge_drops = _topic_stats(current, ref, diffs, spec)
    changes, new_routes = _serving(current, ref)
    now_ms = [m for c in current.values() for m in c.turn_ms]
    pooled = [p for cid in current for p in ref.pooled(cid)]
    ref_ms = [m for p in pooled for m in p.turn_ms]
    latency = {"p50": percentile(now_ms, 50), "p95": percentile(now_ms, 95),
               "baseline_p50": percentile(ref_ms, 50), "baseline_p95": percentile(ref_ms, 95)}
    usage = {"tokens_per_call": _per_call(list(current.values()), "tokens"),
             "cost_per_call": _per_call(list(current.values()), "cost"),
             "baseline_tokens_per_call": _per_call(pooled, "tokens"),
             "baseline_cost_per_call": _per_call(pooled, "cost")}
    infra = {
        "repeats": sum(len(c.statuses) for c in current.values()),
        "errors": sum(c.count("error") for c in current.values()),
        "not_run": sum(c.count("not_run") for c in current.values()),
        "outage": sum(c.outage for c in current.values()),
    }
    routes: dict[str, dict[str, Any]] = {}
    for obs in current.values():
        for (route, model, _), n in obs.serving.items():
            r = routes.setdefault(str(route), {"replies": 0, "models": set()})
            r["replies"] += n
            r["models"].add(model or "?")
    for r in routes.values():
        r["models"] = sorted(r["models"])
    return Comparison(diffs, topics, significant, judge_drops, moved, changes, new_routes, latency, usage, infra,
                      routes=routes, behaviour=behaviour)
