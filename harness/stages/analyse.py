"""Analyse: the run's exit code from its counts, its verdict against the reference, its
objectives and error budgets, a baseline accepted.

Results are already durable when this stage runs; a store error here costs the verdict,
never the results.
"""

from __future__ import annotations

from ..errors import ExitCode, HarnessError
from ..records import CaseResult, RunInfo


def exit_code_for(counts: dict[str, int], aborted: str | None) -> ExitCode:
    if aborted:
        return ExitCode.UNREACHABLE
    if counts.get("failed"):
        return ExitCode.FAILED
    if counts.get("error") or counts.get("not_run"):
        return ExitCode.UNREACHABLE
    return ExitCode.OK


def _analyse(store, suite, run: RunInfo, results: list[CaseResult], items, code: ExitCode,
             warnings: list[str]) -> ExitCode:
    """Classify the run against its baseline (verdict into run.extra) and fold it into the exit code.

    Results are already durable; a store error here costs the verdict, never the results.
    """
    from ..analysis import analyse_run

    reducers = {it.compiled.case.id: it.compiled.case.reducer for it in items}
    try:
        verdict = analyse_run(store, suite, run, results, reducers=reducers)
    except HarnessError as e:
        warnings.append(f"no verdict: {e.line()}")
        return code
    return verdict.cls.exit_code(code)


def _objectives(store, suite, run: RunInfo, results: list[CaseResult], code: ExitCode,
                warnings: list[str]) -> ExitCode:
    """The suite's objectives after this run (into run.extra["objectives"] and its row): beside
    the verdict, never a class. They change the exit code only through the budget gate, when
    the suite's `budget_policy` asks for it. A store error costs the objectives, not the run."""
    if not suite.objectives:
        return code
    from ..objectives import evaluate_run, exit_code_with_budget

    return exit_code_with_budget(code, evaluate_run(store, suite, run, results, warnings), suite.budget_policy)


def _accept_if_green(store, run: RunInfo, counts: dict[str, int], warnings: list[str]) -> None:
    from ..analysis import accept_baseline

    if run.status != "complete" or not counts.get("passed") or any(counts.get(k) for k in ("failed", "error", "not_run")):
        warnings.append(f"run {run.run_id} was not accepted as the baseline: only a run where every case passed is")
        return
    try:
        accept_baseline(store, run.run_id, note="run --accept-baseline")
    except HarnessError as e:
        warnings.append(f"run {run.run_id} was not accepted as the baseline: {e.line()}")
        return
    run.extra["baseline_accepted"] = True
