"""Checks on the agent's structured state: intent, slots, transfer, and how the call ended.

A turn-level check reads what the agent reported for that turn (`reply.state`); a
call-level check reads the end-of-call `Outcome`. Values are compared after
`normalize_value`, so `party_size: "4名"` matches `4` and `time: 午後7時` matches `"19:00"`;
dates are compared as dates, so `11月26日`, `2026/11/26` and `November 26` match
`2026-11-26` (a date without a year matches on month and day).

The end-of-call checks (`ended_by`, `transfer_reason`, `turn_count`, `booking_exists`,
`cancelled`, `side_effects`) are what a case's `outcome:` block compiles to; `route` says
which model route (primary, fallback) served, which is what a chaos run must see.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date
from typing import Any, Literal

from ..normalize import normalize_text, normalize_value
from .base import CheckFn, Score, Subject, check
from .text import quote

_EN_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_YMD = re.compile(r"^(\d{4})\s*[-/年.]\s*(\d{1,2})\s*[-/月.]\s*(\d{1,2})\s*日?")
_MD = re.compile(r"^(\d{1,2})\s*[/月]\s*(\d{1,2})\s*日?")
_EN_MD = re.compile(r"^(?:[a-z]+,?\s+)?([a-z]{3})[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(\d{4}))?$")
_EN_DM = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?([a-z]{3})[a-z]*\.?(?:,?\s+(\d{4}))?$")


def normalize_date(value: Any) -> str | None:
    """'YYYY-MM-DD', or '--MM-DD' when no year was given; None when it is not a date."""
    if isinstance(value, date):
        return value.isoformat()
    text = normalize_text(str(value))
    text = re.sub(r"[（(][^)）]*[)）]$", "", text).strip()  # a trailing weekday: 11月26日（木）
    m = _YMD.match(text)
    if m:
        return _ymd(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    m = _MD.match(text)
    if m:
        return _ymd(None, int(m.group(1)), int(m.group(2)))
    for rx, month_group, day_group in ((_EN_MD, 1, 2), (_EN_DM, 2, 1)):
        m = rx.match(text)
        if m and m.group(month_group) in _EN_MONTHS:
            year = int(m.group(3)) if m.group(3) else None
            return _ymd(year, _EN_MONTHS.index(m.group(month_group)) + 1, int(m.group(day_group)))
    return None


def _ymd(year: int | None, month: int, day: int) -> str | None:
    try:
        date(year or 2000, month, day)  # 2000 is a leap year: 2月29日 without a year is valid
    except ValueError:
        return None
    return f"{year:04d}-{month:02d}-{day:02d}" if year else f"--{month:02d}-{day:02d}"


def same_value(key: str, got: Any, want: Any) -> bool:
    """Slot values compared after normalisation (times, counts, text, dates)."""
    if "date" in key.casefold() or "日付" in key:
        a, b = normalize_date(got), normalize_date(want)
        if a is not None and b is not None:
            return a == b if not (a.startswith("--") or b.startswith("--")) else a[-5:] == b[-5:]
    return normalize_value(key, got) == normalize_value(key, want)


def _state(s: Subject, key: str, outcome_value: Any) -> Any:
    """The value of `key` for this subject: the turn's reported state, or the call's outcome."""
    return s.turn.reply.state.get(key) if s.turn is not None else outcome_value


def _show(v: Any) -> str:
    return quote(v, 40) if isinstance(v, str) else ("none" if v is None else str(v))


@check("intent", primary="value")
def intent(value: str) -> CheckFn:
    """The agent detected this intent (turn: that turn's state; call: the outcome)."""
    want = normalize_text(value)

    def run(s: Subject) -> Score:
        got = _state(s, "intent", s.transcript.outcome.intent)
        ok = isinstance(got, str) and normalize_text(got) == want
        return Score(ok, f"intent {_show(got)}" if ok else f"expected intent {_show(value)}; got {_show(got)}")

    return run


@check("slots", primary="expected", mapping_primary=True)
def slots(expected: dict[str, Any]) -> CheckFn:
    """The agent filled at least these slots with these values (score: the fraction that match)."""
    want = {k: normalize_value(k, v) for k, v in expected.items()}

    def run(s: Subject) -> Score:
        got = _state(s, "slots", s.transcript.outcome.slots) or {}
        problems = []
        for key, value in want.items():
            if key not in got:
                problems.append(f"{key}: expected {_show(expected[key])}, missing")
            elif not same_value(key, got[key], expected[key]):
                problems.append(f"{key}: expected {_show(expected[key])}, got {_show(got[key])}")
        score = 1 - len(problems) / len(want) if want else 1.0
        if problems:
            return Score(False, "; ".join(problems), score)
        return Score(True, f"{len(want)} slot(s) match: " + ", ".join(f"{k}={_show(got[k])}" for k in want), score)

    return run


@check("transferred", primary="value")
def transferred(value: bool = True) -> CheckFn:
    """The call was (or, with false, was not) handed to a human."""

    def run(s: Subject) -> Score:
        got = bool(_state(s, "transferred", s.transcript.outcome.transferred))
        if got == value:
            return Score(True, "transferred to a human" if got else "not transferred")
        reason = s.transcript.outcome.transfer_reason if s.turn is None else None
        why = f" ({reason})" if got and reason else ""
        return Score(False, f"expected transferred={str(value).lower()}; got {str(got).lower()}{why}")

    return run


# --- how the call ended ---------------------------------------------------------------


@check("ended_by", primary="value", scope="call")
def ended_by(value: Literal["caller", "agent", "max_turns"]) -> CheckFn:
    """Who ended the call: the caller, the agent (hung up or transferred), or the max_turns stop."""

    def run(s: Subject) -> Score:
        got = s.transcript.outcome.ended_by
        if got == value:
            return Score(True, f"ended by {got}")
        return Score(False, f"expected the call to be ended by {value}; ended by {_show(got)}")

    return run


@check("transfer_reason", primary="value", scope="call")
def transfer_reason(value: str) -> CheckFn:
    """The agent handed the caller to a human for this reason (request, anger, emergency, outage, …)."""
    want = normalize_text(value)

    def run(s: Subject) -> Score:
        o = s.transcript.outcome
        if not o.transferred:
            return Score(False, f"expected a transfer ({value}); the call was not transferred")
        got = o.transfer_reason
        if isinstance(got, str) and normalize_text(got) == want:
            return Score(True, f"transferred: {got}")
        return Score(False, f"expected transfer reason {_show(value)}; got {_show(got)}")

    return run


@check("turn_count", scope="call")
def turn_count(exactly: int | None = None, min: int | None = None, max: int | None = None) -> CheckFn:  # noqa: A002
    """The call took this many caller turns (`exactly`, or between `min` and `max`)."""
    if exactly is None and min is None and max is None:
        raise ValueError("give exactly, min or max")
    bounds = (f"exactly {exactly}" if exactly is not None else
              " and ".join(b for b in (f"at least {min}" if min is not None else "",
                                        f"at most {max}" if max is not None else "") if b))

    def run(s: Subject) -> Score:
        n = sum(1 for t in s.transcript.turns if t.index >= 1)
        ok = (exactly is None or n == exactly) and (min is None or n >= min) and (max is None or n <= max)
        return Score(ok, f"{n} caller turns" + ("" if ok else f"; expected {bounds}"))

    return run


_BOOKING_SLOTS = ("date", "time", "party_size", "name")


@check("booking_exists", primary="value", scope="call")
def booking_exists(value: bool = True) -> CheckFn:
    """The agent's backend really holds the booking this call made (and it matches the call's slots)."""

    def run(s: Subject) -> Score:
        o = s.transcript.outcome
        booking = o.side_effects.get("booking")
        if not value:
            if booking:
                return Score(False, f"expected no booking; the backend holds {_booking(booking)}")
            return Score(True, "no booking was made")
        if not isinstance(booking, dict) or not booking:
            return Score(False, "expected a booking in the agent's backend; none was made"
                         + ("" if "booking" in o.side_effects or o.side_effects else " (the target reports no side effects)"))
        off = [f"{k}: booked {_show(booking[k])}, the call said {_show(o.slots[k])}" for k in _BOOKING_SLOTS
               if k in booking and k in o.slots and not same_value(k, booking[k], o.slots[k])]
        if off:
            return Score(False, "the booking differs from the call: " + "; ".join(off))
        return Score(True, f"booked {_booking(booking)}")

    return run


def _booking(b: Any) -> str:
    if not isinstance(b, dict):
        return _show(b)
    bits = [str(b[k]) for k in ("id", "date", "time", "party_size", "name") if b.get(k) is not None]
    return " ".join(bits) or "a booking"


@check("cancelled", primary="value", scope="call")
def cancelled(value: bool | str = True) -> CheckFn:
    """A booking was really cancelled in the agent's backend (true, or that booking number); false: none."""

    def run(s: Subject) -> Score:
        got = s.transcript.outcome.side_effects.get("cancelled")
        if value is False:
            return Score(not got, "nothing was cancelled" if not got else f"expected no cancellation; {got} was cancelled")
        if not got:
            return Score(False, "expected a cancellation in the agent's backend; nothing was cancelled")
        if isinstance(value, str) and normalize_text(str(got)) != normalize_text(value):
            return Score(False, f"expected booking {value} cancelled; {got} was cancelled")
        return Score(True, f"{got} cancelled")

    return run


@check("side_effects", primary="expected", mapping_primary=True, scope="call")
def side_effects(expected: dict[str, Any]) -> CheckFn:
    """The target reported at least these side effects (nested mappings compared key by key)."""

    def run(s: Subject) -> Score:
        got = s.transcript.outcome.side_effects
        problems = _subset_problems(expected, got, "")
        if problems:
            return Score(False, "; ".join(problems[:4]), 1 - min(1.0, len(problems) / max(1, len(expected))))
        return Score(True, f"{len(expected)} side effect(s) match")

    return run


def _subset_problems(want: dict[str, Any], got: Any, prefix: str) -> list[str]:
    if not isinstance(got, dict):
        return [f"{prefix or 'side effects'}: expected a mapping, got {_show(got)}"]
    out: list[str] = []
    for key, value in want.items():
        where = f"{prefix}{key}"
        if key not in got:
            out.append(f"{where}: expected {_show(value)}, missing")
        elif isinstance(value, dict):
            out.extend(_subset_problems(value, got[key], where + "."))
        elif not same_value(key, got[key], value):
            out.append(f"{where}: expected {_show(value)}, got {_show(got[key])}")
    return out


@check("route", primary="value")
def route(value: str, every: bool = True) -> CheckFn:
    """Which model route served (primary, fallback, …): this turn, or every (or, with every: false, some) turn."""
    want = normalize_text(value)

    def run(s: Subject) -> Score:
        turns = [s.turn] if s.turn is not None else [t for t in s.transcript.turns if t.index >= 1 and t.reply.attempts > 0]
        routes = [t.reply.route or "unknown" for t in turns]
        if not routes:
            raise ValueError("no turn was answered by a model")
        hits = sum(1 for r in routes if normalize_text(r) == want)
        ok = hits == len(routes) if every else hits > 0
        counts = ", ".join(f"{r} ×{n}" for r, n in Counter(routes).items())
        return Score(ok, f"served by {counts}", hits / len(routes))

    return run
