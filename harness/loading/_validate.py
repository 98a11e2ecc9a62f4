"""`harness validate PATH…`: check golden and suite files without running anything."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Mapping, Sequence

from ..errors import ConfigError
from ..spec import Suite
from ..yamlio import read_yaml
from ._cases import all_cases, display_path, walk_files
from ._golden import GOLDEN_EXPECTED, golden_file_errors
from ._suite import SUITE_EXPECTED, suite_file_errors, suite_position_of, suite_target_raw

SUITE_KEYS = {"target", "golden"}

# A check of a loaded suite that a layer above the loader brings (the notifiers' settings,
# `harness.notify.suite_errors`): every mistake it finds, at its position, none raised.
SuiteCheck = Callable[[Suite], list[ConfigError]]


def validate_paths(
    paths: list[str], *, env: Mapping[str, str] = os.environ, suite_checks: Sequence[SuiteCheck] = ()
) -> tuple[list[ConfigError], int]:
    """Every mistake found in the given files and folders (folders: all *.yaml / *.yml).

    A file with `target:` or `golden:` at its top level is a suite (its golden globs,
    cases and target settings are checked too, and whatever `suite_checks` check);
    anything else is a golden file.
    Returns the errors in file order, each once, and how many files were checked.
    """
    errors: list[ConfigError] = []
    files = _expand(paths, errors)
    first: dict[str, object] = {}  # case id -> where it was first defined, across the golden files given
    for path in files:
        errors.extend(_validate_file(path, env, first, suite_checks))
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


def _validate_file(path: str, env: Mapping[str, str], first: dict[str, object] | None = None,
                   suite_checks: Sequence[SuiteCheck] = ()) -> list[ConfigError]:
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
        errors = _target_errors(suite) + [e for check in suite_checks for e in check(suite)] + all_cases(suite)[1]
        # the suite's own lines first, in file order; then its golden files' errors
        return sorted(errors, key=lambda e: (
            e.path != path, e.path or "", e.position.line if e.position else 0, e.position.col if e.position else 0,
        ))
    golden, errors = golden_file_errors(path)
    if golden is not None:
        errors += regex_warnings(raw)
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


class ValidationWarning(ConfigError):
    """Not a mistake, a risk: printed by `harness validate` at its position, exit code unchanged."""

    def __init__(self, message: str, position=None, path: str | None = None) -> None:
        super().__init__(f"warning: {message}", position, path)


PROBE_BUDGET_S = 0.05  # one adversarial search longer than this: the pattern backtracks too much


def regex_warnings(raw: object) -> list[ConfigError]:
    """A warning for every `regex:` check in a golden file that backtracks catastrophically on
    one of a few adversarial strings (a run would stop that search at the check's time limit,
    and the check would be an error)."""
    out: list[ConfigError] = []
    for pattern, flags, ignore_case, position in _regexes(raw):
        slow = _slow_probe(pattern, flags, ignore_case)
        if slow is not None:
            out.append(ValidationWarning(
                f"regex /{pattern}/ may backtrack catastrophically: a search of {slow} took over "
                f"{PROBE_BUDGET_S:g} s (nested repetition such as (a+)+ or (\\S+\\s*)+ is the usual cause); "
                "simplify it", position))
    return out


def _regexes(node: object):
    """(pattern, flags, ignore_case, position) of every `regex:` check under a YAML node."""
    from ..yamlio import PosDict

    if isinstance(node, dict):
        for key, value in node.items():
            if key == "regex":
                pos = node.value_pos.get(key) if isinstance(node, PosDict) else None
                if isinstance(value, str):
                    yield value, "", True, pos
                elif isinstance(value, dict) and isinstance(value.get("pattern"), str):
                    if isinstance(value, PosDict):
                        pos = value.value_pos.get("pattern", pos)
                    yield (value["pattern"], str(value.get("flags") or ""), value.get("ignore_case", True) is not False,
                           pos)
            else:
                yield from _regexes(value)
    elif isinstance(node, list):
        for item in node:
            yield from _regexes(item)


def _probes(pattern: str) -> list[tuple[str, str]]:
    """Strings that make a backtracking pattern explode: runs of one character (or of a word
    and a space), ended by a character that cannot match, short and long."""
    chars = ["a", " ", "1"] + [c for c in dict.fromkeys(pattern) if c.isalnum()][:4]
    out = []
    for c in dict.fromkeys(chars):
        for n in (28, 3000):
            out.append((c * n + "!\u0000", f"{n} × {c!r}"))
    out.append(("ab " * 40 + "!\u0000", "40 × 'ab '"))
    # a pattern's own words: the engine skips a text without them, but not one that has them
    # and still cannot match (an ordinary answer: "… open Monday to Friday.")
    import re

    for word in list(dict.fromkeys(re.findall(r"(?<!\\)[^\W\d_]{3,}", pattern)))[:3]:
        out.append(("ab " * 28 + word + " !\u0000", f"28 × 'ab ' and {word!r}"))
        out.append(((word + " ") * 28 + "!\u0000", f"28 × {word + ' '!r}"))
    out.append(("a\n" * 1000 + "!", "1000 × 'a\\n'"))
    return out


def _slow_probe(pattern: str, flags: str, ignore_case: bool) -> str | None:
    import re

    import regex as regex_engine

    bits = re.IGNORECASE if ignore_case else 0
    for f in flags:
        bits |= {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}.get(f, 0)
    try:
        compiled = regex_engine.compile(pattern, bits)
    except (re.error, regex_engine.error, ValueError, TypeError):
        return None  # an invalid pattern is the check's own error, said elsewhere
    for text, what in _probes(pattern):
        try:
            compiled.search(text, timeout=PROBE_BUDGET_S)
        except TimeoutError:
            return what
    return None
