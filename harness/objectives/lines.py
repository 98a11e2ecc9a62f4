"""Objectives in words: the line each surface prints beside the verdict, and `slo status`'s rows.

Every surface reads the same stored dicts (`run.extra["objectives"]["results"]`), so the
console, JSON, JUnit, HTML and Slack say the same thing. A missed objective is a line
beside the verdict, never a verdict class.
"""

from __future__ import annotations

from typing import Any

LATENCY = ("first_token_ms", "turn_ms")
RATES = ("infra_error_rate", "check_fail_rate", "judge_fail_rate")


def objective_results(extra: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The objective results a run's `extra` holds (empty when the suite has none)."""
    obj = (extra or {}).get("objectives")
    res = obj.get("results") if isinstance(obj, dict) else None
    return [r for r in res if isinstance(r, dict)] if isinstance(res, list) else []


def pct(x: Any, digits: int = 1) -> str:
    if x is None:
        return "—"
    if isinstance(x, str):
        return "-∞" if x.startswith("-") else "∞"
    v = x * 100
    text = f"{v:.{digits}f}".rstrip("0").rstrip(".") if abs(v) < 10 else f"{v:.0f}"
    if abs(v) < 1 and v != 0 and float(text or 0) == 0:  # 0.004% shows as such, never 0%
        text = f"{v:.2g}"
    return f"{text}%"


def rate(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, str):
        return "∞"
    return f"{x:.1f}×" if x < 100 else f"{x:,.0f}×"


def value_text(d: dict[str, Any], value: Any) -> str:
    """A run's SLI as its indicator reads: `5,210 ms`, `0.3%`."""
    if value is None:
        return "—"
    if d.get("indicator") in LATENCY:
        return f"{value:,.0f} ms"
    return pct(value, 2)


def window_text(d: dict[str, Any]) -> str:
    """The SLI over the window: `99.4% of turns < 5000 ms`, `0.3% error`, `96.1% passed`."""
    v = d.get("sli")
    if v is None:
        return "—"
    ind = d.get("indicator")
    if ind in LATENCY:
        if d.get("stat") == "mean":
            return f"mean {v:,.0f} ms"
        return f"{pct(v, 2)} of turns {d.get('target')}"
    if ind in RATES:
        return f"{pct(v, 2)} failed"
    return f"{pct(v, 2)} passed"


def rests_on(d: dict[str, Any]) -> str:
    runs, events = d.get("runs") or 0, d.get("events") or 0
    return f"{runs} run{'s' if runs != 1 else ''}, {events:,} {d.get('unit', 'events')}"


def _what(d: dict[str, Any]) -> str:
    ind = d.get("indicator", "")
    what = f"{d['stat']} {ind}" if d.get("stat") else ind
    return what + (f"[{d['selector']}]" if d.get("selector") else "")


def missed(d: dict[str, Any]) -> bool:
    return (d.get("run") or {}).get("met") is False or d.get("word") in ("slow down", "freeze", "post-mortem",
                                                                         "missed") or bool(d.get("fast_burn"))


def line(d: dict[str, Any]) -> str:
    """`objective answer-time: p99 turn_ms 5,210 ms this run (target < 5000 ms, missed); budget 38% left of 28d
    — freeze; fast burn 15.2× (3 runs, 2,310 turns)`."""
    run = d.get("run") or {}
    met = run.get("met")
    head = f"objective {d.get('name')}: {_what(d)} {value_text(d, run.get('value'))} this run " \
           f"(target {d.get('target')}{', missed' if met is False else ', met' if met else ''})"
    if d.get("budget_left") is None:
        tail = f"; {window_text(d)} over {d.get('window')} — {d.get('word')}"
    else:
        tail = f"; budget {pct(d.get('budget_left'))} left over {d.get('window')} — {d.get('word')}"
    firing = [a for a in d.get("alerts") or [] if a.get("firing")]
    if firing:
        a = firing[0]
        tail += f"; {'fast' if a.get('severity') == 'page' else 'slow'} burn {rate(a['short'].get('burn'))} " \
                f"(last {a['short'].get('window')}) and {rate(a['long'].get('burn'))} (last {a['long'].get('window')})"
    return f"{head}{tail} ({rests_on(d)})"


def missed_lines(extra: dict[str, Any] | None) -> list[str]:
    """One line per missed objective of a run: what every surface shows beside the verdict."""
    return [line(d) for d in objective_results(extra) if missed(d)]


def report_view(extra: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a report shows beside the verdict: the missed objectives' lines and the gate's, or None."""
    lines = missed_lines(extra)
    gate = gate_line(extra)
    if not lines and not gate:
        return None
    return {"missed": lines, "gate": gate}


def gate_line(extra: dict[str, Any] | None) -> str | None:
    obj = (extra or {}).get("objectives")
    gate = obj.get("gate") if isinstance(obj, dict) else None
    return gate if isinstance(gate, str) else None


def burn_text(d: dict[str, Any]) -> str:
    """The burn rate of the shortest window that has data, for `slo status`: `2.1× (last 1 run)`."""
    alerts = d.get("alerts") or []
    for a in alerts:
        s = a.get("short") or {}
        if s.get("burn") is not None:
            return f"{rate(s['burn'])} (last {s.get('window')})"
    return rate(d.get("burn_rate"))
