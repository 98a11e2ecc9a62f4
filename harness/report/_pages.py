"""What the two HTML pages (the run report and the trend page) share.

One template environment with every filter either page uses, the packaged stylesheets and
scripts with the Content-Security-Policy hash of the script, the value formatting, and the
view of one case card (`templates/_case.html.j2`, on both pages).
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from ..records import CaseResult, CheckResult, Turn
from .summary import rate_text as pct

TEMPLATES = Path(__file__).parent / "templates"
STATUS_ORDER = {"failed": 0, "error": 1, "not_run": 2, "passed": 3}
STATUS_LABEL = {"passed": "passed", "failed": "failed", "error": "error", "not_run": "not run"}


@lru_cache(maxsize=1)
def environment() -> Environment:
    # autoescape=True, not select_autoescape: the latter keys on .html and would leave .j2 raw
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ms"] = fmt_ms
    env.filters["pct"] = pct
    return env


@lru_cache(maxsize=None)
def assets(css: tuple[str, ...], js: str) -> tuple[Markup, Markup, str]:
    """Packaged stylesheets (joined) and script, and the script's CSP hash. Shipped with the
    package, they are the only strings the templates emit unescaped."""
    style = "\n".join((TEMPLATES / name).read_text(encoding="utf-8") for name in css)
    script = (TEMPLATES / js).read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return Markup(style), Markup(script), f"'sha256-{digest}'"




def fmt_ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


def fmt_time(epoch: float | None) -> str:
    if not epoch:
        return "—"
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_duration(ms: float | None) -> str:
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms:.0f} ms"
    secs = ms / 1000
    if secs < 120:
        return f"{secs:.1f} s"
    return f"{int(secs // 60)} min {int(secs % 60)} s"


def rounded(value: Any, digits: int = 3) -> Any:
    """`value` with its floats cut to `digits` significant digits (a share of 0.0256…, not
    0.02564102564102564), for figures shown beside a verdict; other values stay as they are."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


def compact(value: Any, limit: int = 400) -> str:
    """Compact JSON for slots, state and check arguments (escaped later by the template)."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_view(c: CheckResult) -> dict[str, Any]:
    state = "error" if c.error else "skip" if c.skipped else "pass" if c.passed else "fail"
    return {
        "name": c.name,
        "state": state,
        "reason": c.reason,
        "score": None if c.score in (None, 1.0, 0.0) else f"{c.score:.2f}",
        "args": compact(c.args, 200) if c.args else "",
        "turn": c.turn,
    }


def turn_view(t: Turn, checks: list[dict[str, Any]]) -> dict[str, Any]:
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
        "deployment": r.deployment if r.deployment != r.model else None,
        "upstream_attempts": r.upstream_attempts if r.upstream_attempts and r.upstream_attempts > 1 else None,
        "fingerprint": r.fingerprint,
        "tokens": tokens,
        "cost": None if r.cost is None else f"${r.cost:.5f}",
        "attempts": r.attempts if r.attempts and r.attempts > 1 else None,
        "state": compact(r.state) if r.state else "",
        "ended": r.ended,
        "checks": checks,
    }


def trace_view(run: Any, r: CaseResult) -> dict[str, str | None] | None:
    """The case's OpenTelemetry trace id, and its link when the suite names a trace URL template."""
    from ..tracing import trace_ref

    ref = trace_ref(run, r.case_id, r.repeat_index, r.status)
    return {"trace_id": ref.trace_id, "url": ref.url} if ref is not None else None


def case_view(r: CaseResult, idx: int, repeated: set[str]) -> dict[str, Any]:
    by_turn: dict[int, list[dict[str, Any]]] = {}
    call_checks: list[dict[str, Any]] = []
    turn_indexes = {t.index for t in r.transcript.turns} if r.transcript else set()
    for c in r.checks:
        view = check_view(c)
        # a check on a turn the call never reached stays visible, at call level
        if c.turn is not None and c.turn in turn_indexes:
            by_turn.setdefault(c.turn, []).append(view)
        else:
            call_checks.append(view)
    turns = [turn_view(t, by_turn.get(t.index, [])) for t in r.transcript.turns] if r.transcript else []
    outcome = None
    if r.transcript is not None:
        o = r.transcript.outcome
        outcome = {
            "intent": o.intent,
            "slots": compact(o.slots) if o.slots else "",
            "transferred": o.transferred,
            "transfer_reason": o.transfer_reason,
            "ended_by": o.ended_by,
            "side_effects": compact(o.side_effects) if o.side_effects else "",
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
        "duration": fmt_duration(r.duration_ms),
        "reasons": reasons,
        "error": r.error,
        "error_kind": r.error_kind,
        "source": r.source,
        "model": r.transcript.model if r.transcript else None,
        "turns": turns,
        "call_checks": call_checks,
        "outcome": outcome,
    }
