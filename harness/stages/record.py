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
        self.writer = ResultWriter(store, run.run_id)
        self.add = self.writer.add  # per result: no extra call on the hot path

    def add(self, result: CaseResult) -> None:  # replaced per instance by the writer's own `add`
        self.writer.add(result)

    def close(self) -> None:
        """Wait until every result added so far is in the store."""
        self.writer.close()

    def finish(self) -> None:
        """The run's end state (status, counts, exit code, message) into the store."""
        run = self.run
        self.store.finish_run(run.run_id, status=run.status, ended=run.ended, exit_code=run.exit_code,
                              counts=run.counts, message=run.message)
