"""Plain records that flow from targets through checks to the store and reporters.

Targets produce a `Transcript`; checks produce `CheckResult`s; the runner wraps both in a
`CaseResult`. These are dataclasses (cheap to build by the thousand); the store and the JSON
reporter serialise them with `to_dict()`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Literal

from .secrets import mask, mask_value, secrets

Status = Literal["passed", "failed", "error", "not_run"]

_SCALARS = frozenset({str, int, float, bool, type(None)})
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def asdict(obj: Any, *, copy_values: bool = True) -> dict[str, Any]:
    """`dataclasses.asdict`, same result, without its per-value deepcopy of plain scalars.

    The store and the analysis turn every result into dicts; the standard version spent
    about 0.2 ms per result on a one-turn case, most of it copying strings and numbers.
    With `copy_values=False` nested dataclasses still become dicts but lists and dicts are
    shared with the record: a read-only view for code that only reads (the analysis).
    """
    names = _FIELD_NAMES.get(type(obj))
    if names is None:
        names = _FIELD_NAMES[type(obj)] = tuple(f.name for f in fields(obj))
    if copy_values:
        return {name: _copy(getattr(obj, name)) for name in names}
    return {name: _view(getattr(obj, name)) for name in names}


def _view(v: Any) -> Any:
    if type(v) in _SCALARS:
        return v
    if is_dataclass(v) and not isinstance(v, type):
        return asdict(v, copy_values=False)
    if type(v) is list and v and is_dataclass(v[0]):
        return [_view(x) for x in v]
    return v


def _copy(v: Any) -> Any:
    t = type(v)
    if t in _SCALARS:
        return v
    if t is dict or isinstance(v, dict):
        return t((_copy(k), _copy(x)) for k, x in v.items())
    if t is list or isinstance(v, list):
        return t(_copy(x) for x in v)
    if is_dataclass(v) and not isinstance(v, type):
        return asdict(v)
    if isinstance(v, tuple):
        return t(*[_copy(x) for x in v]) if hasattr(v, "_fields") else t(_copy(x) for x in v)
    return copy.deepcopy(v)


@dataclass(slots=True)
class AgentReply:
    """One answer from the agent, as a target returns it."""

    text: str
    first_token_ms: float | None = None
    total_ms: float | None = None
    model: str | None = None  # the model the endpoint says answered
    fingerprint: str | None = None  # system_fingerprint or equivalent
    route: str | None = None  # which route served (primary, fallback, …)
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost: float | None = None
    # structured state the agent reports for this turn (intent, slots, transferred, …)
    state: dict[str, Any] = field(default_factory=dict)
    ended: bool = False  # the agent hung up or transferred after this reply
    attempts: int = 1  # requests made, retries included
    # behind a gateway: the deployment that served ("model@api-base host", never a key), the
    # gateway's id for it, and the upstream requests it made (its retries and fallbacks included)
    deployment: str | None = None
    deployment_id: str | None = None
    upstream_attempts: int | None = None
    voice: dict[str, Any] | None = None  # what a voice target measured on the audio (ms from the call's start)
    # the version the service under test said it runs (the target's version_header / version_path):
    # part of our side of the call, so it is folded into the result's input fingerprint
    service_version: str | None = None


@dataclass(slots=True)
class Turn:
    """One exchange of a call: what the caller said and how the agent answered."""

    index: int  # 0 is the agent's greeting; caller turns count from 1
    caller: str | None
    reply: AgentReply
    kind: str = "say"  # say, silence, dtmf, greeting

    def to_dict(self, *, copy_values: bool = True) -> dict[str, Any]:
        return {"index": self.index, "kind": self.kind, "caller": self.caller,
                "reply": asdict(self.reply, copy_values=copy_values)}


@dataclass(slots=True)
class Outcome:
    """End-of-call state."""

    intent: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    transferred: bool = False
    transfer_reason: str | None = None
    ended_by: str | None = None  # caller, agent, max_turns, error
    side_effects: dict[str, Any] = field(default_factory=dict)
    # the call's pace, filled by the call driver: caller turns, p50/p95/max turn ms, slowest turn
    pace: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Transcript:
    turns: list[Turn] = field(default_factory=list)
    outcome: Outcome = field(default_factory=Outcome)

    @property
    def last_text(self) -> str:
        return self.turns[-1].reply.text if self.turns else ""

    @property
    def model(self) -> str | None:
        for t in reversed(self.turns):
            if t.reply.model:
                return t.reply.model
        return None

    @property
    def fingerprint(self) -> str | None:
        for t in reversed(self.turns):
            if t.reply.fingerprint:
                return t.reply.fingerprint
        return None

    def totals(self) -> dict[str, float | int | None]:
        def total(attr: str):
            vals = [getattr(t.reply, attr) for t in self.turns if getattr(t.reply, attr) is not None]
            return sum(vals) if vals else None

        return {"tokens_in": total("tokens_in"), "tokens_out": total("tokens_out"), "cost": total("cost")}

    def to_dict(self, *, copy_values: bool = True) -> dict[str, Any]:
        return {"turns": [t.to_dict(copy_values=copy_values) for t in self.turns],
                "outcome": asdict(self.outcome, copy_values=copy_values)}


@dataclass(slots=True)
class CheckResult:
    """The one result shape every check returns (after the dispatcher applies negation)."""

    name: str  # check name, e.g. "contains"
    passed: bool
    score: float = 1.0  # 0..1
    reason: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    turn: int | None = None  # caller turn number (1-based) for turn-level checks; None for the whole call
    weight: float = 1.0
    error: bool = False  # the check itself could not run (judge unreachable, …)
    skipped: bool = False  # not run by policy (judge_when: exact_passed, judge budget spent)

    def to_dict(self, *, copy_values: bool = True) -> dict[str, Any]:
        return asdict(self, copy_values=copy_values)


@dataclass(slots=True)
class CaseResult:
    case_id: str
    topic: str
    tags: list[str]
    repeat_index: int
    status: Status
    checks: list[CheckResult] = field(default_factory=list)
    transcript: Transcript | None = None
    error: str | None = None  # infra error line when status == "error" or "not_run"
    error_kind: str | None = None
    started: float = 0.0  # epoch seconds
    duration_ms: float = 0.0
    source: str | None = None  # "file:line" of the case
    inputs: str | None = None  # fingerprint of our side of the call (harness.analysis.inputs)

    @property
    def failing_reasons(self) -> list[str]:
        out = []
        for c in self.checks:
            if not c.passed and not c.skipped:
                where = f"turn {c.turn}: " if c.turn is not None else ""
                out.append(f"{where}{c.name}: {c.reason}")
        return out

    def to_dict(self) -> dict[str, Any]:
        totals = self.transcript.totals() if self.transcript else {}
        return {
            "case_id": self.case_id,
            "topic": self.topic,
            "tags": self.tags,
            "repeat_index": self.repeat_index,
            "status": self.status,
            "error": self.error,
            "error_kind": self.error_kind,
            "started": self.started,
            "duration_ms": self.duration_ms,
            "source": self.source,
            "model": self.transcript.model if self.transcript else None,
            "fingerprint": self.transcript.fingerprint if self.transcript else None,
            **totals,
            "checks": [c.to_dict() for c in self.checks],
            "transcript": self.transcript.to_dict() if self.transcript else None,
        }


RunStatus = Literal["running", "complete", "incomplete", "aborted"]


@dataclass(slots=True)
class RunInfo:
    """One run of a suite, as the store keeps it."""

    run_id: str
    suite: str
    suite_file: str = ""
    target: dict[str, Any] = field(default_factory=dict)  # kind, model, base URL without secrets
    model: str | None = None
    git_sha: str | None = None
    host: str = ""
    started: float = 0.0  # epoch seconds
    ended: float | None = None
    status: RunStatus = "running"
    # complete: every planned case ran; incomplete: the process died or was stopped;
    # aborted: the circuit breaker stopped it
    exit_code: int | None = None
    planned: int = 0  # case × repeat items in the plan
    counts: dict[str, int] = field(default_factory=dict)  # passed/failed/error/not_run
    group: str | None = None  # shards of one CI job share a group
    message: str | None = None  # one line: why the run stopped early, etc.
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pass_rate(passed: int, failed: int) -> float | None:
    """THE pass rate: passed ÷ (passed + failed), the results that say something about the
    agent; infra errors and cases that did not run are not in it. None when nothing was judged.
    Every figure called a pass rate (a run, a topic, a case's history, a baseline) is this one."""
    judged = passed + failed
    return passed / judged if judged else None


# An answer kept in the store and the reports is cut to this many characters, with a marker
# saying how much was cut (HARNESS_MAX_STORED_ANSWER_CHARS). The checks saw all of it.
DEFAULT_MAX_STORED_ANSWER_CHARS = 100_000


def max_stored_answer_chars() -> int:
    import os

    raw = os.environ.get("HARNESS_MAX_STORED_ANSWER_CHARS", "").strip()
    try:
        return max(1000, int(raw)) if raw else DEFAULT_MAX_STORED_ANSWER_CHARS
    except ValueError:
        return DEFAULT_MAX_STORED_ANSWER_CHARS


def cut_long_answers(result: CaseResult, limit: int) -> None:
    """Cut every reply text (and check reason) of `result` longer than `limit` characters, in
    place; and blank out every registered secret (`harness.secrets`) a server echoed into it."""
    masking = bool(secrets())
    t = result.transcript
    if t is not None:
        for turn in t.turns:
            reply = turn.reply
            text = reply.text
            if text and len(text) > limit:
                reply.text = text = f"{text[:limit]}… [cut: {len(text) - limit:,} more characters]"
            if masking:
                reply.text = mask(text)
                reply.model = mask(reply.model) if reply.model else reply.model
                reply.fingerprint = mask(reply.fingerprint) if reply.fingerprint else reply.fingerprint
                if reply.service_version:
                    reply.service_version = mask(reply.service_version)
                reply.state = mask_value(reply.state)
                if turn.caller:
                    turn.caller = mask(turn.caller)
    for c in result.checks:
        if c.reason and len(c.reason) > limit:
            c.reason = f"{c.reason[:limit]}… [cut: {len(c.reason) - limit:,} more characters]"
        if masking and c.reason:
            c.reason = mask(c.reason)
    if masking and result.error:
        result.error = mask(result.error)
