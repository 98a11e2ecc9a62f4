"""`harness validate PATH…`: check golden and suite files without running anything."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from ..errors import ConfigError
from ..spec import Suite
from ..yamlio import read_yaml
from ._cases import all_cases, display_path, walk_files
from ._golden import GOLDEN_EXPECTED, golden_file_errors
from ._suite import SUITE_EXPECTED, suite_file_errors, suite_position_of, suite_target_raw

SUITE_KEYS = {"target", "golden"}


def validate_paths(
    paths: list[str], *, env: Mapping[str, str] = os.environ
) -> tuple[list[ConfigError], int]:
    """Every mistake found in the given files and folders (folders: all *.yaml / *.yml).

    A file with `target:` or `golden:` at its top level is a suite (its golden globs,
    cases and target settings are checked too); anything else is a golden file.
    Returns the errors in file order, each once, and how many files were checked.
    """
    errors: list[ConfigError] = []
    files = _expand(paths, errors)
    first: dict[str, object] = {}  # case id -> where it was first defined, across the golden files given
    for path in files:
        errors.extend(_validate_file(path, env, first))
    seen: set[str] = set()
    unique = []
    for e in errors:
        if e.line() not in seen:
            seen.add(e.line())
            unique.append(e)
    return unique, len(files)


def _expand(paths: list[str], errors: list[ConfigError]) -> list[str]:
    out: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = sorted(f for f in walk_files(str(path)) if f.endswith((".yaml", ".yml")))
            if not found:
                errors.append(ConfigError("no YAML files in this folder (expected *.yaml or *.yml files)", path=p))
            out.extend(found)
        elif path.exists():
            out.append(str(path))
        else:
            errors.append(ConfigError("no such file or folder", path=p))
    return [display_path(p) for p in dict.fromkeys(out)]


def _validate_file(path: str, env: Mapping[str, str], first: dict[str, object] | None = None) -> list[ConfigError]:
    # The kind is only known after reading; an empty or non-mapping file is judged by its
    # folder name, which is how projects lay them out (suites/, golden/).
    expected = SUITE_EXPECTED if "suites" in Path(path).parts else GOLDEN_EXPECTED
    try:
        raw = read_yaml(path, expected=expected)
    except ConfigError as e:
        return [e]
    if SUITE_KEYS & set(raw):
        suite, errors = suite_file_errors(path, env=env)
        if suite is None:
            return errors
        errors = _target_errors(suite) + all_cases(suite)[1]
        # the suite's own lines first, in file order; then its golden files' errors
        return sorted(errors, key=lambda e: (
            e.path != path, e.path or "", e.position.line if e.position else 0, e.position.col if e.position else 0,
        ))
    golden, errors = golden_file_errors(path)
    if golden is not None and first is not None:  # a case id used twice, as `run` sees it
        for case in golden.cases:
            if case.id in first:
                errors.append(ConfigError(f"duplicate case id {case.id!r} (first defined at {first[case.id]})",
                                          case.source))
            else:
                first[case.id] = case.source
    return errors


def _target_errors(suite: Suite) -> list[ConfigError]:
    """The target checks its own settings (at their positions in the suite), without being built."""
    from ..targets import target_class

    position_of = suite_position_of(suite)
    raw = suite_target_raw(suite)
    try:
        cls = target_class(raw, position_of)
    except ConfigError as e:
        return [e]
    return cls.config_errors(raw, position_of)
