"""Checks on the agent's structured state: intent, slots and transfer to a human.

A turn-level check reads what the agent reported for that turn (`reply.state`); a
call-level check reads the end-of-call `Outcome`. Values are compared after
`normalize_value`, so `party_size: "4名"` matches `4` and `time: 午後7時` matches `"19:00"`.
"""

from __future__ import annotations

from typing import Any

from ..normalize import normalize_text, normalize_value
from .base import CheckFn, Score, Subject, check
from .text import quote


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
            elif normalize_value(key, got[key]) != value:
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
