"""Load one golden file: parse, validate, resolve inherited fields, compile its checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import ConfigError, ConfigErrors, Position
from ..spec import CheckSpec, GoldenFile
from ._calls import call_errors
from ..yamlio import PositionFinder, read_yaml, validation_errors_to_config_errors

GOLDEN_EXPECTED = "a mapping with topic and cases"


def raise_errors(errors: list[ConfigError]) -> None:
    """Raise one ConfigError, or ConfigErrors when there are several (each still one line)."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ConfigErrors(errors)


def load_golden_file(path: str | Path, *, compile_checks: bool = True) -> GoldenFile:
    """Read and validate a golden file; every case knows its file, line, topic and tags.

    With `compile_checks` every expectation is compiled once, so an unknown check, a bad
    argument or an invalid regex is reported now with its position, not mid-run.
    Raises ConfigError (or ConfigErrors for several independent mistakes).
    """
    golden, errors = golden_file_errors(path, compile_checks=compile_checks)
    raise_errors(errors)
    assert golden is not None
    return golden


def golden_file_errors(path: str | Path, *, compile_checks: bool = True,
                       target_kind: str | None = None) -> tuple[GoldenFile | None, list[ConfigError]]:
    """Like `load_golden_file`, but collect the errors instead of raising them.

    `target_kind`: the target of the suite the file is read for (it checks the cases' faults).
    """
    shown = str(path)
    try:
        raw = read_yaml(path, expected=GOLDEN_EXPECTED)
    except ConfigError as e:
        return None, [e]
    finder = PositionFinder(raw, shown)
    try:
        golden = GoldenFile.model_validate(raw)
    except ValidationError as e:
        return None, validation_errors_to_config_errors(e, finder, model=GoldenFile)
    _annotate(golden, raw, shown)
    errors = _compile_checks(golden) if compile_checks else []
    errors += call_errors(golden, raw, shown, target_kind)
    return golden, errors


def _annotate(golden: GoldenFile, raw: Any, path: str) -> None:
    """Fill what the models cannot know alone: positions and inherited topic/tags/language."""
    raw_cases = raw["cases"]
    for i, case in enumerate(golden.cases):
        raw_case = raw_cases[i]
        pos = getattr(raw_case, "pos", None) or Position(path, 1, 1)
        case.set_loaded(Position(path, pos.line, pos.col), case.topic or golden.topic,
                        list(dict.fromkeys([*golden.tags, *case.tags])), case.language or golden.language)
        _fill_check_positions(case.expect, raw_case.get("expect"))
        if case.turns is not None:
            for j, turn in enumerate(case.turns):
                raw_turn = raw_case["turns"][j]
                turn.pos = getattr(raw_turn, "pos", None)
                _fill_check_positions(turn.expect, raw_turn.get("expect"))


def _fill_check_positions(checks: list[CheckSpec], raw_list: Any) -> None:
    """A bare check name (`- json`) is a plain string with no position: take its list slot's."""
    positions = getattr(raw_list, "item_pos", [])
    for k, spec in enumerate(checks):
        # only write what is missing: a pydantic attribute write is slow, and a check
        # written as a mapping already has both positions
        if k < len(positions):
            if spec.pos is None:
                spec.pos = positions[k]
            if spec.name_pos is None:
                spec.name_pos = positions[k]


def _compile_checks(golden: GoldenFile) -> list[ConfigError]:
    from ..checks import compile_check

    errors: list[ConfigError] = []

    def one(spec: CheckSpec, scope: str, compiled: dict) -> None:
        try:
            compiled[id(spec), scope] = compile_check(spec, scope=scope)  # type: ignore[arg-type]
        except ConfigError as e:
            errors.append(e)
        except Exception as e:  # a check factory that fails on bad input (e.g. re.error) is still the user's input
            errors.append(ConfigError(f"check {spec.name!r}: {e}", spec.pos))

    for case in golden.cases:
        # kept on the case so that harness.runner.compile_case does not compile them again
        compiled: dict = {}
        for turn in case.call_turns:
            for spec in turn.expect:
                one(spec, "turn", compiled)
        for spec in case.call_expect:
            one(spec, "call", compiled)
        case._derived["checks"] = compiled
    return errors

