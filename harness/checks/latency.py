"""Latency budgets: how long a turn took, how long until its first token, and the call's pace.

A turn-level check measures that turn; a call-level check measures every turn and names
the slowest, because "turn 3 took 2.4 s" is what someone debugging a slow call needs.
The pace checks (`max_p50_turn_ms`, `max_p95_turn_ms`) judge the conversation as a caller
feels it: one slow turn is tolerable, a call that drags is not. A turn the target did not
time is skipped (so are the greeting and replies after the agent hung up, which no model
produced); if no turn was timed the check cannot run.
"""

from __future__ import annotations

from typing import Annotated, Callable

from pydantic import Field

from ..records import AgentReply
from ..percentiles import quantile
from .base import CheckFn, Score, Subject, check

Millis = Annotated[float, Field(gt=0)]
# (milliseconds, note) for one reply, or None when the target did not time it
Measure = Callable[[AgentReply], tuple[float, str] | None]


def _total(r: AgentReply) -> tuple[float, str] | None:
    return (r.total_ms, "") if r.total_ms is not None else None


def _first_token(r: AgentReply) -> tuple[float, str] | None:
    if r.first_token_ms is not None:
        return r.first_token_ms, ""
    # a non-streaming target only knows the whole reply time; that is an upper bound
    return (r.total_ms, " (no first-token time; used the total)") if r.total_ms is not None else None


def _budget(ms: float, what: str, measure: Measure) -> CheckFn:
    def run(s: Subject) -> Score:
        turns = [s.turn] if s.turn is not None else s.transcript.turns
        timed = [(t.index, *m) for t in turns if (m := measure(t.reply)) is not None]
        if not timed:
            raise ValueError(f"the target reported no {what} for {'this turn' if s.turn else 'any turn'}")
        index, worst, note = max(timed, key=lambda x: x[1])
        over = sum(1 for _, v, _ in timed if v > ms)
        where = f"turn {_label(s, index)}" if s.turn is None else "this turn"
        if not over:
            return Score(True, f"{'slowest ' if s.turn is None else ''}{where}: {what} {worst:.0f} ms{note} "
                               f"(limit {ms:.0f} ms)")
        count = f"{over} of {len(timed)} turns over the limit; slowest " if s.turn is None and over > 1 else ""
        return Score(False, f"{count}{where}: {what} {worst:.0f} ms{note}, over the limit of {ms:.0f} ms")

    return run


def _label(s: Subject, index: int) -> int:
    """Caller turn number: real transcripts start with the greeting at index 0."""
    turns = s.transcript.turns
    return index if turns and turns[0].kind == "greeting" else index + 1


def _pace_budget(ms: float, q: float) -> CheckFn:
    name = f"p{round(q * 100)}"

    def run(s: Subject) -> Score:
        timed = sorted((t.reply.total_ms, t.index) for t in s.transcript.turns
                       if t.index >= 1 and t.reply.total_ms is not None and t.reply.attempts > 0)
        if not timed:
            raise ValueError("the target reported no turn time for any turn")
        values = [v for v, _ in timed]
        got = quantile(values, q)
        worst, index = timed[-1]
        detail = (f"{name} turn time {got:.0f} ms over {len(values)} turns "
                  f"(p50 {quantile(values, 0.5):.0f} ms, slowest turn {_label(s, index)}: {worst:.0f} ms)")
        if got <= ms:
            return Score(True, f"{detail}; limit {ms:.0f} ms")
        return Score(False, f"{detail}, over the limit of {ms:.0f} ms")

    return run


@check("max_p50_turn_ms", primary="ms", scope="call")
def max_p50_turn_ms(ms: Millis) -> CheckFn:
    """The call's median turn time is at most this many milliseconds."""
    return _pace_budget(ms, 0.5)


@check("max_p95_turn_ms", primary="ms", scope="call")
def max_p95_turn_ms(ms: Millis) -> CheckFn:
    """The call's 95th percentile turn time is at most this many milliseconds."""
    return _pace_budget(ms, 0.95)


@check("max_turn_ms", primary="ms")
def max_turn_ms(ms: Millis) -> CheckFn:
    """Every reply (or this turn's reply) took at most this many milliseconds."""
    return _budget(ms, "turn time", _total)


@check("max_first_token_ms", primary="ms")
def max_first_token_ms(ms: Millis) -> CheckFn:
    """Every reply (or this turn's reply) started within this many milliseconds."""
    return _budget(ms, "first token", _first_token)
