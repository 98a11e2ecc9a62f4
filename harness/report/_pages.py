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
from ..verdict import Verdict
from ._common import redact
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
def assets(css: tuple[str, ...], js: str | tuple[str, ...]) -> tuple[Markup, Markup, str]:
    """Packaged stylesheets and scripts (each joined), and the script's CSP hash. Shipped with
    the package, they are the only strings the templates emit unescaped."""
    style = "\n".join((TEMPLATES / name).read_text(encoding="utf-8") for name in css)
    script = "\n".join((TEMPLATES / name).read_text(encoding="utf-8") for name in ((js,) if isinstance(js, str) else js))
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
        "service_version": r.service_version,
        "tokens": tokens,
        "cost": None if r.cost is None else f"${r.cost:.5f}",
        "attempts": r.attempts if r.attempts and r.attempts > 1 else None,
        "state": compact(r.state) if r.state else "",
        "ended": r.ended,
        "checks": checks,
        "voice": _voice_figures(r.voice) if r.voice else [],
    }


def _voice_figures(v: dict[str, Any]) -> list[str]:
    """A voice turn's measured figures, as short phrases for the turn's meta line."""
    out = []
    if isinstance(v.get("response_ms"), (int, float)):
        out.append(f"response {fmt_ms(v['response_ms'])}")
    if v.get("silence_ms"):
        out.append(f"longest silence {fmt_ms(v['silence_ms'])}")
    if v.get("talk_over_ms"):
        out.append(f"talked over caller {fmt_ms(v['talk_over_ms'])}")
    barge = v.get("barge_in") or {}
    if barge:
        out.append(f"barge-in: stopped after {fmt_ms(barge.get('stop_ms'))}" + (" (clear)" if barge.get("cleared") else ""))
    return out


def trace_view(run: Any, r: CaseResult) -> dict[str, str | None] | None:
    """The case's OpenTelemetry trace id, and its link when the suite names a trace URL template."""
    from ..tracing import trace_ref

    ref = trace_ref(run, r.case_id, r.repeat_index, r.status)
    return {"trace_id": ref.trace_id, "url": ref.url} if ref is not None else None


_TL_KINDS = {"caller": ("caller", "caller speaks"), "barge_in": ("caller", "caller talks over the agent"),
             "dtmf": ("caller", "keypad"), "silence": ("caller", "caller silent"), "agent": ("agent", "agent speaks")}


def timeline_view(r: CaseResult, audio: str | None = None, audio_ms: float = 0.0) -> dict[str, Any] | None:
    """A voice call on one time axis: who spoke when (caller, agent, silence, barge-in, DTMF)
    and the measured gaps (response times, the agent stopping after a barge-in, its
    reprompt after a silence), as percentages of the call's length. None for a call with no
    audio. `audio`: the relative link to the call's recording, when there is one, `audio_ms`
    its length (the axis spans it, so a click at a point plays that moment)."""
    turns = r.transcript.turns if r.transcript is not None else []
    if not turns or not any(t.reply.voice for t in turns):
        return None
    rows: dict[str, list[dict[str, Any]]] = {"caller": [], "agent": [], "gaps": []}
    end = 0.0

    def seg(row: str, kind: str, a: Any, b: Any, label: str, title: str) -> None:
        nonlocal end
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or b < a:
            return
        rows[row].append({"kind": kind, "a": float(a), "b": float(b), "label": label, "title": title})
        end = max(end, float(b))

    for t in turns:
        v = t.reply.voice or {}
        for item in v.get("timeline") or []:
            if not isinstance(item, (list, tuple)) or len(item) < 3 or item[0] not in _TL_KINDS:
                continue
            row, what = _TL_KINDS[item[0]]
            label = str(item[3]) if item[0] == "dtmf" and len(item) > 3 else ""
            seg(row, item[0], item[1], item[2], label,
                f"{what}{' ' + label if label else ''}: {fmt_ms(item[1])} → {fmt_ms(item[2])}")
        said = v.get("caller_ms")
        response = v.get("response_ms")
        if isinstance(response, (int, float)):
            if v.get("kind") == "silence" and isinstance(v.get("timeline"), list) and v["timeline"]:
                start = v["timeline"][0][1] if v["timeline"][0][0] == "silence" else None
                if isinstance(start, (int, float)):
                    seg("gaps", "reprompt", start, start + response, f"{response:,.0f} ms",
                        f"agent spoke up {fmt_ms(response)} into the caller's silence")
            elif isinstance(said, list) and len(said) == 2:
                seg("gaps", "response", said[1], said[1] + response, f"{response:,.0f} ms",
                    f"response time: caller's last sound → agent's first audio, {fmt_ms(response)}")
        barge = v.get("barge_in") or {}
        if isinstance(barge.get("said_ms"), list) and isinstance(barge.get("stop_ms"), (int, float)):
            b0 = barge["said_ms"][0]
            seg("gaps", "stop", b0, b0 + max(barge["stop_ms"], 1.0), f"stop {barge['stop_ms']:,.0f} ms",
                f"barge-in: the agent stopped {fmt_ms(barge['stop_ms'])} after the caller cut in"
                + (" (clear)" if barge.get("cleared") else ""))
    if end <= 0:
        return None
    total = max(end * 1.02, audio_ms)
    for items in rows.values():
        for x in items:
            x["left"] = f"{x['a'] / total * 100:.3f}"
            x["width"] = f"{max((x['b'] - x['a']) / total * 100, 0.15):.3f}"
    step = next((s for s in (1000, 2000, 5000, 10000, 15000, 30000, 60000) if total / s <= 12), 120000)
    ticks = [{"left": f"{ms / total * 100:.3f}", "label": f"{ms / 1000:g} s"} for ms in range(0, int(total), step)]
    return {"rows": [{"name": name, "segs": items} for name, items in rows.items()], "ticks": ticks,
            "total_ms": round(total), "audio": audio}


def recording_link(run: Any, r: CaseResult, where: Path | None) -> tuple[str | None, float]:
    """The relative link from the report's folder to a voice call's recording, if it was kept
    (the target's `recordings`), and its length in ms (read from the WAV header)."""
    target = run.target if isinstance(getattr(run, "target", None), dict) else {}
    folder = target.get("recordings")
    if where is None or not isinstance(folder, str) or not folder:
        return None, 0.0
    wav = Path(folder) / f"{r.case_id}.{r.repeat_index}.wav"
    import wave

    try:
        with wave.open(str(wav)) as w:
            length = w.getnframes() / w.getframerate() * 1000
    except (OSError, EOFError, wave.Error):
        return None, 0.0
    import os
    from urllib.parse import quote

    return quote(Path(os.path.relpath(wav, where)).as_posix()), length


def call_timeline(run: Any, r: CaseResult, where: Path | None) -> dict[str, Any] | None:
    """The timeline of a call on a voice target (None for any other target: no per-case cost)."""
    target = getattr(run, "target", None)
    if not isinstance(target, dict) or target.get("kind") != "voice":
        return None
    return timeline_view(r, *recording_link(run, r, where))


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
        "timeline": None,  # a voice call's timeline: set by the run report (timeline_view)
    }


def evidence_view(e: Any) -> dict[str, Any]:
    """One evidence item: its kind, its sentence and the rest of its figures, compact."""
    if not isinstance(e, dict):
        return {"kind": None, "detail": str(e), "more": ""}
    rest = {k: v for k, v in e.items() if k not in ("kind", "detail")}
    return {"kind": str(e.get("kind") or "") or None,
            "detail": "" if e.get("detail") is None else str(e["detail"]),
            "more": compact(rounded(rest), 300) if rest else ""}


def verdict_view(verdict: Verdict | None) -> dict[str, Any] | None:
    """The verdict box of the run and trend pages (`_verdict.html.j2`): the class (coloured by
    its tone), headline, evidence and baseline (and the note of a stored verdict that could not
    be read). Its per-topic numbers join the topic table; changed cases have their own section."""
    if not verdict:
        return None
    v = redact(verdict.to_dict())
    evidence = [evidence_view(e) for e in v["evidence"]]
    if verdict.note:
        evidence.append({"kind": "note", "detail": str(v.get("note") or ""), "more": ""})
    return {"cls": redact(verdict.name), "slug": verdict.cls.tone, "headline": v["headline"] or None,
            "evidence": evidence, "baseline_run": v["baseline_run"]}
