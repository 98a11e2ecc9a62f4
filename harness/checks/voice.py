"""Pace and turn-taking on a voice call, measured on the audio by the `voice` target.

Every figure comes from `AgentReply.voice` (see harness.targets.voice): the response time
(end of the caller's speech → the agent's first voiced audio), the longest silence inside
an answer, talk-over at the start of a caller's turn, how fast the agent stopped when the
caller barged in, how soon it spoke after a caller's silence. A turn-level check judges its
turn; a call-level one judges every turn it applies to and names the worst. On a target
that measured no audio the check cannot run (an error result, not a pass).
"""

from __future__ import annotations

from typing import Annotated, Any, Callable

from pydantic import Field

from ..records import Turn
from ..percentiles import quantile
from .base import CheckFn, Score, Subject, check

Millis = Annotated[float, Field(ge=0)]


def _turns(s: Subject) -> list[Turn]:
    turns = [s.turn] if s.turn is not None else s.transcript.turns
    if not any(t.reply.voice is not None for t in turns):
        raise ValueError("no audio was measured (this check needs a voice target)")
    return [t for t in turns if t.reply.voice is not None]


def _where(s: Subject, t: Turn) -> str:
    if s.turn is not None:
        return "this turn"
    return "the greeting" if t.kind == "greeting" else f"turn {t.index}"


def _worst(ms: float, s: Subject, what: str, values: list[tuple[Turn, float]], none: str) -> Score:
    if not values:
        raise ValueError(none)
    t, worst = max(values, key=lambda x: x[1])
    over = sum(1 for _, v in values if v > ms)
    if not over:
        return Score(True, f"{_where(s, t)}: {what} {worst:.0f} ms (limit {ms:.0f} ms)")
    count = f"{over} of {len(values)} turns over the limit; worst " if s.turn is None and over > 1 else ""
    return Score(False, f"{count}{_where(s, t)}: {what} {worst:.0f} ms, over the limit of {ms:.0f} ms")


def _measure(key: str, kinds: tuple[str, ...]) -> Callable[[Subject], list[tuple[Turn, Any]]]:
    def get(s: Subject) -> list[tuple[Turn, Any]]:
        return [(t, t.reply.voice.get(key)) for t in _turns(s)  # type: ignore[union-attr]
                if t.reply.voice.get("kind") in kinds]  # type: ignore[union-attr]

    return get


_responses = _measure("response_ms", ("say", "dtmf"))


@check("max_response_ms", primary="ms")
def max_response_ms(ms: Millis) -> CheckFn:
    """The agent started answering within this many ms of the caller's last sound (every turn)."""

    def run(s: Subject) -> Score:
        got = _responses(s)
        silent = [t for t, v in got if v is None]
        if silent:
            return Score(False, f"{_where(s, silent[0])}: the agent never answered (within the response timeout)")
        return _worst(ms, s, "response time", got, "no caller turn to answer")

    return run


@check("max_p95_response_ms", primary="ms", scope="call")
def max_p95_response_ms(ms: Millis) -> CheckFn:
    """The call's 95th percentile response time is at most this many ms."""

    def run(s: Subject) -> Score:
        values = sorted(v for _, v in _responses(s) if v is not None)
        if not values:
            raise ValueError("the agent answered no caller turn")
        got = quantile(values, 0.95)
        detail = f"p95 response time {got:.0f} ms over {len(values)} answers (p50 {quantile(values, 0.5):.0f} ms)"
        return Score(got <= ms, f"{detail}; limit {ms:.0f} ms" if got <= ms else f"{detail}, over the limit of {ms:.0f} ms")

    return run


@check("max_stop_ms", primary="ms")
def max_stop_ms(ms: Millis) -> CheckFn:
    """When the caller barged in, the agent stopped talking (or sent `clear`) within this many ms."""

    def run(s: Subject) -> Score:
        barges = [(t, t.reply.voice["barge_in"]) for t in _turns(s) if t.reply.voice.get("barge_in")]  # type: ignore[index, union-attr]
        if not barges:
            raise ValueError("no turn has a barge_in")
        missed = [t for t, b in barges if b.get("stop_ms") is None]
        if missed:
            note = barges[0][1].get("note", "the caller could not talk over the answer")
            return Score(False, f"{_where(s, missed[0])}: {note}")
        return _worst(ms, s, "agent stopped after", [(t, b["stop_ms"]) for t, b in barges], "no barge-in")

    return run


@check("max_silence_ms", primary="ms")
def max_silence_ms(ms: Millis) -> CheckFn:
    """No dead air longer than this many ms inside the agent's answers."""

    def run(s: Subject) -> Score:
        got = [(t, t.reply.voice["silence_ms"]) for t in _turns(s)  # type: ignore[index]
               if t.reply.voice.get("silence_ms") is not None]  # type: ignore[union-attr]
        return _worst(ms, s, "longest silence inside the answer", got, "the agent gave no answer to measure")

    return run


@check("max_talk_over_ms", primary="ms")
def max_talk_over_ms(ms: Millis = 100) -> CheckFn:
    """The agent talked over the caller's line for at most this many ms (default 100)."""

    def run(s: Subject) -> Score:
        got = [(t, v) for t, v in _measure("talk_over_ms", ("say",))(s) if v is not None]
        return _worst(ms, s, "agent talked over the caller for", got, "no caller line to talk over")

    return run


@check("reprompt_within_ms", primary="ms")
def reprompt_within_ms(ms: Millis) -> CheckFn:
    """After the caller's silence, the agent spoke up within this many ms."""

    def run(s: Subject) -> Score:
        got = _measure("reprompt_ms", ("silence",))(s)
        if not got:
            raise ValueError("no silence turn")
        quiet = [t for t, v in got if v is None]
        if quiet:
            t = quiet[0]
            return Score(False, f"{_where(s, t)}: the agent said nothing during "
                                f"{t.reply.voice.get('quiet_ms', 0):.0f} ms of silence")  # type: ignore[union-attr]
        return _worst(ms, s, "agent spoke up after", got, "no silence turn")

    return run


@check("hangs_up", scope="call")
def hangs_up(expected: bool = True) -> CheckFn:
    """The agent ended the call itself (closed the media stream); `false`: it never did."""

    def run(s: Subject) -> Score:
        by = s.transcript.outcome.ended_by
        did = by == "agent"
        if did == expected:
            return Score(True, "the agent hung up" if did else "the agent stayed on the line")
        return Score(False, "the agent never hung up" if expected else "the agent hung up")

    return run
