"""Record: the run and each of its results in the history store, as they come.

A result is handed to a writer thread the moment it is known, so every finished result is
durable before anything is analysed or reported, even when the run is stopped.
"""

from __future__ import annotations

from ..records import CaseResult, RunInfo
from .plan import Plan, suite_store_url


def open_store(plan: Plan):
    """The history store the plan's run is kept in (`--store`, else the suite's, else the default)."""
    from ..store import Store

    return Store.open(plan.options.store_url or suite_store_url(plan.suite), root=plan.suite.root)


class Recording:
    """One run in the store: started now, each result added as it arrives, finished at the end."""

    def __init__(self, store, run: RunInfo):
        from ..store import ResultWriter

        self.store = store
        self.run = run
        store.start_run(run)
        self.writer = ResultWriter(store, run.run_id, spill=True)  # a refused result goes to a spill file
        self.add = self.writer.add  # per result: no extra call on the hot path

    def add(self, result: CaseResult) -> None:  # replaced per instance by the writer's own `add`
        self.writer.add(result)

    def close(self) -> None:
        """Wait until every result added so far is in the store."""
        self.writer.close()

    @property
    def problem(self) -> str | None:
        """One line on results the store refused (kept in the spill file), else None."""
        return self.writer.problem

    def finish(self, warnings: list[str] | None = None) -> None:
        """The run's end state (status, counts, exit code, message) into the store. When results
        were spilled the store is in trouble: a failure here becomes a warning, not an error."""
        run = self.run
        try:
            self.store.finish_run(run.run_id, status=run.status, ended=run.ended, exit_code=run.exit_code,
                                  counts=run.counts, message=run.message)
        except Exception as e:
            if not self.writer.problem or warnings is None:
                raise
            line = e.line() if hasattr(e, "line") else str(e)
            warnings.append(f"run {run.run_id} could not be marked {run.status} in the store: {line}")
