"""Service level objectives and error budgets over the run history.

A verdict says why this run is red; an objective says what is wrong with the service over
weeks. A suite names its objectives (`objectives:`) and what the budget consumed means for
releases (`budget_policy:`); after each run, and on `harness slo status`, every objective
gets this run's figure against the target and, over its window, the SLI, the budget left,
the burn rates and the policy's word (ok, slow down, freeze, post-mortem).

    results = evaluate_run(store, suite, run, results_of_run, warnings)  # sets run.extra["objectives"]
    code = exit_code_with_budget(code, results, suite.budget_policy)     # the CI gate
    lines = missed_lines(run.extra)                                      # beside the verdict

It sits with the analysis: it reads the store (through `harness.store.objectives`) and the
records, never a reporter or a command. The suite's models are `harness.objective_spec`, with the records.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .lines import gate_line, line, missed_lines, objective_results, report_view

if TYPE_CHECKING:
    from .evaluate import ObjectiveResult

__all__ = [
    "evaluate_run",
    "exit_code_with_budget",
    "gate_line",
    "line",
    "missed_lines",
    "objective_results",
    "report_view",
]

FROZEN = ("freeze", "post-mortem")


def evaluate_run(store: Any, suite: Any, run: Any, results: list[Any], warnings: list[str]) -> list["ObjectiveResult"]:
    """Every objective after a run: counted from the results in memory, over the history in
    the store; kept at `run.extra["objectives"]` and in the run's row. A store that fails
    here costs the objectives (a warning), never the run's results."""
    from ..errors import HarnessError
    from . import tally
    from .evaluate import evaluate

    if not suite.objectives:
        return []
    records = store.objectives
    t = tally.count(tally.rows_of_results(results), tally.limits(suite.objectives))
    try:
        out = evaluate(suite, records, now=run.ended or time.time(), current=(run, t))
    except HarnessError as e:
        warnings.append(f"no objectives: {e.line()}")
        run.extra["objectives"] = {"tally": t, "results": []}
        _save(records, run, warnings)
        return []
    saved: dict[str, Any] = {"tally": t, "results": [r.to_dict() for r in out]}
    gate = _gate_message(out, suite.budget_policy)
    if gate:
        saved["gate"] = gate
        warnings.append(gate)  # the reason for exit 1, also on the one line of `run -q`
    run.extra["objectives"] = saved
    _save(records, run, warnings)
    return out


def _save(records: Any, run: Any, warnings: list[str]) -> None:
    from ..errors import HarnessError

    try:
        records.save(run.run_id, run.extra["objectives"])
    except HarnessError as e:
        warnings.append(f"objectives not kept in the store: {e.line()}")


def _gate_message(results: list["ObjectiveResult"], policy: Any) -> str | None:
    if not policy.gate:
        return None
    frozen = [r for r in results if r.word in FROZEN]
    if not frozen:
        return None
    from .lines import pct

    parts = [f"{r.name} ({pct(r.budget.left if r.budget else None)} of its budget left)" for r in frozen]
    return f"budget policy says {frozen[0].word}: {', '.join(parts)}"


def exit_code_with_budget(code: Any, results: list["ObjectiveResult"], policy: Any) -> Any:
    """With `budget_policy: {gate: true}`, a run exits at least 1 while an objective's policy
    says freeze (or post-mortem); without it objectives never change the exit code."""
    from ..errors import ExitCode

    if policy.gate and code == ExitCode.OK and any(r.word in FROZEN for r in results):
        return ExitCode.FAILED
    return code
