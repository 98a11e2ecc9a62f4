"""Load a suite file: parse, expand `${ENV}`, validate, find the project root."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping

from pydantic import ValidationError

from ..errors import ConfigError, Position
from ..spec import Suite
from ._env import expand_env
from ..yamlio import PosDict, PositionFinder, read_yaml, validation_errors_to_config_errors
from ._golden import raise_errors

SUITE_EXPECTED = "a mapping with name, golden and target"


def find_root(suite_path: str | Path) -> str:
    """The project root: nearest folder upwards holding `golden/` or `pyproject.toml`.

    Relative paths in a suite resolve against it, so `harness run` gives the same result
    from any working directory. Without such a folder it is the suite's own folder.
    """
    start = Path(suite_path).resolve().parent
    for folder in (start, *start.parents):
        if (folder / "golden").is_dir() or (folder / "pyproject.toml").is_file():
            return str(folder)
    return str(start)


def load_suite(path: str | Path, *, env: Mapping[str, str] = os.environ) -> Suite:
    """Read and validate a suite file. Raises ConfigError (or ConfigErrors for several)."""
    suite, errors = suite_file_errors(path, env=env)
    raise_errors(errors)
    assert suite is not None
    return suite


def suite_file_errors(path: str | Path, *, env: Mapping[str, str] = os.environ) -> tuple[Suite | None, list[ConfigError]]:
    """Like `load_suite`, but collect the errors instead of raising them."""
    shown = str(path)
    try:
        raw = read_yaml(path, expected=SUITE_EXPECTED)
    except ConfigError as e:
        return None, [e]
    env_errors, secret_locs = expand_env(raw, env, shown)
    if env_errors:
        return None, env_errors
    finder = PositionFinder(raw, shown, secret_locs)
    try:
        suite = Suite.model_validate(raw)
    except ValidationError as e:
        return None, validation_errors_to_config_errors(e, finder, model=Suite)
    suite._file = shown
    suite._root = find_root(path)
    suite._source = finder
    if suite.objectives:
        from ._objectives import objective_errors

        errors = objective_errors(suite, finder)
        if errors:
            return None, errors
    return suite, []


def _finder(suite: Suite) -> PositionFinder:
    finder = suite._source
    if isinstance(finder, PositionFinder):
        return finder
    # a suite built in code: no YAML positions, errors name the file only
    return PositionFinder(None, suite.file or None)


def suite_position_of(suite: Suite) -> Callable[[tuple], Position | None]:
    """Where a loc such as ('target', 'kind') sits in the suite file (for targets.create)."""
    return _finder(suite)


def suite_target_raw(suite: Suite) -> dict[str, Any]:
    """The suite's `target:` mapping as written (after `${ENV}` expansion), with positions.

    Targets validate it with their own settings model; the positions let their errors
    point into the suite file.
    """
    raw = _finder(suite).raw
    target = raw.get("target") if isinstance(raw, dict) else None
    if isinstance(target, PosDict):
        return target
    return suite.target.model_dump(exclude_unset=True)
