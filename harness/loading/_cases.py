"""Find a suite's golden files, load their cases once, and apply the selection."""

from __future__ import annotations

import glob
import os
from fnmatch import fnmatchcase
from typing import Iterable, Sequence

from ..errors import ConfigError
from ..spec import CaseSpec, Suite
from ._calls import apply_suite
from ._golden import golden_file_errors, raise_errors
from ..yamlio import gc_paused
from ._suite import suite_position_of


def display_path(path: str) -> str:
    """A path as errors show it: relative to the working directory when inside it."""
    absolute = os.path.abspath(path)
    rel = os.path.relpath(absolute, os.getcwd())
    return absolute if rel.startswith("..") else rel


def walk_files(root: str, loops: list[str] | None = None) -> list[str]:
    """Every file under `root`, following directory symlinks but entering each real
    directory once: a symlink loop (`golden/self -> .`) cannot make a walk endless or show
    a file twice. The symlinks that led back into a directory already seen go to `loops`."""
    seen: set[tuple[int, int]] = set()
    out: list[str] = []
    for top, dirs, files in os.walk(root, followlinks=True):
        try:
            st = os.stat(top)
        except OSError:
            dirs[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:
            if loops is not None:
                loops.append(top)
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs.sort()
        out.extend(os.path.join(top, f) for f in sorted(files))
    return out


def _glob_regex(pattern: str) -> "re.Pattern[str]":
    """A glob with `**` (any depth, none included) as a regex over '/'-separated paths."""
    import re

    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2:]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1:end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def expand_glob(full: str, loops: list[str] | None = None) -> list[str]:
    """The files matching `full` (a glob; `**` for any depth), walked as `walk_files` does."""
    if not glob.has_magic(full):
        return [full] if os.path.isfile(full) else []
    parts = full.replace(os.sep, "/").split("/")
    fixed = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    root = "/".join(parts[:fixed]) or "/"
    if "**" not in full:  # one level per part: glob itself cannot loop
        return [m for m in glob.glob(full) if os.path.isfile(m)]
    rest = "/".join(parts[fixed:])
    rx = _glob_regex(rest)
    base = len(root.rstrip("/")) + 1
    hidden_ok = rest.startswith(".") or "/." in rest  # like glob: `*` and `**` skip dot files
    out = []
    for f in walk_files(root, loops):
        rel = f.replace(os.sep, "/")[base:]
        if rx.match(rel) and (hidden_ok or not any(p.startswith(".") for p in rel.split("/"))):
            out.append(f)
    return out


def golden_files(suite: Suite) -> tuple[list[str], list[ConfigError]]:
    """Expand `suite.golden` (globs relative to the project root, `**` allowed), sorted.

    A glob that matches no file is an error at that glob's position in the suite file.
    """
    position_of = suite_position_of(suite)
    files: set[str] = set()
    errors: list[ConfigError] = []
    for i, pattern in enumerate(suite.golden):
        full = os.path.join(suite.root, os.path.expanduser(pattern))
        matches = expand_glob(full)
        if not matches:
            errors.append(ConfigError(
                f"golden glob {pattern!r} matches no file (expected YAML files under {suite.root})",
                position_of(("golden", i)),
            ))
        files.update(os.path.abspath(m) for m in matches)
    return sorted(files), errors


def all_cases(suite: Suite, *, compile_checks: bool = True) -> tuple[list[CaseSpec], list[ConfigError]]:
    """Every case of the suite's golden files, in file order; errors are collected."""
    files, errors = golden_files(suite)
    kind = suite.target.kind if isinstance(suite.target.kind, str) else None
    cases: list[CaseSpec] = []
    first: dict[str, CaseSpec] = {}
    for path in files:
        golden, file_errors = golden_file_errors(display_path(path), compile_checks=compile_checks,
                                                 target_kind=kind)
        errors.extend(file_errors)
        if golden is None:
            continue
        for case in golden.cases:
            if case.id in first:
                errors.append(ConfigError(
                    f"duplicate case id {case.id!r} (first defined at {first[case.id].source})", case.source
                ))
                continue
            first[case.id] = case
            cases.append(case)
    errors.extend(apply_suite(suite, cases))
    return cases, errors


def load_cases(
    suite: Suite,
    *,
    topics: Sequence[str] = (),
    tags: Sequence[str] = (),
    ids: Sequence[str] = (),
    exclude_tags: Sequence[str] = (),
) -> list[CaseSpec]:
    """The suite's cases after its own `select:` and the command line's filters.

    Both selections apply (a case must pass each): topics match exactly, tags match if the
    case carries any of them, `exclude_tags` drop a case carrying any, ids are globs
    (`rsv-*`). A selection that leaves no case is an error, not an empty green run.
    Raises ConfigError (or ConfigErrors for several independent mistakes).
    """
    with gc_paused():  # thousands of cases: see gc_paused
        cases, errors = all_cases(suite)
    raise_errors(errors)
    sel = suite.select
    filters = [
        (sel.topics, sel.tags, sel.ids, sel.exclude_tags),
        (list(topics), list(tags), list(ids), list(exclude_tags)),
    ]
    chosen = [c for c in cases if all(_matches(c, *f) for f in filters)]
    if not chosen:
        raise ConfigError(_nothing_selected(suite, topics, tags, ids, exclude_tags, cases), path=suite.file or None)
    return chosen


def _matches(case: CaseSpec, topics: list[str], tags: list[str], ids: list[str], exclude: list[str]) -> bool:
    case_tags = set(case.resolved_tags)
    if topics and case.resolved_topic not in topics:
        return False
    if tags and not case_tags.intersection(tags):
        return False
    if exclude and case_tags.intersection(exclude):
        return False
    if ids and not any(fnmatchcase(case.id, pattern) for pattern in ids):
        return False
    return True


def _nothing_selected(
    suite: Suite,
    topics: Iterable[str],
    tags: Iterable[str],
    ids: Iterable[str],
    exclude_tags: Iterable[str],
    cases: list[CaseSpec],
) -> str:
    sel = suite.select
    parts = []
    for label, values in (
        ("select.topics", sel.topics), ("select.tags", sel.tags), ("select.ids", sel.ids),
        ("select.exclude_tags", sel.exclude_tags), ("--topic", topics), ("--tag", tags), ("--id", ids),
        ("--exclude-tag", exclude_tags),
    ):
        values = list(values)
        if values:
            parts.append(f"{label} {', '.join(values)}")
    known = sorted({c.resolved_topic for c in cases})
    return (
        f"no case matches the selection {'; '.join(parts) or '(none)'} "
        f"(expected at least one of {len(cases)} cases; topics: {', '.join(known) or 'none'})"
    )
