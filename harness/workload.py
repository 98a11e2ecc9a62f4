"""What a run will play: each case compiled once, then expanded into work items (case × repeat).

It sits under both the call driver (`calls`) and the runner that schedules the calls, so
neither needs the other to know what a planned call is. A case's `outcome` and `budgets`
become ordinary call-level checks here, in a fixed order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from .checks import CompiledCheck, compile_check
from .spec import CaseSpec, CheckSpec, TurnCount, TurnSpec

__all__ = ["CompiledCase", "WorkItem", "call_check_specs", "compile_case", "plan_items"]


# --- what the case expects at the end --------------------------------------------------


# (field of the case's outcome or budgets, the check it becomes), in the order they run
_OUTCOME_CHECKS = (
    ("intent", "intent"), ("slots", "slots"), ("transferred", "transferred"),
    ("transfer_reason", "transfer_reason"), ("ended_by", "ended_by"), ("turns", "turn_count"),
    ("booking_exists", "booking_exists"), ("cancelled", "cancelled"), ("side_effects", "side_effects"),
)
_BUDGET_CHECKS = (
    ("first_token_ms", "max_first_token_ms"), ("turn_ms", "max_turn_ms"),
    ("p50_turn_ms", "max_p50_turn_ms"), ("p95_turn_ms", "max_p95_turn_ms"),
    ("response_ms", "max_response_ms"), ("p95_response_ms", "max_p95_response_ms"),
    ("stop_ms", "max_stop_ms"), ("silence_ms", "max_silence_ms"),
)


def call_check_specs(case: CaseSpec) -> list[CheckSpec]:
    """The case's `outcome` and `budgets` as ordinary call-level check specs, in a fixed order."""
    src = case.source
    out: list[CheckSpec] = []
    for given, table in ((case.outcome, _OUTCOME_CHECKS), (case.budgets, _BUDGET_CHECKS)):
        if given is None:
            continue
        for field, name in table:
            arg = getattr(given, field)
            if arg is None:
                continue
            if field == "turns":  # `turns: 3` means exactly three
                arg = arg.model_dump(exclude_none=True) if isinstance(arg, TurnCount) else {"exactly": arg}
            out.append(CheckSpec(name=name, arg=arg, pos=src, name_pos=src))
    return out


@dataclass
class CompiledCase:
    """A case with its checks compiled once, shared by all its repeats.

    What every call reads of the case (its turns, topic, tags, source line) is worked out
    here once too: on the pydantic model those are properties that build new objects.
    """

    case: CaseSpec
    turn_checks: list[list[CompiledCheck]]
    call_checks: list[CompiledCheck]
    repeat: int
    turns: list[TurnSpec]
    topic: str
    tags: tuple[str, ...]
    source: str  # "file:line"
    inputs: str | None = None  # our side of the call, hashed (`stamp_inputs`)


def compile_case(case: CaseSpec, default_repeat: int = 1) -> CompiledCase:
    """Compile a case's checks; `outcome` and `budgets` become ordinary call-level checks."""
    # The loader compiled the case's own checks while validating it, by (id(spec), scope):
    # each keeps its spec alive, so an id found there is that very spec; the specs of an
    # edited case, and outcome and budget checks, are compiled here.
    loaded = case._derived.get("checks") or {}

    def compiled(spec: CheckSpec, scope: Any) -> CompiledCheck:
        hit = loaded.get((id(spec), scope))
        return hit if hit is not None else compile_check(spec, scope=scope)

    turns = case.call_turns
    turn_checks = [[compiled(s, "turn") for s in t.expect] for t in turns]
    call_specs: list[CheckSpec] = [*case.call_expect, *call_check_specs(case)]  # outcome + budgets
    src = case.source
    call_checks = [compiled(s, "call") for s in call_specs]
    return CompiledCase(case, turn_checks, call_checks, case.repeat or default_repeat, turns=turns,
                        topic=case.resolved_topic, tags=tuple(case.resolved_tags),
                        source=f"{src.path}:{src.line}")


@dataclass(frozen=True)
class WorkItem:
    compiled: CompiledCase
    repeat_index: int


def plan_items(compiled: Iterable[CompiledCase]) -> list[WorkItem]:
    """Every case × repeat, repeats of one case interleaved with other cases' first runs."""
    compiled = list(compiled)
    items: list[WorkItem] = []
    max_repeat = max((c.repeat for c in compiled), default=0)
    for r in range(max_repeat):
        items.extend(WorkItem(c, r) for c in compiled if r < c.repeat)
    return items


# --- input fingerprints ------------------------------------------------------------------
#
# Every result stores `input_fp`: a hash of what reached the model from our side — the
# target's own inputs (`Target.inputs()`: prompt text, model name and parameters, the
# request template, the embedded agent's version) and the case's definition (its turns and
# checks). The git sha stays as information; attribution reads this instead, so it works
# outside a git checkout and on a day main got an unrelated commit. Per case: the same
# inputs and different behaviour is the model's doing; different inputs with the same model
# identity is ours; both at once is said as such (`mixed`).


def _dump_inputs(value: Any) -> bytes:
    import json

    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False, separators=(",", ":")).encode()


def case_fingerprint(digest: bytes, case: CaseSpec) -> str:
    """16 hex digits: the target's inputs (`digest`) and the case's own definition."""
    import hashlib

    h = hashlib.sha256(digest)
    h.update(case.model_dump_json().encode())
    return h.hexdigest()[:16]


def with_service_versions(fp: str | None, versions: Iterable[str]) -> str | None:
    """`fp` with the versions the service under test reported during the call folded in: a
    deploy of the service is our side of the call, like a changed prompt. `fp` itself when
    the service reported none (a run before and after adding `version_header` therefore
    differ once, and only in the fingerprint)."""
    import hashlib

    found = sorted(set(versions))
    if fp is None or not found:
        return fp
    h = hashlib.sha256(fp.encode())
    h.update("\x00".join(found).encode())
    return h.hexdigest()[:16]


def stamp_inputs(target: Any, compiled: Iterable[CompiledCase]) -> None:
    """Give every compiled case its input fingerprint, once per run (a few µs a case)."""
    import hashlib

    digest = hashlib.sha256(_dump_inputs(target.inputs())).digest()
    for cc in compiled:
        cc.inputs = case_fingerprint(digest, cc.case)
