"""Play one call: the caller's side of the phone line, turn by turn, checked as it goes.

The runner decides *when* and *how hard* calls are made (limits, retries, the breaker);
this module decides *what the caller says*: scripted turns (`caller`, `silence`, `dtmf`)
or a goal-driven caller whose brain answers whatever the agent asks. Either way every
turn lands in the transcript as it was played, so `replay_case` can turn any recorded call
(a goal-driven one included) into a scripted case that plays it again exactly.

Each call also gets its pace (caller turns, p50/p95/max turn time, slowest turn) in its
outcome, and a clear `ended_by`: caller, agent, or max_turns when a goal-driven caller went
round in circles and was stopped.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Protocol, TypeVar

from .checks import CompiledCheck, Subject
from .percentiles import quantile
from .records import AgentReply, CheckResult, Outcome, Transcript, Turn
from .spec import CaseSpec, TurnSpec
from .targets.base import CallContext, Conversation, Target
from .workload import CompiledCase, WorkItem, call_check_specs, compile_case
from .tracing import traced_turn

__all__ = ["call_check_specs", "compile_call", "pace", "play_call", "replay_case", "script_from"]

T = TypeVar("T")


class Guard(Protocol):
    """What plays a call's requests under the suite's limits (the runner's `Guard`)."""

    async def request(self, fn: Callable[[], Awaitable[T]], *, what: str = "request") -> T: ...


def compile_call(case: CaseSpec, default_repeat: int = 1) -> CompiledCase:
    """Compile a case with every outcome and budget check (the same as `workload.compile_case`)."""
    return compile_case(case, default_repeat)


# --- one call ---------------------------------------------------------------------------


class _Context(CallContext):
    def __init__(self, guard: Guard, case: CaseSpec, repeat_index: int):
        self._guard = guard
        self.case = case
        self.repeat_index = repeat_index

    async def request(self, fn: Callable[[], Awaitable[T]], *, what: str = "request") -> T:
        return await self._guard.request(fn, what=what)


class _Call:
    """The call in progress: its transcript and the checks that ran so far."""

    def __init__(self, case: CaseSpec, extras: dict[str, Any]):
        self.case = case
        self.extras = extras
        self.transcript = Transcript()
        self.checks: list[CheckResult] = []
        self.deferred: list[tuple[CompiledCheck, Subject]] = []
        self.ended_at: int | None = None  # caller turn after which the agent ended the call
        self.stopped: str | None = None  # ended_by forced by the driver (max_turns)

    async def turn(self, conv: Conversation, n: int, text: str, kind: str,
                   checks: list[CompiledCheck] = ()) -> AgentReply:
        reply = await traced_turn(n, kind, text, conv.reply(text, kind=kind))
        turn = Turn(n, text if kind != "silence" else None, reply, kind=kind)
        self.transcript.turns.append(turn)
        if checks:
            subject = Subject(text=reply.text, transcript=self.transcript, case=self.case, turn=turn,
                              extras=self.extras)
            await self.run(checks, subject)
        if reply.ended and self.ended_at is None:
            self.ended_at = n
        return reply

    async def run(self, checks: list[CompiledCheck], subject: Subject) -> None:
        for c in checks:
            if c.info.needs_llm:
                self.deferred.append((c, subject))
            else:
                self.checks.append(await c.run(subject))

    def never_happened(self, n: int, checks: list[CompiledCheck]) -> None:
        for c in checks:
            self.checks.append(CheckResult(
                name=c.display_name, passed=False, score=0.0, turn=n, args=c.args, weight=c.spec.weight,
                reason=f"the agent ended the call at turn {self.ended_at}; turn {n} never happened"))


async def play_call(
    target: Target, item: WorkItem, guard: Guard, extras: dict[str, Any] | None = None
) -> tuple[Transcript, list[CheckResult]]:
    """Play one call (scripted or goal-driven), checking each reply as it arrives.

    Checks that need an LLM (judges) are deferred to the end of the call and run together,
    after the exact checks; with `judge_when: exact_passed` they are skipped when an exact
    check already failed, which is where most of a run's judge spend would go to waste.
    """
    extras = extras or {}
    cc = item.compiled
    case = cc.case
    conv = await target.open(case, _Context(guard, case, item.repeat_index))
    call = _Call(case, extras)
    greeting = await conv.greet()
    if greeting is not None:
        call.transcript.turns.append(Turn(0, None, greeting, kind="greeting"))
    if case.caller is not None:
        await _play_goal(conv, call, greeting, item.repeat_index)
    else:
        await _play_script(conv, call, cc)
    call.transcript.outcome = _finish(await conv.close(), call)
    if cc.call_checks:
        whole = "\n".join(t.reply.text for t in call.transcript.turns)
        await call.run(cc.call_checks, Subject(text=whole, transcript=call.transcript, case=case, extras=extras))
    if call.deferred:
        if extras.get("judge_when", "always") == "exact_passed" and not all(c.passed for c in call.checks):
            for c, subject in call.deferred:
                turn = subject.turn.index if subject.turn is not None else None
                call.checks.append(CheckResult(name=c.display_name, passed=False, score=0.0, turn=turn, skipped=True,
                                               reason="skipped: an exact check already failed", args=c.args,
                                               weight=c.spec.weight))
        else:
            call.checks.extend(await asyncio.gather(*(c.run(s) for c, s in call.deferred)))
    return call.transcript, call.checks


async def _play_script(conv: Conversation, call: _Call, cc: CompiledCase) -> None:
    turns = cc.turns  # compile_case works the turns out once
    for n, (spec, turn_checks) in enumerate(zip(turns, cc.turn_checks), start=1):
        if call.ended_at is not None:
            call.never_happened(n, turn_checks)
            continue
        text, kind = _turn_input(spec)
        await call.turn(conv, n, text, kind, turn_checks)


def _turn_input(spec: TurnSpec) -> tuple[str, str]:
    if spec.caller is not None:
        return spec.caller, "say"
    if spec.dtmf is not None:
        return spec.dtmf, "dtmf"
    return "", "silence"


async def _play_goal(conv: Conversation, call: _Call, greeting: AgentReply | None, repeat_index: int) -> None:
    """Let the caller's brain talk until it hangs up, the agent ends the call, or max_turns passes."""
    from .callers import make_brain

    spec = call.case.caller
    assert spec is not None
    brain = make_brain(call.case, repeat_index)
    try:
        last: AgentReply | None = greeting
        n = 0
        while True:
            move = await brain.next(last)
            if move.kind == "hangup":
                return
            if n >= spec.max_turns:
                call.stopped = "max_turns"
                expected = call.case.outcome is not None and call.case.outcome.ended_by == "max_turns"
                if not expected:  # a case may expect the stop (its ended_by check then judges it)
                    call.checks.append(_max_turns_result(spec.max_turns, spec.goal, last, brain.goal_reached))
                return
            n += 1
            last = await call.turn(conv, n, move.text, move.kind)
            if last.ended or move.last:
                return
    finally:
        await brain.aclose()


def _max_turns_result(limit: int, goal: str, last: AgentReply | None, reached: bool) -> CheckResult:
    said = " ".join((last.text if last else "").split())
    said = said[:80] + ("…" if len(said) > 80 else "")
    state = "reached its goal but did not hang up" if reached else f"did not reach its goal ({goal})"
    return CheckResult(name="max_turns", passed=False, score=0.0, args={"max_turns": limit},
                       reason=f"stopped after max_turns={limit} caller turns: the caller {state}; "
                              f"the agent last said \"{said}\"")


def _finish(outcome: Outcome, call: _Call) -> Outcome:
    """Who ended the call, and its pace, from what the driver saw."""
    if call.stopped is not None:
        outcome.ended_by = call.stopped
    elif outcome.ended_by is None:
        outcome.ended_by = "agent" if call.ended_at is not None else "caller"
    outcome.pace = pace(call.transcript)
    return outcome


# --- pace ---------------------------------------------------------------------------------


def pace(transcript: Transcript) -> dict[str, Any]:
    """Caller turns and the agent's turn times (p50, p95, max, slowest turn) for one call.

    Only turns the agent actually answered count: the greeting and the empty replies after
    the agent hung up are not part of the conversation's pace.
    """
    caller_turns = [t for t in transcript.turns if t.index >= 1]
    timed = [(t.index, t.reply.total_ms) for t in caller_turns
             if t.reply.total_ms is not None and t.reply.attempts > 0]
    out: dict[str, Any] = {"turns": len(caller_turns)}
    if len(timed) == 1:  # a one-question call: every figure is its one turn
        (index, ms), = timed
        ms = round(ms, 1)
        out.update(p50_turn_ms=ms, p95_turn_ms=ms, max_turn_ms=ms, slowest_turn=index)
    elif timed:
        values = sorted(ms for _, ms in timed)
        slowest = max(timed, key=lambda x: x[1])
        out.update(p50_turn_ms=round(quantile(values, 0.5), 1), p95_turn_ms=round(quantile(values, 0.95), 1),
                   max_turn_ms=round(slowest[1], 1), slowest_turn=slowest[0])
    firsts = sorted(t.reply.first_token_ms for t in caller_turns
                    if t.reply.first_token_ms is not None and t.reply.attempts > 0)
    if firsts:
        out["p95_first_token_ms"] = round(quantile(firsts, 0.95), 1)
    return out


# --- replay -------------------------------------------------------------------------------


def script_from(transcript: Transcript) -> list[TurnSpec]:
    """The caller's side of a recorded call, as scripted turns (greeting left out)."""
    out: list[TurnSpec] = []
    for t in transcript.turns:
        if t.index < 1:
            continue
        if t.kind == "dtmf":
            out.append(TurnSpec(dtmf=t.caller or ""))
        elif t.kind == "silence":
            out.append(TurnSpec(silence=0))
        else:
            out.append(TurnSpec(caller=t.caller or ""))
    return out


def replay_case(case: CaseSpec, transcript: Transcript) -> CaseSpec:
    """The same case, with its caller replaced by the lines recorded in `transcript`.

    The id, faults, call-level expectations and outcome stay, so the agent (which seeds
    itself from the case id and repeat) answers as it did and the same checks judge it.
    A goal-driven call that hit max_turns replays to the same last turn.
    """
    turns = script_from(transcript)
    if not turns:
        raise ValueError(f"case {case.id!r}: the recorded call has no caller turns to replay")
    if case.caller is None:  # a scripted call keeps its per-turn expectations
        for new, old in zip(turns, case.call_turns):
            if _turn_input(new) == _turn_input(old) or (new.silence is not None and old.silence is not None):
                new.expect = list(old.expect)
    return case.model_copy(update={"turns": turns, "caller": None, "prompt": None,
                                   "expect": list(case.call_expect)})
