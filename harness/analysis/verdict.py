"""One verdict per run: which of infra, judge drift, drift, regression, noise or ok it is.

The order is the order of blame. If the provider was down, nothing else can be judged
(infra). If the judge disagrees with its own labelled canaries, its scores cannot be
trusted (judge_drift). If the model that answered changed, a drop is the model's doing
(drift), and so is a drop with the same code. Only a significant drop with the same model
after a code change is ours (regression). Differences the healthy history already showed
are noise.
"""

from __future__ import annotations

from typing import Any

from ..records import RunInfo
from ..spec import AnalysisSpec
from .compare import COST_SHIFT, LATENCY_FLOOR_MS, Comparison, Reference

__all__ = ["CLASSES", "classify"]

CLASSES = ("infra", "judge_drift", "drift", "regression", "noise", "ok")
MAX_NAMED = 8  # cases named in one evidence line


def _names(ids: list[str]) -> str:
    shown = ", ".join(ids[:MAX_NAMED])
    return shown + (f" and {len(ids) - MAX_NAMED} more" if len(ids) > MAX_NAMED else "")


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.0f}%"


def _canaries(run: RunInfo) -> dict[str, Any] | None:
    judge = run.extra.get("judge") if isinstance(run.extra, dict) else None
    canaries = judge.get("canaries") if isinstance(judge, dict) else None
    return canaries if isinstance(canaries, dict) else None


def _changed_cases(cmp: Comparison) -> list[dict[str, Any]]:
    out = []
    for d in cmp.cases:
        if d.before is not None and d.before != d.after and "error" not in (d.before, d.after):
            out.append({"case_id": d.case_id, "topic": d.topic, "change": "verdict", "before": d.before,
                        "after": d.after, "p_value": d.p_value, "significant": d.significant})
        if d.answer_new:
            out.append({"case_id": d.case_id, "topic": d.topic, "change": "answer", "before": d.before_answer,
                        "after": d.after_answer})
    return out


def classify(run: RunInfo, cmp: Comparison, ref: Reference, spec: AnalysisSpec) -> dict[str, Any]:
    """The verdict dict (without `consistency`, which the caller adds)."""
    evidence: list[dict[str, Any]] = []
    infra = cmp.infra
    bad = infra["errors"] + infra["not_run"]
    share = bad / infra["repeats"] if infra["repeats"] else 0.0
    same_code = bool(run.git_sha and ref.git_sha and run.git_sha == ref.git_sha)
    changed = _changed_cases(cmp)

    # --- evidence, gathered once, whatever the class
    if run.status == "aborted":
        evidence.append({"kind": "aborted", "detail": run.message or "the circuit breaker stopped the run"})
    if bad:
        detail = f"{bad} of {infra['repeats']} calls did not reach a model ({_pct(share)})"
        if infra["outage"]:
            detail += f"; {infra['outage']} were handed to a human because no model served (outage)"
        evidence.append({"kind": "infra", "detail": detail, "share": share, **infra})
    canaries = _canaries(run)
    disagreed = int(canaries.get("disagreed") or 0) if canaries else 0
    if disagreed:
        evidence.append({"kind": "judge_canaries",
                         "detail": f"the judge disagreed with {disagreed} of "
                                   f"{disagreed + int(canaries.get('agreed') or 0)} labelled canaries",
                         "disagreed": disagreed, "agreed": int(canaries.get("agreed") or 0)})
    for c in cmp.fingerprint_changes:
        evidence.append({"kind": "fingerprint",
                         "detail": f"route {c['route']}: model fingerprint changed {', '.join(c['before'])} → "
                                   f"{', '.join(c['after'])} on {_pct(c['share'])} of its replies", **c})
    for r in cmp.new_routes:
        evidence.append({"kind": "route", "detail": f"route {r['route']} ({', '.join(r['models'])}) served "
                                                   f"{_pct(r['share'])} of replies; the reference never used it", **r})
    for topic in cmp.significant_topics:
        t = cmp.topics[topic]
        evidence.append({"kind": "pass_rate", "topic": topic,
                         "detail": f"{topic}: pass rate {_pct(t['pass_rate'])} vs {_pct(t['reference_pass_rate'])} "
                                   f"before (p={t['p_value']:.3g})"})
    for topic in cmp.judge_drops:
        t = cmp.topics[topic]
        evidence.append({"kind": "judge_score", "topic": topic,
                         "detail": f"{topic}: judge score {t['judge_score']:.2f} vs {t['baseline_judge_score']:.2f} "
                                   f"before (Mann-Whitney p={t['judge_p_value']:.3g})"})
    sig_cases = cmp.significant_cases
    if sig_cases:
        evidence.append({"kind": "cases", "cases": [c.case_id for c in sig_cases],
                         "detail": f"{len(sig_cases)} case(s) now fail significantly more often: "
                                   f"{_names([c.case_id for c in sig_cases])}"})
    flipped = [c for c in cmp.flipped if not c.significant]
    if flipped:
        evidence.append({"kind": "flipped", "cases": [c.case_id for c in flipped],
                         "detail": f"{len(flipped)} case(s) passed in the baseline and fail now: "
                                   f"{_names([c.case_id for c in flipped])}"})
    moved, compared, p_moved = cmp.answers_moved
    if moved:
        ids = [c.case_id for c in cmp.new_answers]
        p_text = f", p={p_moved:.3g}" if p_moved is not None else ""
        evidence.append({"kind": "answers", "cases": ids, "p_value": p_moved,
                         "detail": f"answers changed in {moved} of {compared} cases{p_text}: {_names(ids)}"})
    lat = cmp.latency
    if lat["p95"] is not None and lat["baseline_p95"]:
        shift = (lat["p95"] - lat["baseline_p95"]) / lat["baseline_p95"]
        if abs(shift) > spec.latency_shift and abs(lat["p95"] - lat["baseline_p95"]) > LATENCY_FLOOR_MS:
            evidence.append({"kind": "latency", "shift": shift,
                             "detail": f"p95 turn latency {lat['p95']:,.0f} ms vs {lat['baseline_p95']:,.0f} ms before "
                                       f"({shift * 100:+.0f}%)"})
    for key, label in (("tokens_per_call", "tokens"), ("cost_per_call", "cost")):
        now, before = cmp.usage[key], cmp.usage["baseline_" + key]
        if now is not None and before:
            shift = (now - before) / before
            if abs(shift) > COST_SHIFT:
                evidence.append({"kind": label, "shift": shift,
                                 "detail": f"{label} per call {now:.4g} vs {before:.4g} before ({shift * 100:+.0f}%)"})

    # --- the class, in order of blame
    answers_sig = p_moved is not None and p_moved < spec.alpha and moved >= 2
    dropped = bool(cmp.significant_topics or cmp.judge_drops or sig_cases)
    fallback_share = sum(r["share"] for r in cmp.new_routes)
    something_moved = dropped or answers_sig or bool(flipped)
    where = _where(cmp, sig_cases)
    if run.status == "aborted" or share >= spec.infra_error_rate:
        cls = "infra"
        headline = f"infra: {run.message}" if run.status == "aborted" and run.message else \
            f"infra: {_pct(share)} of calls did not reach a model — not counted against the agent"
    elif fallback_share >= spec.infra_error_rate and something_moved:
        cls = "infra"
        headline = (f"infra: the primary route was down; {', '.join(r['route'] for r in cmp.new_routes)} served "
                    f"{_pct(fallback_share)} of replies — changes follow the provider, not the agent")
    elif disagreed:
        cls = "judge_drift"
        headline = f"judge drift: the judge disagreed with {disagreed} labelled canaries — judge scores are not trusted"
    elif cmp.fingerprint_changes:
        cls = "drift"
        ids = [c.case_id for c in cmp.new_answers]
        headline = "drift: the model changed (new fingerprint)" + (
            f"; answers changed in {_names(ids)}" if ids else "; no answers moved yet")
        if dropped:
            headline += f"; quality dropped in {where}"
    elif (dropped or answers_sig) and same_code:
        cls = "drift"
        headline = f"drift: same code ({(run.git_sha or '')[:12]}), but " + (
            f"quality dropped in {where}" if dropped else f"answers changed in {moved} of {compared} cases")
    elif dropped:
        cls = "regression"
        code = f"code changed {(ref.git_sha or '?')[:12]} → {(run.git_sha or '?')[:12]}" if ref.git_sha or run.git_sha \
            else "code version unknown"
        headline = f"regression: significant drop in {where} with the same model; {code}"
    elif changed or flipped or moved or bad or any(e["kind"] == "latency" for e in evidence):
        cls = "noise"
        headline = "noise: " + _noise_line(cmp, changed, ref)
    else:
        cls = "ok"
        headline = "ok: " + (f"matches the {ref.label}" if not ref.empty else "no baseline or history to compare with yet")
        known = [c.case_id for c in cmp.cases if c.after == "failed"]
        if known:
            headline += f" ({len(known)} case(s) fail as they did before: {_names(known)})"
        if not cmp.infra["repeats"]:
            headline = "ok: nothing ran"
    return {"class": cls, "headline": headline, "evidence": evidence, "topics": cmp.topics,
            "changed_cases": changed, "baseline_run": ref.run_id, "reference": ref.label,
            "same_code": same_code, "infra_share": share, "latency": cmp.latency, "usage": cmp.usage}


def _where(cmp: Comparison, sig_cases: list) -> str:
    parts = []
    topics = list(dict.fromkeys(cmp.significant_topics + cmp.judge_drops))
    if topics:
        parts.append("topic " + ", ".join(topics))
    ids = [c.case_id for c in sig_cases] or [c.case_id for c in cmp.flipped if c.topic in topics]
    if ids:
        parts.append("cases " + _names(ids))
    return " — ".join(parts) or "no topic"


def _noise_line(cmp: Comparison, changed: list[dict[str, Any]], ref: Reference) -> str:
    if ref.empty:
        failed = sum(1 for c in cmp.cases if c.after == "failed")
        line = f"no baseline or history to compare with yet; {failed} case(s) failed"
        missed = cmp.infra["errors"] + cmp.infra["not_run"]
        if missed:  # what made it noise rather than ok, in the headline too
            line += f"; {missed} of {cmp.infra['repeats']} calls did not reach a model (below the infra threshold)"
        return line
    ids = list(dict.fromkeys(c["case_id"] for c in changed))
    if ids:
        return f"{len(ids)} case(s) differ from the {ref.label} within the variance history shows: {_names(ids)}"
    return f"differences from the {ref.label} are within the variance history shows"
