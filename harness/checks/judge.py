"""The `judge` and `call_judge` checks: thin fronts over the JudgeService a run lends them.

YAML forms:

    - judge: 人数と時間を復唱し、名前を尋ねている           # inline criteria
    - judge: {rubric: confirms-reservation-details, threshold: 0.7}
    - judge: {criteria: …, evaluation_steps: [...], threshold: 0.6, repeats: 3}
    - call_judge: {rubric: polite-and-concise}           # the whole call, in the case's expect

Both are registered with `needs_llm=True`, so the runner runs them after the exact checks
(and skips them when `judge_when: exact_passed` and an exact check failed). A judge that
cannot answer makes an error result (the dispatcher's `error=True`), never a failure of
the agent. Nothing heavy is imported here: deepeval loads on the first judgement.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from pydantic import Field

from .base import CheckFn, Score, Subject, check
from ..records import Turn
from ..tracing import judged
from ..judge._errors import JudgeError

NO_JUDGE = "no judge configured: add a judge: block to the suite"
_RUBRIC_NAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")

Threshold = Annotated[float, Field(ge=0, le=1)]
Repeats = Annotated[int, Field(ge=1, le=15)]


@check("judge", primary="criteria", needs_llm=True)
def judge(
    criteria: str | None = None,
    rubric: str | None = None,
    evaluation_steps: list[str] | None = None,
    threshold: Threshold | None = None,
    repeats: Repeats | None = None,
) -> CheckFn:
    """LLM judge (GEval): the answer meets the criteria, or the named rubric, by the threshold."""

    def ask(service: Any, subject: Subject, **how: Any) -> Awaitable[Any]:
        return service.judge_answer(answer=subject.text, input=_input_of(subject), **how)

    return _judged(ask, criteria, rubric, evaluation_steps, threshold, repeats)


@check("call_judge", primary="criteria", scope="call", needs_llm=True)
def call_judge(
    criteria: str | None = None,
    rubric: str | None = None,
    evaluation_steps: list[str] | None = None,
    threshold: Threshold | None = None,
    repeats: Repeats | None = None,
) -> CheckFn:
    """LLM judge of a whole call (ConversationalGEval) against criteria or a named rubric."""

    def ask(service: Any, subject: Subject, **how: Any) -> Awaitable[Any]:
        return service.judge_call(turns=conversation(subject.transcript.turns), **how)

    return _judged(ask, criteria, rubric, evaluation_steps, threshold, repeats)


def _judged(ask: Callable[..., Awaitable[Any]], criteria: str | None, rubric: str | None,
            evaluation_steps: list[str] | None, threshold: float | None, repeats: int | None) -> CheckFn:
    """The check both judges share: validate when compiled, then ask the run's judge and score its verdict."""
    _validate(criteria, rubric, evaluation_steps)

    async def run(subject: Subject) -> Score:
        verdict = await judged(rubric or "criteria", ask(_service(subject), subject, criteria=criteria, rubric=rubric,
                                                         evaluation_steps=evaluation_steps, threshold=threshold,
                                                         repeats=repeats))
        return _score(verdict)

    return run


def conversation(turns: list[Turn]) -> list[tuple[str, str]]:
    """The call as (role, text) pairs: the caller is `user`, the agent `assistant`."""
    out: list[tuple[str, str]] = []
    for t in turns:
        if t.kind != "greeting":
            out.append(("user", _caller_words(t)))
        out.append(("assistant", t.reply.text))
    return out


def _validate(criteria: str | None, rubric: str | None, steps: list[str] | None) -> None:
    """Mistakes found when the golden file is compiled, so they carry its position."""
    if rubric is not None:
        if criteria is not None or steps is not None:
            raise ValueError("give either rubric or criteria/evaluation_steps, not both")
        if not _RUBRIC_NAME.match(rubric):
            raise ValueError(f"rubric {rubric!r} is not a rubric name (expected lowercase words with - or _, "
                             "the name: of a file in rubrics/)")
        return
    if criteria is None and not steps:
        raise ValueError("needs criteria (what a good answer does) or a rubric name")
    if criteria is not None and not criteria.strip():
        raise ValueError("criteria must not be blank")
    if steps is not None and (not steps or any(not s.strip() for s in steps)):
        raise ValueError("evaluation_steps must be a list of non-blank steps")


def _service(subject: Subject) -> Any:
    service = subject.extras.get("judge")
    if service is None:
        raise JudgeError(NO_JUDGE)
    return service


def _input_of(subject: Subject) -> str | None:
    """What the caller said to get this answer (every caller turn, for a whole call)."""
    if subject.turn is not None:
        return _caller_words(subject.turn)
    said = [_caller_words(t) for t in subject.transcript.turns if t.kind != "greeting"]
    return "\n".join(s for s in said if s) or None


def _caller_words(t: Turn) -> str:
    if t.kind == "silence":
        return "(the caller stays silent)"
    if t.kind == "dtmf":
        return f"(the caller presses {t.caller or ''} on the keypad)"
    return t.caller or ""


def _score(verdict: Any) -> Score:
    if verdict.skipped:
        return Score(passed=False, reason=verdict.reason, skipped=True)
    notes = [f"threshold {verdict.threshold:g}"]
    if len(verdict.scores) > 1:
        passes = sum(1 for s in verdict.scores if s >= verdict.threshold)
        notes.append(f"median of {len(verdict.scores)}, {passes} passed")
    if verdict.cached:
        notes.append("cached")
    return Score(passed=verdict.passed, score=verdict.score,
                 reason=f"judge score {verdict.score:.2f} ({', '.join(notes)}): {verdict.reason}")
