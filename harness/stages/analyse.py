"""Analyse: the run's exit code from its counts, its verdict against the reference, its
objectives and error budgets, a baseline accepted.

Results are already durable when this stage runs; a store error here costs the verdict,
never the results.
"""

from __future__ import annotations

from ..errors import ExitCode, HarnessError
from ..records import CaseResult, RunInfo
from ..verdict import VerdictClass


def exit_code_for(counts: dict[str, int], aborted: str | None) -> ExitCode:
    if aborted:
        return ExitCode.UNREACHABLE
    if counts.get("failed"):
        return ExitCode.FAILED
    if counts.get("error") or counts.get("not_run"):
        return ExitCode.UNREACHABLE
    return ExitCode.OK


def _analyse(store, suite, run: RunInfo, results: list[CaseResult], items, code: ExitCode,
             warnings: list[str], *, accepting: bool = False) -> ExitCode:
    """Classify the run against its baseline (verdict into run.extra) and fold it into the exit code.

    Results are already durable; a store error here costs the verdict, never the results.
    """
    from ..analysis import analyse_run

    reducers = {it.compiled.case.id: it.compiled.case.reducer for it in items}
    try:
        verdict = analyse_run(store, suite, run, results, reducers=reducers, accepting=accepting)
    except HarnessError as e:
        warnings.append(f"no verdict: {e.line()}")
        return code
    if verdict.cls is VerdictClass.MIXED and suite.analysis.attribute:
        from ..analysis.attribute import attribute_run

        try:  # both sides changed: ask today's model with the reference's inputs, within the budget
            verdict, _, _ = attribute_run(store, suite, run.run_id, budget=suite.analysis.attribute)
        except HarnessError as e:
            warnings.append(f"could not attribute the mixed verdict: {e.line()}")
        run.extra["verdict"] = verdict.to_dict()
    if suite.analysis.gate == "verdict":
        return verdict.cls.gate_exit_code()
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
    """Make the run the suite's baseline: recorded behaviour, failing cases included (any
    finished run that is not infra); the command line says how many fail."""
    from ..analysis import accept_baseline
    from ..verdict import Verdict, VerdictClass

    verdict = Verdict.of_extra(run.extra)
    if run.status != "complete" or (verdict is not None and verdict.cls is VerdictClass.INFRA):
        why = "it is infra" if run.status == "complete" else f"it is {run.status}"
        warnings.append(f"run {run.run_id} was not accepted as the baseline: {why}; accept a finished run "
                        "whose calls reached the model")
        return
    try:
        accept_baseline(store, run.run_id, note="run --accept-baseline")
    except HarnessError as e:
        warnings.append(f"run {run.run_id} was not accepted as the baseline: {e.line()}")
        return
    run.extra["baseline_accepted"] = True
    run.extra["baseline_failing"] = counts.get("failed", 0)
