"""The history queries objectives need: runs in a window with their tallies, a run's rows to
count once, and writing a run's objectives back beside its verdict.

    records = store.objectives                   # an ObjectiveRecords
    runs = records.window_runs("post-merge", since=time.time() - 28 * 86400, last=30)
    rows = records.result_rows(run_id)          # (status, topic, checks, transcript)
    records.save(run_id, {"tally": …, "results": […]})   # into runs.extra["objectives"]
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select

from . import schema

if TYPE_CHECKING:
    from .store import Store

KEY = "objectives"


@dataclass(slots=True)
class WindowRun:
    """A finished run as objectives see it: when, how it ended, and its tally if counted yet."""

    run_id: str
    started: float
    status: str
    git_sha: str | None
    objectives: dict[str, Any] | None  # runs.extra["objectives"]


class ObjectiveRecords:
    """`store.objectives`: named reads and writes over the store's runs and results for `harness.objectives`."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def display_url(self) -> str:
        return self._store.display_url

    def window_runs(self, suite: str, *, since: float | None = None, last: int = 0,
                    until: float | None = None, exclude: str | None = None) -> list[WindowRun]:
        """The suite's finished runs (not `running`), newest first: those started at or after
        `since` and, whatever their age, the newest `last`. `until` leaves out later runs."""
        r = schema.runs
        cols = (r.c.run_id, r.c.started, r.c.status, r.c.git_sha, r.c.extra[KEY].label("objectives"))
        where = [r.c.suite == suite, r.c.status != "running"]
        if until is not None:
            where.append(r.c.started <= until)
        if exclude is not None:
            where.append(r.c.run_id != exclude)
        order = (r.c.started.desc(), r.c.run_id.desc())
        with self._store._tx(f"read the runs of suite {suite}") as conn:
            reach = []
            if since is not None:
                reach.append(r.c.started >= since)
            if last:
                nth = conn.execute(select(r.c.started).where(*where).order_by(*order).offset(last - 1).limit(1)).scalar()
                reach.append(r.c.started >= nth if nth is not None else r.c.started.is_not(None))
            query = select(*cols).where(*where)
            if reach:
                query = query.where(or_(*reach))
            rows = conn.execute(query.order_by(*order)).all()
        return [WindowRun(row.run_id, row.started, row.status, row.git_sha,
                          row.objectives if isinstance(row.objectives, dict) else None) for row in rows]

    def result_rows(self, run_id: str) -> Iterator[tuple[str, str, Any, Any]]:
        """(status, topic, checks, transcript) of every result of a run, read in batches."""
        t = schema.results
        query = select(t.c.status, t.c.topic, t.c.checks, t.c.transcript).where(t.c.run_id == run_id)
        with self._store._tx(f"read results of run {run_id}") as conn:
            for row in conn.execution_options(yield_per=2000).execute(query):
                yield row[0], row[1], row[2], row[3]

    def save(self, run_id: str, value: dict[str, Any]) -> None:
        """Set `extra["objectives"]` of a run, leaving the rest of `extra` as it is."""
        r = schema.runs
        with self._store._tx(f"save the objectives of run {run_id}", write_lock=True) as conn:
            extra = conn.execute(select(r.c.extra).where(r.c.run_id == run_id)).scalar()
            if extra is None:
                return
            extra = dict(extra)
            # figures, check and topic names only: not scrubbed, since scrubbing would mask
            # every key that names a token (first_token_ms)
            extra[KEY] = value
            conn.execute(r.update().where(r.c.run_id == run_id).values(extra=extra))
