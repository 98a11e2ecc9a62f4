"""The checks of `objectives:` that need the whole suite: the check registry, the rubrics
folder, names used twice, a target that does not suit its indicator; each a ConfigError at
the key at fault (file:line:col). The models themselves are `harness.objective_spec`."""

from __future__ import annotations

import difflib
from typing import Any

from ..objective_spec import LATENCY, ObjectiveSpec


def objective_errors(suite: Any, position_of: Any) -> list[Any]:
    """What the models cannot see on their own, as positioned ConfigErrors (file:line:col)."""
    from ..errors import ConfigError

    errors: list[ConfigError] = []
    objectives: list[ObjectiveSpec] = list(getattr(suite, "objectives", None) or [])
    if not objectives:
        return errors
    checks = _check_names()
    rubrics: dict[str, Any] | None = None
    seen: dict[str, int] = {}

    def err(i: int, key: str, message: str) -> None:
        errors.append(ConfigError(message, position_of(("objectives", i, key))))

    for i, o in enumerate(objectives):
        if o.name in seen:
            err(i, "name", f"objective name {o.name!r} is used twice (also objectives[{seen[o.name]}])")
        seen.setdefault(o.name, i)
        latency = o.indicator in LATENCY
        if o.stat is not None and not latency:
            err(i, "stat", f"stat applies to first_token_ms and turn_ms only, not {o.indicator}")
        for key, allowed in (("check", ("check_fail_rate",)), ("rubric", ("judge_fail_rate",)),
                             ("topic", ("pass_rate", "infra_error_rate"))):
            if getattr(o, key) is not None and o.indicator not in allowed:
                err(i, key, f"{key} applies to {' and '.join(allowed)} only, not {o.indicator}")
        t = o.target
        if latency:
            if t.op not in ("<", "<="):
                err(i, "target", f"target {t}: a time objective is met below a limit (expected < or <=, e.g. \"< 5000\")")
            elif t.unit == "%":
                err(i, "target", f"target {t}: {o.indicator} is a time in ms, not a share")
        else:
            want = (">", ">=") if o.indicator == "pass_rate" else ("<", "<=")
            if t.op not in want:
                example = '">= 95%"' if o.indicator == "pass_rate" else '"< 0.1%"'
                err(i, "target", f"target {t}: {o.indicator} is met {'at or above' if want[0] == '>' else 'below'} "
                                 f"a share (expected {' or '.join(want)}, e.g. {example})")
            elif t.unit in ("ms", "s"):
                err(i, "target", f"target {t}: {o.indicator} is a share, not a time (e.g. \"< 0.1%\")")
            elif t.value > 1:
                err(i, "target", f"target {t}: a share is at most 100% (write 0.1% or 0.001)")
        if o.indicator == "check_fail_rate":
            if o.check is None:
                errors.append(ConfigError("check_fail_rate needs check: (which check, e.g. json)",
                                          position_of(("objectives", i, "indicator"))))
            elif o.check not in checks:
                hint = difflib.get_close_matches(o.check, sorted(checks), n=1)
                more = f"; did you mean {hint[0]!r}?" if hint else ""
                err(i, "check", f"unknown check {o.check!r} (expected one of: {', '.join(sorted(checks))}{more})")
        if o.indicator == "judge_fail_rate" and o.rubric is not None:
            if rubrics is None:
                rubrics = _rubrics(getattr(suite, "root", "."))
            if o.rubric not in rubrics:
                from ..judge.rubrics import rubrics_dir, unknown_rubric

                err(i, "rubric", unknown_rubric(o.rubric, rubrics, rubrics_dir(getattr(suite, "root", "."))))
    return errors


def _check_names() -> set[str]:
    from ..checks import registry

    return set(registry())


def _rubrics(root: str) -> dict[str, Any]:
    from ..errors import HarnessError
    from ..judge.rubrics import load_rubrics, rubrics_dir

    try:
        return load_rubrics(rubrics_dir(root))
    except HarnessError:  # a broken rubric file is reported where rubrics are loaded
        return {}
