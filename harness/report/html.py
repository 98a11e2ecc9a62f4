"""The one-run HTML report: a single self-contained file that opens offline.

Everything a model said is untrusted. The template autoescapes every value; nothing from a
result is marked safe; data the filter script needs sits in escaped data- attributes; and a
Content-Security-Policy lets only our own script (pinned by its hash) run and nothing load
from the network, so even a missed escape could not run code or phone home.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from ..records import CaseResult, CheckResult, RunInfo, Turn
from ._common import one_line, redact, write_text_atomic
from .stats import STATUSES, RunSummary, repeated_case_ids, status_line, summarize

TEMPLATES = Path(__file__).parent / "templates"
STATUS_ORDER = {"failed": 0, "error": 1, "not_run": 2, "passed": 3}
STATUS_LABEL = {"passed": "passed", "failed": "failed", "error": "error", "not_run": "not run"}
VERDICT_CLASSES = {"regression", "drift", "infra", "noise", "ok", "pass", "passed", "none"}


@lru_cache(maxsize=1)
def _env() -> Environment:
    # autoescape=True, not select_autoescape: the latter keys on .html and would leave .j2 raw
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ms"] = _fmt_ms
    return env


@lru_cache(maxsize=1)
def _assets() -> tuple[Markup, Markup, str]:
    """Our own stylesheet and script (trusted, shipped with the package) and the script's
    CSP hash. They are the only strings the template emits unescaped."""
    css = (TEMPLATES / "run.css").read_text(encoding="utf-8")
    js = (TEMPLATES / "run.js").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(js.encode("utf-8")).digest()).decode("ascii")
    return Markup(css), Markup(js), f"'sha256-{digest}'"


def _fmt_ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


def _fmt_time(epoch: float | None) -> str:
    if not epoch:
        return "—"
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _fmt_duration(ms: float | None) -> str:
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms:.0f} ms"
    secs = ms / 1000
    if secs < 120:
        return f"{secs:.1f} s"
    return f"{int(secs // 60)} min {int(secs % 60)} s"


def _compact(value: Any, limit: int = 400) -> str:
    """Compact JSON for slots, state and check arguments (escaped later by the template)."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_view(c: CheckResult) -> dict[str, Any]:
    state = "error" if c.error else "skip" if c.skipped else "pass" if c.passed else "fail"
    return {
        "name": c.name,
        "state": state,
        "reason": c.reason,
        "score": None if c.score in (None, 1.0, 0.0) else f"{c.score:.2f}",
        "args": _compact(c.args, 200) if c.args else "",
        "turn": c.turn,
    }


def _turn_view(t: Turn, checks: list[dict[str, Any]]) -> dict[str, Any]:
    r = t.reply
    tokens = None
    if r.tokens_in is not None or r.tokens_out is not None:
        tokens = f"{r.tokens_in if r.tokens_in is not None else '?'} → {r.tokens_out if r.tokens_out is not None else '?'} tokens"
    return {
        "n": t.index,
        "kind": t.kind,
        "caller": t.caller,
        "text": r.text,
        "first_token_ms": r.first_token_ms,
        "total_ms": r.total_ms,
        "route": r.route,
        "model": r.model,
        "fingerprint": r.fingerprint,
        "tokens": tokens,
        "cost": None if r.cost is None else f"${r.cost:.5f}",
        "attempts": r.attempts if r.attempts and r.attempts > 1 else None,
        "state": _compact(r.state) if r.state else "",
        "ended": r.ended,
        "checks": checks,
    }


def _case_view(r: CaseResult, idx: int, repeated: set[str]) -> dict[str, Any]:
    by_turn: dict[int, list[dict[str, Any]]] = {}
    call_checks: list[dict[str, Any]] = []
    turn_indexes = {t.index for t in r.transcript.turns} if r.transcript else set()
    for c in r.checks:
        view = _check_view(c)
        # a check on a turn the call never reached stays visible, at call level
        if c.turn is not None and c.turn in turn_indexes:
            by_turn.setdefault(c.turn, []).append(view)
        else:
            call_checks.append(view)
    turns = [_turn_view(t, by_turn.get(t.index, [])) for t in r.transcript.turns] if r.transcript else []
    outcome = None
    if r.transcript is not None:
        o = r.transcript.outcome
        outcome = {
            "intent": o.intent,
            "slots": _compact(o.slots) if o.slots else "",
            "transferred": o.transferred,
            "transfer_reason": o.transfer_reason,
            "ended_by": o.ended_by,
            "side_effects": _compact(o.side_effects) if o.side_effects else "",
        }
    reasons = r.failing_reasons
    status = r.status if r.status in STATUS_LABEL else "error"
    return {
        "idx": idx,
        "id": r.case_id,
        "repeat": r.repeat_index + 1 if r.case_id in repeated else None,
        "topic": r.topic,
        "tags": list(r.tags),
        "status": status,
        "status_label": STATUS_LABEL[status],
        "duration": _fmt_duration(r.duration_ms),
        "reasons": reasons,
        "error": r.error,
        "error_kind": r.error_kind,
        "source": r.source,
        "model": r.transcript.model if r.transcript else None,
        "turns": turns,
        "call_checks": call_checks,
        "outcome": outcome,
    }


def _verdict_view(verdict: Any) -> dict[str, Any] | None:
    """Show whatever shape the analysis stage gives, without inventing fields: its class,
    its evidence list, and any other keys as plain name/value pairs."""
    if not verdict:
        return None
    verdict = redact(verdict)
    if not isinstance(verdict, dict):
        verdict = {"class": verdict}
    cls = str(verdict.get("class") or verdict.get("kind") or "unknown")
    evidence = verdict.get("evidence") or []
    if not isinstance(evidence, (list, tuple)):
        evidence = [evidence]
    items = [e if isinstance(e, str) else _compact(e, 600) for e in evidence]
    other = [(str(k), v if isinstance(v, str) else _compact(v, 600)) for k, v in verdict.items() if k not in ("class", "kind", "evidence")]
    slug = cls.lower() if cls.lower() in VERDICT_CLASSES else "other"
    return {"cls": cls, "slug": slug, "evidence": items, "other": other}


def _header_view(run: RunInfo, summary: RunSummary) -> dict[str, Any]:
    target = redact(run.target or {})
    duration = (run.ended - run.started) * 1000 if run.ended and run.started else None
    status = status_line(run, summary)
    extra = run.extra if isinstance(run.extra, dict) else {}
    requests, retries = extra.get("requests"), extra.get("retries")
    return {
        "requests": requests if isinstance(requests, int) else None,
        "retries": retries if isinstance(retries, int) else None,
        "suite": run.suite,
        "suite_file": run.suite_file,
        "run_id": run.run_id,
        "target_kind": target.get("kind"),
        "target_model": target.get("model") or run.model,
        "target_url": target.get("base_url") or target.get("url"),
        "git_sha": (run.git_sha or "")[:12] or None,
        "host": run.host,
        "started": _fmt_time(run.started),
        "ended": _fmt_time(run.ended),
        "duration": _fmt_duration(duration) if duration is not None else "—",
        "run_status": run.status,
        "planned": run.planned,
        "message": run.message,
        "level": status.level,
        "badge": {"passed": "PASSED", "failed": "FAILED", "error": "ERROR", "incomplete": "INCOMPLETE"}.get(status.level, "NO CASES"),
        "status_text": status.text,
    }


def render_run_html(run: RunInfo, results: Sequence[CaseResult], *, include_passed_transcripts: bool = True) -> str:
    """Render the report. With `include_passed_transcripts=False` passed cases keep their row
    but not their transcript, which keeps a 10 000-case report small."""
    summary = summarize(results)
    repeated = repeated_case_ids(results)
    order = sorted(range(len(results)), key=lambda i: (STATUS_ORDER.get(results[i].status, 1), results[i].topic, results[i].case_id, results[i].repeat_index, i))
    cases = []
    for n, i in enumerate(order, 1):
        view = _case_view(results[i], n, repeated)
        if not include_passed_transcripts and view["status"] == "passed":
            view["turns"], view["call_checks"], view["outcome"] = [], [], None
            view["omitted"] = True
        else:
            view["omitted"] = False
        cases.append(view)
    tags = sorted({t for r in results for t in r.tags})
    status_counts = {s: getattr(summary.total, s) for s in STATUSES}
    css, js, script_hash = _assets()
    extra = run.extra if isinstance(run.extra, dict) else {}
    return _env().get_template("run.html.j2").render(
        run=_header_view(run, summary),
        summary=summary,
        verdict=_verdict_view(extra.get("verdict")),
        cases=cases,
        topics=[t.topic for t in summary.topics],
        tags=tags,
        status_counts=status_counts,
        status_label=STATUS_LABEL,
        generated=_fmt_time(datetime.now(timezone.utc).timestamp()),
        one_line=one_line,
        css=css,
        js=js,
        script_hash=script_hash,
    )


def write_run_html(path: str | os.PathLike[str], run: RunInfo, results: Sequence[CaseResult], **kwargs: Any) -> Path:
    """Write the HTML report to `path` (parents created) and return the path."""
    return write_text_atomic(path, render_run_html(run, results, **kwargs))
