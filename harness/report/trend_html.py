"""The trend report: one self-contained HTML page built from the history store.

It answers the morning questions in order: what did the latest run conclude (verdict and
evidence), how did each topic, model, suite and tag move over the weeks, which cases
changed against the baseline (with a diff of the answers), which cases flip, and what was
said in each call of the run.

Everything that came from a model, a golden file or a config is untrusted. The template
autoescapes every value; chart data travels as JSON from `|tojson` (which escapes `<`, `>`,
`&` and `'`) inside a `<script type="application/json">` that no browser executes; the page's
script only reads it and writes text nodes; and a Content-Security-Policy lets only our own
script (pinned by its hash) run and nothing load from the network.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any

from ..records import CaseResult
from ..store import Store
from ..verdict import Verdict
from ._common import one_line, redact, write_text_atomic
from ._pages import (
    STATUS_LABEL,
    STATUS_ORDER,
    assets,
    case_view,
    trace_view,
    compact,
    environment,
    fmt_time,
    pct,
    rounded,
)
from .summary import STATUSES, RunSummary, objectives_view, repeated_case_ids, status_line, stored_verdict, summarize
from .trend import DIMENSIONS, METRICS, CaseChange, FlakyCase, TrendData, load_trend

METRIC_INFO = {
    "pass_rate": {"label": "Pass rate", "unit": "pct", "better": "up"},
    "judge_score": {"label": "Judge score", "unit": "score", "better": "up"},
    "p95_turn_ms": {"label": "p95 turn latency", "unit": "ms", "better": "down"},
    "error_rate": {"label": "Infra error rate", "unit": "pct", "better": "down"},
    "tokens": {"label": "Tokens per call", "unit": "count", "better": "down"},
    "cost": {"label": "Cost", "unit": "usd", "better": "down"},
}
DIM_LABEL = {"overall": "Overall", "topic": "Topic", "model": "Model", "suite": "Suite", "tag": "Tag"}
CHANGE_LABEL = {"regressed": "regressed", "fixed": "fixed", "error": "infra error", "new": "new case",
                "status": "status changed", "answer": "answer changed"}
CHANGE_TONE = {"regressed": "failed", "error": "error", "new": "error", "fixed": "passed", "status": "error",
               "answer": "drift"}
LEVEL_BADGE = {"passed": "PASSED", "failed": "FAILED", "error": "ERROR", "incomplete": "INCOMPLETE"}
SIZE_BUDGET_BYTES = 3 * 1024 * 1024  # a report over this drops passed calls' transcripts
FULL_TRANSCRIPTS_MAX = 2000  # results in the focus run above which passed transcripts are left out
DIFF_TEXT_LIMIT = 4000  # characters diffed per answer; the rest is shown, not diffed
_TOKEN = re.compile(r"[A-Za-z0-9_'’.,-]+|\s+|.", re.S)  # words for Latin text, single characters for CJK


def _num(value: Any, fmt: str = "{:.3f}") -> str:
    return fmt.format(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else "—"


# ---------------------------------------------------------------- verdict


def _evidence_view(e: Any) -> dict[str, Any]:
    if not isinstance(e, dict):
        return {"kind": None, "detail": str(e), "more": ""}
    rest = {k: v for k, v in e.items() if k not in ("kind", "detail")}
    return {"kind": str(e.get("kind") or "") or None,
            "detail": "" if e.get("detail") is None else str(e["detail"]),
            "more": compact(rounded(rest), 300) if rest else ""}


def _verdict_view(verdict: Verdict | None) -> dict[str, Any] | None:
    """The analysis verdict's class (coloured by its tone), headline, evidence and baseline
    (and the note of a stored verdict that could not be read). Its per-topic numbers join
    the run's topic table; changed cases and consistency have their own sections."""
    if not verdict:
        return None
    v = redact(verdict.to_dict())
    evidence = [_evidence_view(e) for e in v["evidence"]]
    if verdict.note:
        evidence.append({"kind": "note", "detail": str(v.get("note") or ""), "more": ""})
    return {"cls": str(v["class"]), "slug": verdict.cls.tone, "headline": v["headline"] or None,
            "evidence": evidence, "baseline_run": v["baseline_run"]}


# ---------------------------------------------------------------- focus run summary


def _focus_view(data: TrendData, summary: RunSummary | None = None) -> dict[str, Any] | None:
    run = data.focus
    if run is None:
        return None
    summary = summary or summarize(data.focus_results, run)
    line = summary.status or status_line(run, summary)
    target = redact(run.target or {})
    base_idx = _point_index(data, data.baseline.run_id) if data.baseline else None
    topic_series = data.trends.dims.get("topic", {}).get("metrics", {}).get("pass_rate", {})
    rows = []
    for t in summary.topics:
        # the analysis' own comparison wins (it knows the accepted baseline and the p-value)
        before = t.baseline_pass_rate if t.compared else (
            topic_series.get(t.topic, [None] * (base_idx + 1))[base_idx] if base_idx is not None else None)
        before = before if isinstance(before, (int, float)) else None
        delta = t.pass_rate - before if t.pass_rate is not None and before is not None else None
        rows.append({"topic": t.topic, "cases": t.cases, "passed": t.passed, "failed": t.failed, "error": t.error + t.not_run,
                     "pass_rate": t.pass_rate, "baseline": before, "p95": t.p95_ms,
                     "delta": None if delta is None else f"{delta * 100:+.1f} pt",
                     "tone": "" if not delta else ("down" if delta < 0 else "up"),
                     "p_value": _num(t.p_value, "{:.2g}") if t.compared else None})
    return {
        "run_id": run.run_id, "suite": run.suite, "status": run.status, "level": line.level, "status_text": line.text,
        "message": run.message, "started": fmt_time(run.started), "git_sha": (run.git_sha or "")[:12] or None,
        "target_kind": target.get("kind"), "target_model": target.get("model") or run.model,
        "target_url": target.get("base_url") or target.get("url"), "topics": rows, "total": summary.total,
        "has_p": any(r["p_value"] is not None for r in rows),
        "baseline": data.baseline.run_id if data.baseline else None,
        "baseline_started": fmt_time(data.baseline.started) if data.baseline else None,
    }


def _point_index(data: TrendData, run_id: str) -> int | None:
    for i, p in enumerate(data.trends.points):
        if p.get("run_id") == run_id:
            return i
    return None


# ---------------------------------------------------------------- changed cases and diffs


def _diff(before: str, after: str) -> dict[str, Any]:
    """Word-level diff for Latin text, character-level for Japanese. A pair that shares
    little is shown as old and new blocks: interleaved fragments would be unreadable."""
    a, b = before[:DIFF_TEXT_LIMIT], after[:DIFF_TEXT_LIMIT]
    ta, tb = _TOKEN.findall(a), _TOKEN.findall(b)
    sm = difflib.SequenceMatcher(None, ta, tb, autojunk=False)
    if sm.ratio() < 0.4:
        return {"mode": "replace", "before": before, "after": after}
    segs: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            segs.append(("eq", "".join(ta[i1:i2])))
            continue
        if i2 > i1:
            segs.append(("del", "".join(ta[i1:i2])))
        if j2 > j1:
            segs.append(("ins", "".join(tb[j1:j2])))
    tail_a, tail_b = before[DIFF_TEXT_LIMIT:], after[DIFF_TEXT_LIMIT:]
    if tail_a or tail_b:
        segs.append(("eq", " …"))
    return {"mode": "inline", "segments": segs}


def _status_word(status: str | None) -> str:
    if status is None:
        return "—"
    return {"mixed": "repeats split", "not_run": "not run"}.get(status, status)


def _turn_texts(r: CaseResult | None) -> dict[int, tuple[str | None, str]]:
    if r is None or r.transcript is None:
        return {}
    return {t.index: (t.caller, t.reply.text or "") for t in r.transcript.turns}


def _change_view(c: CaseChange, idx: int) -> dict[str, Any]:
    now, then = _turn_texts(c.current), _turn_texts(c.previous)
    turns = []
    for n in sorted(set(now) | set(then)):
        caller = (now.get(n) or then.get(n) or (None, ""))[0]
        after = now[n][1] if n in now else None
        before = then[n][1] if n in then else None
        same = after == before
        diff = _diff(before, after) if not same and after is not None and before is not None else None
        view = {"n": n, "caller": caller, "same": same, "before": before, "after": after, "diff": diff}
        turns.append(view)
    status = c.current.status if c.current else "not_run"
    return {
        "idx": idx, "id": c.case_id, "topic": c.topic, "tags": c.tags, "change": c.change,
        "label": CHANGE_LABEL.get(c.change, c.change), "tone": CHANGE_TONE.get(c.change, "other"),
        "before": c.before, "after": c.after, "before_label": _status_word(c.before), "after_label": _status_word(c.after),
        "status": status if status in STATUS_LABEL else "error",
        "turns": turns, "changed_turns": sum(1 for t in turns if not t["same"]),
        "reasons_now": c.current.failing_reasons if c.current else [],
        "reasons_before": c.previous.failing_reasons if c.previous else [],
        "error_now": c.current.error if c.current else None,
        "has_previous": c.previous is not None, "has_current": c.current is not None,
    }


# ---------------------------------------------------------------- flaky cases and history


def _flaky_view(f: FlakyCase) -> dict[str, Any]:
    cons = f.consistency or {}
    agreement = cons.get("agreement")
    return {
        "id": f.case_id, "suite": f.suite, "topic": f.topic, "tags": f.tags, "runs": f.runs, "flips": f.flips,
        "mixed": f.mixed_runs, "pass_rate": f.pass_rate, "latest": f.latest,
        "status": f.latest if f.latest in STATUS_LABEL else ("failed" if f.latest == "mixed" else "error"),
        "history": f.history,
        "agreement": pct(agreement, 0) if isinstance(agreement, (int, float)) else None,
        "distinct": cons.get("distinct") if isinstance(cons.get("distinct"), int) else None,
        "flagged": bool(cons.get("flag")),
    }


def _history_view(data: TrendData) -> list[dict[str, Any]]:
    rows = []
    focus = data.focus.run_id if data.focus else None
    base = data.baseline.run_id if data.baseline else None
    for r in data.runs:
        s = data.run_stats.get(r.run_id, {})
        v = stored_verdict(r)
        cls = v.name if v else ""
        c = r.counts or {}
        rows.append({
            "run_id": r.run_id, "suite": r.suite, "started": fmt_time(r.started), "status": r.status,
            "passed": c.get("passed", 0), "failed": c.get("failed", 0), "error": c.get("error", 0) + c.get("not_run", 0),
            "pass_rate": s.get("pass_rate"), "judge": s.get("judge_score"), "p95": s.get("p95_turn_ms"),
            "cost": s.get("cost"), "cls": cls, "slug": v.cls.tone if v else "", "git_sha": (r.git_sha or "")[:10],
            "model": r.model, "focus": r.run_id == focus, "baseline": r.run_id == base,
        })
    return rows


# ---------------------------------------------------------------- the page


def _chart_data(data: TrendData) -> dict[str, Any]:
    """What trend.js draws, as plain JSON (emitted with |tojson, never as markup)."""
    return {
        "period": data.trends.period,
        "points": data.trends.points,
        "dims": {d: data.trends.dims[d] for d in DIMENSIONS if d in data.trends.dims},
        "metrics": [{"id": m, **METRIC_INFO[m]} for m in METRICS],
        "dimLabels": DIM_LABEL,
        "focus": data.focus.run_id if data.focus else None,
        "focusX": _focus_x(data),
        "baseline": data.baseline.run_id if data.baseline else None,
        "budgets": _budgets(data),
    }


def _budgets(data: TrendData) -> dict[str, Any] | None:
    """Each objective's budget left per run (one suite's page only: objectives are a suite's)."""
    if data.trends.period != "run":
        return None
    from ..objectives.chart import budget_series

    return budget_series(data.runs, data.trends.points)


def _focus_x(data: TrendData) -> float | None:
    """Where the focus run sits on the time axis: its start, or its day when points are days."""
    if data.focus is None:
        return None
    x = data.focus.started
    return float(x // 86400 * 86400) if data.trends.period == "day" else float(x)


def _title(data: TrendData) -> str:
    scope = data.suite or "all suites"
    return f"Trends · {scope}"


def render_trend_html(data: TrendData, *, include_passed_transcripts: bool = True,
                      summary: RunSummary | None = None) -> str:
    """Render the page for data already read from the store. `summary` is the focus run's own
    `RunSummary` when the caller has it (the run just finished); else it is computed here from
    the focus run's stored results, by the same function."""
    focus = _focus_view(data, summary)
    verdict = _verdict_view(data.verdict)
    repeated = repeated_case_ids(data.focus_results)
    results = data.focus_results
    order = sorted(range(len(results)), key=lambda i: (STATUS_ORDER.get(results[i].status, 1), results[i].topic,
                                                       results[i].case_id, results[i].repeat_index, i))
    cases = []
    for n, i in enumerate(order, 1):
        view = case_view(results[i], n, repeated)
        view["trace"] = trace_view(data.focus, results[i])
        view["omitted"] = not include_passed_transcripts and view["status"] == "passed"
        cases.append(view)
    status_counts = {s: sum(1 for r in results if r.status == s) for s in STATUSES}
    runs = data.runs
    span = (f"{fmt_time(min(r.started for r in runs))[:10]} → {fmt_time(max(r.started for r in runs))[:10]}"
            if runs else None)
    classes = sorted({row["cls"] for row in _history_view(data) if row["cls"]})
    level = focus["level"] if focus else "empty"
    badge = (verdict["cls"].upper() if verdict else LEVEL_BADGE.get(level, "NO RUNS"))
    flaky = [_flaky_view(f) for f in data.flaky]
    css, js, script_hash = assets(("run.css", "trend.css"), "trend.js")
    return environment().get_template("trend.html.j2").render(
        title=_title(data), suite=data.suite, span=span, run_count=len(runs), since=fmt_time(data.since) if data.since else None,
        badge=badge, badge_slug=verdict["slug"] if verdict else "", level=level, focus=focus, verdict=verdict,
        objectives=objectives_view(data.focus),  # beside its verdict
        changes=[_change_view(c, i) for i, c in enumerate(data.changes, 1)], changes_total=data.changes_total,
        changes_source=data.changes_source, baseline=data.baseline.run_id if data.baseline else None,
        flaky=flaky, flaky_agreement=any(f["agreement"] for f in flaky), history=_history_view(data), verdict_classes=classes,
        cases=cases, status_counts=status_counts, status_label=STATUS_LABEL, topics=data.topics, tags=data.tags,
        chart=_chart_data(data), dims=[d for d in DIMENSIONS if d in data.trends.dims], dim_label=DIM_LABEL,
        period=data.trends.period, generated=fmt_time(data.generated), one_line=one_line,
        css=css, js=js, script_hash=script_hash,
    )


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def report_filename(suite: str | None, focus_run: str | None) -> str:
    """`<suite>-trend.html`, or `<suite>-<run>-trend.html` for a run's own trend page. Names
    are reduced to safe characters: a run id or suite name never becomes a path."""
    parts = [suite or "all"] + ([focus_run] if focus_run else [])
    stem = "-".join(_UNSAFE_NAME.sub("_", p).strip("._") or "x" for p in parts)
    return f"{stem[:150]}-trend.html"


def write_trend_report(store: Store, *, suite: str | None, since_s: float | None, out_dir: str | os.PathLike[str],
                       focus_run: str | None = None, summary: RunSummary | None = None) -> Path:
    """Build the trend report from the store and write it into `out_dir`; return its path.

    `focus_run` is the run shown at the top (verdict, changes, transcripts); by default the
    latest finished run in the window. `since_s` limits history to the last so many seconds.
    Passed calls' transcripts are left out when the page would pass 3 MB (failing ones stay).
    """
    data = load_trend(store, suite=suite, since_s=since_s, focus_run=focus_run)
    if summary is not None and (data.focus is None or data.focus.run_id != focus_run):
        summary = None  # the page is about another run than the summary's
    full = len(data.focus_results) <= FULL_TRANSCRIPTS_MAX
    html = render_trend_html(data, include_passed_transcripts=full, summary=summary)
    if full and len(html.encode("utf-8")) > SIZE_BUDGET_BYTES:
        # long answers: keep every failing call's transcript, drop the passed ones' to stay light
        html = render_trend_html(data, include_passed_transcripts=False, summary=summary)
    name = report_filename(suite, data.focus.run_id if focus_run and data.focus else None)
    return write_text_atomic(Path(out_dir) / name, html)


__all__ = ["render_trend_html", "report_filename", "write_trend_report"]
