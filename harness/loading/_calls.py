"""Checks on call scripts that pydantic alone cannot make, with file:line:col positions.

A call script that cannot be satisfied must fail at validation time, not mid-run: a slot
name the agent has never heard of (`facts: {party: 4}`), a `slots` expectation naming such
a slot, a sim fault that does not exist. Slot names are the built-in ones
(`spec.SLOT_NAMES`) plus any a golden file declares in its own `slots:` list, so an agent
with other slots (a clinic's `doctor`) is one line away.

`apply_suite` resolves, per suite, what a case inherits from it: latency `budgets` (a
case's own keys win) and the model that plays `brain: llm` callers.
"""

from __future__ import annotations

import difflib
from typing import Any

from ..errors import ConfigError, Position
from ..spec import SLOT_NAMES, Budgets, CaseSpec, CheckSpec, GoldenFile, Suite, fault_text


def call_errors(golden: GoldenFile, raw: Any, path: str, target_kind: str | None = None) -> list[ConfigError]:
    """Every slot name, fault and caller setting of the file's calls that cannot work.

    `target_kind` is the target of the suite the file is read for; it checks the cases'
    faults (a file read on its own: the targets that inject faults, see targets.fault_errors).
    """
    known = (*SLOT_NAMES, *golden.slots)
    errors: list[ConfigError] = []
    raw_cases = raw["cases"]
    for i, case in enumerate(golden.cases):
        raw_case = raw_cases[i]
        fallback = case.source
        if case.caller is not None:
            raw_caller = raw_case.get("caller")
            case.caller.pos = getattr(raw_caller, "pos", None) or fallback
            for field in ("facts", "corrections"):
                errors += _slot_names(getattr(case.caller, field), _get(raw_caller, field), known, field, fallback)
            unknown = set(case.caller.corrections) - set(case.caller.facts)
            if unknown:
                name = sorted(unknown)[0]
                errors.append(ConfigError(
                    f"corrections: {name!r} is not one of the caller's facts (a caller corrects what it said; "
                    f"add {name} to facts)", _key_pos(_get(raw_caller, "corrections"), name, fallback)))
        if case.outcome is not None and case.outcome.slots is not None:
            errors += _slot_names(case.outcome.slots, _get(_get(raw_case, "outcome"), "slots"), known,
                                  "outcome.slots", fallback)
        errors += _check_slots(case.call_expect, raw_case.get("expect"), known, fallback)
        for j, turn in enumerate(case.turns or []):
            errors += _check_slots(turn.expect, _get(raw_case["turns"][j], "expect"), known, fallback)
        if case.faults:
            errors += _faults(case, _get(raw_case, "faults"), fallback, target_kind)
    return sorted(errors, key=lambda e: (e.position.line, e.position.col) if e.position else (0, 0))


def _get(node: Any, key: Any) -> Any:
    return node.get(key) if isinstance(node, dict) else None


def _key_pos(node: Any, key: Any, fallback: Position) -> Position:
    return getattr(node, "key_pos", {}).get(key) or getattr(node, "pos", None) or fallback


def _slot_names(values: dict[str, Any], raw: Any, known: tuple[str, ...], where: str,
                fallback: Position) -> list[ConfigError]:
    out = []
    for name in values:
        if name in known:
            continue
        hint = difflib.get_close_matches(str(name), known, n=1)
        more = f"; did you mean {hint[0]!r}?" if hint else ""
        out.append(ConfigError(
            f"{where}: unknown slot name {name!r} (expected one of: {', '.join(known)}, or a name the file "
            f"lists under `slots:`{more})", _key_pos(raw, name, fallback)))
    return out


def _check_slots(checks: list[CheckSpec], raw_list: Any, known: tuple[str, ...],
                 fallback: Position) -> list[ConfigError]:
    out = []
    for k, spec in enumerate(checks):
        if spec.name != "slots" or not isinstance(spec.arg, dict):
            continue
        raw_item = raw_list[k] if isinstance(raw_list, list) and k < len(raw_list) else None
        out += _slot_names(spec.arg, _get(raw_item, "slots"), known, "slots", spec.pos or fallback)
    return out


def _faults(case: CaseSpec, raw: Any, fallback: Position, target_kind: str | None) -> list[ConfigError]:
    from ..targets import fault_errors

    # what was written, each with its position: a mapping may hold several faults, so the
    # case's flat list of "name:value" strings does not line up with the YAML items
    written: list[tuple[str, Position]] = []
    positions = getattr(raw, "item_pos", [])
    for k, item in enumerate(raw if isinstance(raw, list) else []):
        pos = positions[k] if k < len(positions) else fallback
        if isinstance(item, dict):
            key_pos = getattr(item, "key_pos", {})
            written += [(fault_text(n, v), key_pos.get(n, pos)) for n, v in item.items()]
        else:
            written.append((str(item), pos))
    return fault_errors(written or [(f, fallback) for f in case.faults], target_kind)


# --- what a case inherits from its suite --------------------------------------------------


def apply_suite(suite: Suite, cases: list[CaseSpec]) -> list[ConfigError]:
    """Give each case the suite's budgets (its own win) and caller model; report llm callers with no model."""
    errors: list[ConfigError] = []
    for case in cases:
        if suite.budgets is not None:
            case.budgets = _merge(suite.budgets, case.budgets)
        caller = case.caller
        if caller is None:
            continue
        caller._model = suite.caller
        if caller.resolved_brain == "llm" and (suite.caller is None or not suite.caller.base_url
                                                or not suite.caller.model):
            errors.append(ConfigError(
                f"case {case.id!r} plays its caller with brain: llm, but the suite has no caller model "
                "(expected caller: {base_url: …, model: …} in the suite)", caller.pos or case.source))
    return errors


def _merge(suite_budgets: Budgets, case_budgets: Budgets | None) -> Budgets:
    base = suite_budgets.model_dump(exclude_none=True)
    own = case_budgets.model_dump(exclude_none=True) if case_budgets is not None else {}
    return Budgets(**{**base, **own})
