"""One verdict per run, by an ordered table of small rules.

The order is the order of blame. If the provider was down, nothing else can be judged
(infra). If the judge disagrees with its own labelled canaries, its scores cannot be
trusted (judge_drift). Then behaviour (`behaviour.py`): cases are split by their input
fingerprints — same inputs as the reference (the model's side) or changed (ours). Moved on
both sides is `mixed`; moved with our inputs unchanged, or a new model fingerprint, is
`drift`, whichever way the pass rate went, the headline saying which; a significant drop
where only our inputs changed is `regression`. Cases that fail with nothing moved are
`failing` (a first run with failures too: never `ok`); differences within the reference's
own variation are `noise`; all passing and nothing moved is `ok`.

    facts = Facts(run, comparison, reference, spec)   # figures and evidence, gathered once
    verdict = classify(run, comparison, reference, spec)

Every rule is a function of the `Facts` returning a `Finding` (class and headline) or None;
`RULES` is tried in order and the first finding wins. The evidence does not depend on the
class: `EVIDENCE` is a table of small gatherers run once, whatever the rules decide. A new
class is a new `VerdictClass` member and a rule placed where its blame belongs; a new kind
of evidence is one more gatherer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

from ..records import RunInfo
from ..spec import AnalysisSpec
from ..verdict import Evidence, Verdict, VerdictClass
from .behaviour import MULTIPLE_TESTING, CaseBehaviour, SideSignals, side_signals
from .compare import COST_SHIFT, LATENCY_FLOOR_MS, CaseDiff, Comparison, Reference
from .observe import NO_ROUTE

__all__ = ["EVIDENCE", "RULES", "Facts", "Finding", "classify"]

MAX_NAMED = 8  # cases named in one evidence line


def names(ids: list[str]) -> str:
    shown = ", ".join(ids[:MAX_NAMED])
    return shown + (f" and {len(ids) - MAX_NAMED} more" if len(ids) > MAX_NAMED else "")


def pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.0f}%"


class Finding(NamedTuple):
    cls: VerdictClass
    headline: str


@dataclass
class Facts:
    """What the rules look at: the run, its comparison with the reference, the reference and
    the suite's analysis settings, with the figures every rule shares worked out once."""

    run: RunInfo
    cmp: Comparison
    ref: Reference
    spec: AnalysisSpec

    def __post_init__(self) -> None:
        # results stored before input fingerprints: the git sha is all there is to go by
        for b in self.cmp.behaviour:
            if b.ours is None:
                b.ours = bool(self.code_changed)

    @cached_property
    def bad(self) -> int:
        """Calls that did not reach a model (infra errors and calls not run; a case whose judge
        could not answer did reach it, and is counted in `judge_unavailable` instead)."""
        return max(0, self.cmp.infra["errors"] - self.judge_unavailable) + self.cmp.infra["not_run"]

    @cached_property
    def service_versions(self) -> tuple[list[str], list[str], int] | None:
        """(the reference's, today's, cases) for the most common change of the version the
        service under test reports, among the cases whose inputs changed; None if none."""
        deployed = Counter((tuple(b.versions[0]), tuple(b.versions[1])) for b in self.our_cases if b.versions)
        if not deployed:
            return None
        (before, now), n = deployed.most_common(1)[0]
        return list(before), list(now), n

    @cached_property
    def judge_stats(self) -> dict[str, Any]:
        extra = self.run.extra
        judge = extra.get("judge") if isinstance(extra, dict) else None
        stats = judge.get("stats") if isinstance(judge, dict) else None
        return stats if isinstance(stats, dict) else {}

    @cached_property
    def judge_unavailable(self) -> int:
        """Cases whose judged checks could not run: the judge was down, not the agent."""
        return int(self.judge_stats.get("unavailable_cases") or 0)

    @cached_property
    def infra_share(self) -> float:
        repeats = self.cmp.infra["repeats"]
        return self.bad / repeats if repeats else 0.0

    @cached_property
    def same_code(self) -> bool:
        """The git sha is the reference's (information only: attribution reads input fingerprints)."""
        return bool(self.run.git_sha and self.ref.git_sha and self.run.git_sha == self.ref.git_sha)

    @cached_property
    def model_cases(self) -> list[CaseBehaviour]:
        """Cases whose inputs are the reference's: what moved there is the model's doing."""
        return [b for b in self.cmp.behaviour if b.side == "model"]

    @cached_property
    def our_cases(self) -> list[CaseBehaviour]:
        """Cases whose inputs changed (with the model identity unchanged, or changed too)."""
        return [b for b in self.cmp.behaviour if b.side != "model"]

    @cached_property
    def model_side(self) -> SideSignals:
        return side_signals(self.model_cases, self.spec.alpha, self.spec.latency_shift)

    @cached_property
    def our_side(self) -> SideSignals:
        return side_signals(self.our_cases, self.spec.alpha, self.spec.latency_shift)

    @cached_property
    def all_cases(self) -> SideSignals:
        return side_signals(self.cmp.behaviour, self.spec.alpha, self.spec.latency_shift)

    @cached_property
    def failing(self) -> list[str]:
        """Cases whose reduced verdict is failed now."""
        return [c.case_id for c in self.cmp.cases if c.after == "failed"]

    @cached_property
    def drop_side(self) -> str | None:
        """Whose side a significant drop (topic, judge score, cases) is on: model or ours."""
        if not self.dropped:
            return None
        ids = {c.case_id for c in self.cmp.significant_cases} or {c.case_id for c in self.cmp.flipped} or {
            c.case_id for c in self.cmp.cases if c.topic in set(self.cmp.significant_topics + self.cmp.judge_drops)}
        sides = [b.side for b in self.cmp.behaviour if b.case_id in ids]
        if not sides:
            return "ours" if self.code_changed else "model"
        return "ours" if sum(s != "model" for s in sides) * 2 > len(sides) else "model"

    @cached_property
    def code_changed(self) -> bool | None:
        """The git sha moved (None: not known on both sides); only for results without input fingerprints."""
        if not (self.run.git_sha and self.ref.git_sha):
            return None
        return self.run.git_sha != self.ref.git_sha

    @cached_property
    def canaries(self) -> dict[str, Any] | None:
        extra = self.run.extra
        judge = extra.get("judge") if isinstance(extra, dict) else None
        canaries = judge.get("canaries") if isinstance(judge, dict) else None
        return canaries if isinstance(canaries, dict) else None

    @cached_property
    def disagreed(self) -> int:
        return int(self.canaries.get("disagreed") or 0) if self.canaries else 0

    @cached_property
    def changed_cases(self) -> list[dict[str, Any]]:
        """Per case, what differs from the reference: its reduced verdict, its answer."""
        out = []
        for d in self.cmp.cases:
            if d.before is not None and d.before != d.after and "error" not in (d.before, d.after):
                out.append({"case_id": d.case_id, "topic": d.topic, "change": "verdict", "before": d.before,
                            "after": d.after, "p_value": d.p_value, "significant": d.significant})
            if d.answer_new:
                out.append({"case_id": d.case_id, "topic": d.topic, "change": "answer", "before": d.before_answer,
                            "after": d.after_answer})
        return out

    @cached_property
    def significant_cases(self) -> list[CaseDiff]:
        return self.cmp.significant_cases

    @cached_property
    def flipped(self) -> list[CaseDiff]:
        """Cases that passed in the reference and fail now, without a significant drop."""
        return [c for c in self.cmp.flipped if not c.significant]

    @property
    def moved(self) -> int:
        return self.cmp.answers_moved[0]

    @property
    def compared(self) -> int:
        return self.cmp.answers_moved[1]

    @property
    def p_moved(self) -> float | None:
        return self.cmp.answers_moved[2]

    @cached_property
    def answers_significant(self) -> bool:
        return self.p_moved is not None and self.p_moved < self.spec.alpha and self.moved >= 2

    @cached_property
    def dropped(self) -> bool:
        """A significant drop: a topic's pass rate, a topic's judge score, or cases."""
        return bool(self.cmp.significant_topics or self.cmp.judge_drops or self.significant_cases)

    @cached_property
    def fallback_share(self) -> float:
        return sum(r["share"] for r in self.cmp.new_routes)

    @cached_property
    def fallback_routes(self) -> dict[str, dict[str, Any]]:
        """This run's routes other than the primary (and other than "no model served")."""
        return {r: v for r, v in self.cmp.routes.items() if r not in ("primary", NO_ROUTE, "None")}

    @cached_property
    def fallback_served(self) -> float:
        """The share of this run's replies a fallback route served."""
        total = sum(v["replies"] for v in self.cmp.routes.values())
        return sum(v["replies"] for v in self.fallback_routes.values()) / total if total else 0.0

    @cached_property
    def something_moved(self) -> bool:
        return self.dropped or self.answers_significant or bool(self.flipped) or self.all_cases.moved

    @cached_property
    def where(self) -> str:
        """Where quality dropped: the topics, then the cases."""
        parts = []
        topics = list(dict.fromkeys(self.cmp.significant_topics + self.cmp.judge_drops))
        if topics:
            parts.append("topic " + ", ".join(topics))
        ids = [c.case_id for c in self.significant_cases] or [c.case_id for c in self.cmp.flipped if c.topic in topics]
        if ids:
            parts.append("cases " + names(ids))
        return " — ".join(parts) or "no topic"

    @cached_property
    def evidence(self) -> list[Evidence]:
        """Every evidence item, gathered once by the `EVIDENCE` table, in its order."""
        return [e for gather in EVIDENCE for e in gather(self)]


# ---------------------------------------------------------------- evidence, gathered once


def ev_aborted(f: Facts) -> list[Evidence]:
    if f.run.status != "aborted":
        return []
    return [Evidence("aborted", f.run.message or "the circuit breaker stopped the run")]


def ev_infra(f: Facts) -> list[Evidence]:
    if not f.bad:
        return []
    infra = f.cmp.infra
    detail = f"{f.bad} of {infra['repeats']} calls did not reach a model ({pct(f.infra_share)})"
    if infra["outage"]:
        detail += f"; {infra['outage']} were handed to a human because no model served (outage)"
    return [Evidence("infra", detail, {"share": f.infra_share, **infra})]


def ev_judge_unavailable(f: Facts) -> list[Evidence]:
    if not f.judge_unavailable:
        return []
    repeats = f.cmp.infra["repeats"]
    detail = f"the judge could not answer for {f.judge_unavailable} of {repeats} calls"
    if f.judge_stats.get("down"):
        detail += f"; {f.judge_stats['down']}"
    return [Evidence("judge_unavailable", detail, {"cases": f.judge_unavailable, "down": f.judge_stats.get("down")})]


def ev_canaries(f: Facts) -> list[Evidence]:
    if not f.disagreed:
        return []
    agreed = int(f.canaries.get("agreed") or 0) if f.canaries else 0
    return [Evidence("judge_canaries", f"the judge disagreed with {f.disagreed} of {f.disagreed + agreed} labelled canaries",
                     {"disagreed": f.disagreed, "agreed": agreed})]


def ev_fingerprints(f: Facts) -> list[Evidence]:
    return [Evidence("fingerprint", f"route {c['route']}: model fingerprint changed {', '.join(c['before'])} → "
                                    f"{', '.join(c['after'])} on {pct(c['share'])} of its replies", dict(c))
            for c in f.cmp.fingerprint_changes]


def ev_routes(f: Facts) -> list[Evidence]:
    return [Evidence("route", f"route {r['route']} ({', '.join(r['models'])}) served {pct(r['share'])} of replies; "
                              "the reference never used it", dict(r))
            for r in f.cmp.new_routes]


def ev_fallback(f: Facts) -> list[Evidence]:
    """Which share of this run the fallback served, beside the latency it was served at."""
    if not f.fallback_routes:
        return []
    total = sum(v["replies"] for v in f.cmp.routes.values())
    served = sum(v["replies"] for v in f.fallback_routes.values())
    who = "; ".join(f"{r} ({', '.join(v['models'])})" for r, v in f.fallback_routes.items())
    p95 = f.cmp.latency.get("p95")
    latency = f"; p95 turn latency {p95:,.0f} ms" if p95 is not None else ""
    return [Evidence("fallback", f"fallback served {served} of {total} replies ({pct(f.fallback_served)}): "
                                 f"{who}{latency}", {"share": f.fallback_served, "replies": served, "total": total,
                                                     "routes": dict(f.fallback_routes), "p95_ms": p95})]


def ev_pass_rates(f: Facts) -> list[Evidence]:
    out = []
    for topic in f.cmp.significant_topics:
        t = f.cmp.topics[topic]
        out.append(Evidence("pass_rate", f"{topic}: pass rate {pct(t['pass_rate'])} vs {pct(t['reference_pass_rate'])} "
                                         f"before (p={t['p_value']:.3g})", {"topic": topic}))
    return out


def ev_judge_scores(f: Facts) -> list[Evidence]:
    out = []
    for topic in f.cmp.judge_drops:
        t = f.cmp.topics[topic]
        out.append(Evidence("judge_score", f"{topic}: judge score {t['judge_score']:.2f} vs {t['baseline_judge_score']:.2f} "
                                           f"before (Mann-Whitney p={t['judge_p_value']:.3g})", {"topic": topic}))
    return out


def ev_significant_cases(f: Facts) -> list[Evidence]:
    ids = [c.case_id for c in f.significant_cases]
    if not ids:
        return []
    return [Evidence("cases", f"{len(ids)} case(s) now fail significantly more often: {names(ids)}", {"cases": ids})]


def ev_flipped(f: Facts) -> list[Evidence]:
    ids = [c.case_id for c in f.flipped]
    if not ids:
        return []
    return [Evidence("flipped", f"{len(ids)} case(s) passed in the baseline and fail now: {names(ids)}", {"cases": ids})]


def ev_behaviour(f: Facts) -> list[Evidence]:
    """Each way behaviour moved beyond the reference's own variation, over all cases, with the
    correction for testing them at once named."""
    side = f.all_cases
    out = []
    tested = sum(1 for s in side.signals if s.p_value is not None)
    for s in side.signals:
        if s.name == "answers" and s.figures.get("moved"):
            pass  # said always when answers moved: the line shows the variation it was measured against
        elif not s.significant(f.spec.alpha):
            continue
        adj = f" ({MULTIPLE_TESTING}-adjusted over {tested} tests: p={s.adjusted:.3g})" if s.adjusted is not None else ""
        out.append(Evidence("answers" if s.name == "answers" else f"behaviour_{s.name}", s.detail + adj + (f": {names(s.cases)}" if s.cases else ""),
                            {"cases": s.cases, "p_value": s.p_value, "adjusted_p": s.adjusted,
                             "correction": MULTIPLE_TESTING, "direction": s.direction,
                             "significant": s.significant(f.spec.alpha), **s.figures}))
    return out


def ev_attribution(f: Facts) -> list[Evidence]:
    """Whose side the cases that moved are on, by their input fingerprints."""
    if not f.our_cases:
        return []
    ours = [b.case_id for b in f.our_cases]
    both = [b.case_id for b in f.our_cases if b.side == "both"]
    model_moved = f.model_side.moved_cases
    detail = f"our inputs changed in {len(ours)} case(s): {names(ours)}"
    if both:
        detail += f"; the model identity changed too in {len(both)} of them"
    deployed = f.service_versions
    if deployed:
        before, now, n = deployed
        detail += (f"; the service reports version {', '.join(now)} (the reference: {', '.join(before)})"
                   + (f" in {n} of them" if n < len(ours) else ""))
    if model_moved:
        detail += f"; with the same inputs, {len(model_moved)} case(s) moved: {names(model_moved)}"
    data: dict[str, Any] = {"cases": ours, "both": both, "model_moved": model_moved}
    if deployed:
        data["service_version"] = {"reference": before, "now": now}
    return [Evidence("attribution", detail, data)]


def ev_latency(f: Facts) -> list[Evidence]:
    lat = f.cmp.latency
    if lat["p95"] is None or not lat["baseline_p95"]:
        return []
    shift = (lat["p95"] - lat["baseline_p95"]) / lat["baseline_p95"]
    if abs(shift) <= f.spec.latency_shift or abs(lat["p95"] - lat["baseline_p95"]) <= LATENCY_FLOOR_MS:
        return []
    return [Evidence("latency", f"p95 turn latency {lat['p95']:,.0f} ms vs {lat['baseline_p95']:,.0f} ms before "
                                f"({shift * 100:+.0f}%)", {"shift": shift})]


def ev_usage(f: Facts) -> list[Evidence]:
    out = []
    for key, label in (("tokens_per_call", "tokens"), ("cost_per_call", "cost")):
        now, before = f.cmp.usage[key], f.cmp.usage["baseline_" + key]
        if now is not None and before:
            shift = (now - before) / before
            if abs(shift) > COST_SHIFT:
                out.append(Evidence(label, f"{label} per call {now:.4g} vs {before:.4g} before ({shift * 100:+.0f}%)",
                                    {"shift": shift}))
    return out


EVIDENCE: tuple[Callable[[Facts], list[Evidence]], ...] = (
    ev_aborted, ev_infra, ev_judge_unavailable, ev_fallback, ev_canaries, ev_fingerprints, ev_routes, ev_pass_rates, ev_judge_scores,
    ev_significant_cases, ev_flipped, ev_behaviour, ev_attribution, ev_latency, ev_usage,
)


# ---------------------------------------------------------------- the rules, in order of blame


def rule_infra(f: Facts) -> Finding | None:
    """An aborted run, or too many calls that never reached a model: nothing else can be judged."""
    if f.run.status == "aborted" and f.run.message:
        return Finding(VerdictClass.INFRA, f"infra: {f.run.message}")
    if f.run.status == "aborted" or f.infra_share >= f.spec.infra_error_rate:
        return Finding(VerdictClass.INFRA,
                       f"infra: {pct(f.infra_share)} of calls did not reach a model — not counted against the agent")
    return None


def rule_judge_down(f: Facts) -> Finding | None:
    """The judge could not answer for too many calls: its checks cannot be read either way.
    Infra, not a drop of the agent (those cases are errors, out of the pass rate)."""
    repeats = f.cmp.infra["repeats"]
    if not f.judge_unavailable or not repeats:
        return None
    share = f.judge_unavailable / repeats
    if share < f.spec.infra_error_rate and not f.judge_stats.get("down"):
        return None
    return Finding(VerdictClass.INFRA, f"infra: the judge could not answer for {f.judge_unavailable} of {repeats} calls "
                                       f"({pct(share)}) — judged checks not counted against the agent")


def rule_primary_down(f: Facts) -> Finding | None:
    """A fallback route served a real share of this run: the primary was down and the service
    stayed up. Infra (the provider's doing), never drift: the model that answered changed
    because the gateway failed over, not because anyone changed it."""
    if not f.fallback_routes or f.fallback_served < f.spec.fallback_share:
        return None
    who = ", ".join(f"{r} ({', '.join(v['models'])})" for r, v in f.fallback_routes.items())
    return Finding(VerdictClass.FALLBACK, f"infra: the primary route was down; {who} served {pct(f.fallback_served)} "
                                          "of replies — the service stayed up on its fallback")


def rule_fallback_route(f: Facts) -> Finding | None:
    """The primary route was down and a fallback served enough replies to explain what moved."""
    if f.fallback_share < f.spec.infra_error_rate or not f.something_moved:
        return None
    routes = ", ".join(r["route"] for r in f.cmp.new_routes)
    return Finding(VerdictClass.INFRA, f"infra: the primary route was down; {routes} served {pct(f.fallback_share)} "
                                       "of replies — changes follow the provider, not the agent")


def rule_judge_drift(f: Facts) -> Finding | None:
    """The judge disagrees with its labelled canaries: its scores are not trusted."""
    if not f.disagreed:
        return None
    return Finding(VerdictClass.JUDGE_DRIFT, f"judge drift: the judge disagreed with {f.disagreed} labelled canaries "
                                             "— judge scores are not trusted")


def rule_repointed(f: Facts) -> Finding | None:
    """A route is now served by another deployment (a gateway alias re-pointed to another
    model or API base): drift, naming the old and the new deployment."""
    moved = [c for c in f.cmp.fingerprint_changes
             if c.get("models_after") and set(c["models_after"]) - set(c.get("models_before") or ())]
    if not moved:
        return None
    what = "; ".join(f"route {c['route']} now served by {', '.join(c['models_after'])} "
                     f"(was {', '.join(c['models_before'])}) on {pct(c['share'])} of its replies" for c in moved)
    headline = f"drift: the deployment changed — {what}"
    if f.dropped:
        headline += f"; quality dropped in {f.where}"
    return Finding(VerdictClass.DRIFT, headline)


def _what(side: SideSignals) -> str:
    parts = []
    for sig in side.significant:
        if sig.name.startswith("outcome"):
            continue
        if sig.name in ("answers", "shape"):
            parts.append(f"{'answers' if sig.name == 'answers' else 'answer structure'} changed in "
                         f"{sig.figures['moved']} of {sig.figures['compared']} cases")
        elif sig.name in ("length", "tokens"):
            parts.append(f"{sig.direction} (×{sig.figures['factor']:.2f})" if sig.name != "tokens"
                         else f"tokens per call ×{sig.figures['factor']:.2f}")
        else:
            parts.append(sig.direction)
    worse = [s for s in side.significant if s.name.startswith("outcome")]
    for sig in worse:
        parts.insert(0, f"{sig.figures['flipped']} case(s) {'now fail' if sig.direction == 'worse' else 'now pass'}"
                        f" ({sig.figures['flipped_back']} the other way)")
    return "; ".join(dict.fromkeys(parts))


def _direction(side: SideSignals, dropped: bool) -> str:
    d = side.direction
    if dropped and d.startswith("changed, pass rate"):
        return "worse"
    return d


def rule_mixed(f: Facts) -> Finding | None:
    """Our inputs and the model's behaviour both changed: name the cases on each side."""
    if not f.our_side.moved:
        return None
    ours = f.our_side.moved_cases or [b.case_id for b in f.our_cases]
    both = [b.case_id for b in f.our_cases if b.side == "both"]
    if f.model_side.moved:
        model = f.model_side.moved_cases
        return Finding(VerdictClass.MIXED, f"mixed: the model moved with the same inputs ({_what(f.model_side)}: "
                                           f"{names(model)}) and our inputs changed ({_what(f.our_side)}: {names(ours)})")
    if both and f.cmp.fingerprint_changes:
        return Finding(VerdictClass.MIXED, f"mixed: our inputs and the model both changed in {len(both)} case(s) "
                                           f"({_what(f.our_side)}: {names(both)}); `harness attribute {f.run.run_id}` "
                                           "resends the old inputs to tell which did it")
    return None


def rule_drift(f: Facts) -> Finding | None:
    """Behaviour moved with our inputs unchanged (or the model that answered is new): the model's doing,
    whichever way the pass rate went; the headline says which."""
    fp = f.cmp.fingerprint_changes
    new_fp = "; the model changed (new fingerprint)" if fp else ""
    if f.model_side.moved:
        side = f.model_side
        direction = _direction(side, bool(f.cmp.significant_topics or f.cmp.judge_drops) and f.drop_side == "model")
        return Finding(VerdictClass.DRIFT, f"drift ({direction}): {_what(side)}, with our inputs unchanged{new_fp}: "
                                           f"{names(side.moved_cases)}")
    if f.dropped and f.drop_side == "model":
        return Finding(VerdictClass.DRIFT, f"drift (worse): quality dropped in {f.where}, with our inputs unchanged{new_fp}")
    if fp and not f.our_side.moved:
        ids = [c.case_id for c in f.cmp.new_answers]
        tail = f"; answers changed in {names(ids)}" if ids else "; no answers moved yet"
        return Finding(VerdictClass.DRIFT, f"drift (model changed, behaviour unchanged): new fingerprint{tail}")
    return None


def rule_regression(f: Facts) -> Finding | None:
    """A significant drop where our inputs changed and the model that answered did not."""
    worse = f.our_side.moved and "worse" in f.our_side.direction
    if not (worse or (f.dropped and f.drop_side == "ours")):
        return None
    ours = [b.case_id for b in f.our_cases]
    if f.dropped:
        where = f.where
    else:
        where = "cases " + names(f.our_side.moved_cases)
    code = ""
    if (f.ref.git_sha or f.run.git_sha) and f.ref.git_sha != f.run.git_sha:
        code = f"; git {(f.ref.git_sha or '?')[:12]} → {(f.run.git_sha or '?')[:12]}"
    if any(b.known for b in f.our_cases):
        deployed = f.service_versions
        version = f" (the service reports version {', '.join(deployed[1])}, was {', '.join(deployed[0])})" if deployed else ""
        because = f"our inputs changed in {len(ours)} case(s){version} and the model did not"
    else:  # results stored before input fingerprints
        because = "the code changed and the model did not"
    return Finding(VerdictClass.REGRESSION, f"regression: significant drop in {where}; {because}{code}")


def rule_failing(f: Facts) -> Finding | None:
    """Cases fail, and nothing moved against the reference (or there is none yet): never ok."""
    if not f.failing:
        return None
    executed = sum(1 for c in f.cmp.cases if c.after in ("passed", "failed"))
    line = f"failing: {len(f.failing)} of {executed} case(s) fail: {names(f.failing)}"
    if f.ref.empty:
        line += "; no baseline or history to compare with yet"
    else:
        line += f"; nothing moved against the {f.ref.label}"
    if f.bad:
        line += f"; {f.bad} of {f.cmp.infra['repeats']} calls did not reach a model (below the infra threshold)"
    return Finding(VerdictClass.FAILING, line)


def rule_noise(f: Facts) -> Finding | None:
    """Something differs, within the variance the history shows."""
    latency = any(e.kind == "latency" for e in f.evidence)
    if not (f.changed_cases or f.flipped or f.moved or f.bad or latency):
        return None
    return Finding(VerdictClass.NOISE, "noise: " + _noise_line(f))


def rule_ok(f: Facts) -> Finding | None:
    """Nothing moved (the last rule: it always finds)."""
    if not f.cmp.infra["repeats"]:
        return Finding(VerdictClass.OK, "ok: nothing ran")
    headline = "ok: " + (f"matches the {f.ref.label}" if not f.ref.empty else "no baseline or history to compare with yet")
    return Finding(VerdictClass.OK, headline)


def _noise_line(f: Facts) -> str:
    if f.ref.empty:
        failed = sum(1 for c in f.cmp.cases if c.after == "failed")
        line = f"no baseline or history to compare with yet; {failed} case(s) failed"
        if f.bad:  # what made it noise rather than ok, in the headline too
            line += f"; {f.bad} of {f.cmp.infra['repeats']} calls did not reach a model (below the infra threshold)"
        return line
    ids = list(dict.fromkeys(c["case_id"] for c in f.changed_cases))
    if ids:
        return f"{len(ids)} case(s) differ from the {f.ref.label} within the variance history shows: {names(ids)}"
    return f"differences from the {f.ref.label} are within the variance history shows"


RULES: tuple[Callable[[Facts], Finding | None], ...] = (
    rule_infra,
    rule_judge_down,
    rule_fallback_route,
    rule_primary_down,
    rule_judge_drift,
    rule_repointed,
    rule_mixed,
    rule_drift,
    rule_regression,
    rule_failing,
    rule_noise,
    rule_ok,
)


def decide(f: Facts) -> Finding:
    """The first rule that finds."""
    for rule in RULES:
        found = rule(f)
        if found is not None:
            return found
    raise AssertionError("rule_ok always finds")  # pragma: no cover


def classify(run: RunInfo, cmp: Comparison, ref: Reference, spec: AnalysisSpec) -> Verdict:
    """The run's verdict (without `consistency`, which the caller adds)."""
    f = Facts(run, cmp, ref, spec)
    found = decide(f)
    return Verdict(found.cls, found.headline, evidence=list(f.evidence), topics=cmp.topics,
                   changed_cases=f.changed_cases, baseline_run=ref.run_id, reference=ref.label,
                   same_code=f.same_code, infra_share=f.infra_share, latency=cmp.latency, usage=cmp.usage)
