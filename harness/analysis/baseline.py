"""Accepted baselines: a run the team says is right, kept per case for later comparison.

`harness baseline accept RUN` (or `harness run --accept-baseline` on a green run) copies
what later runs are compared with — per case the statuses, normalised answers, scores,
turn latencies and the models that served — into two tables. A baseline outlives the
run's own rows (history may be pruned), and a newer acceptance simply supersedes it.

The tables, `baselines` and `baseline_cases`, are defined in `harness.store.schema` and
created by the store's migrations when the store is opened.
"""

from __future__ import annotations

import getpass
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import SQLAlchemyError

from ..errors import ConfigError, HarnessError
from ..store import Store, StoreError
from ..store.schema import baseline_cases, baselines
from .observe import CaseObs, observe_results

__all__ = ["Baseline", "accept_baseline", "list_baselines", "load_baseline", "serving_of"]


@dataclass
class Baseline:
    id: int
    suite: str
    run_id: str
    accepted_at: float
    accepted_by: str | None
    note: str | None
    git_sha: str | None
    model: str | None
    run_started: float
    serving: list[list[Any]] = field(default_factory=list)
    cases: dict[str, CaseObs] = field(default_factory=dict)


def serving_of(cases: dict[str, CaseObs]) -> list[list[Any]]:
    total: dict[tuple, int] = {}
    for obs in cases.values():
        for key, n in obs.serving.items():
            total[key] = total.get(key, 0) + n
    return [[r, m, f, n] for (r, m, f), n in sorted(total.items(), key=lambda kv: -kv[1])]


def accept_baseline(store: Store, run_ref: str, *, note: str | None = None, by: str | None = None) -> Baseline:
    """Make a stored run its suite's baseline. Refuses runs that are still running or have no results."""
    run = store.get_run(run_ref)
    if run is None:
        raise ConfigError(f"no run {run_ref!r} in the store {store.display_url}")
    if run.status == "running":
        raise HarnessError(f"run {run.run_id} is still running; accept it when it has finished")
    results = store.results(run.run_id)
    if not results:
        raise HarnessError(f"run {run.run_id} has no results to accept as a baseline")
    cases = observe_results(results)
    if by is None:
        try:
            by = getpass.getuser()
        except (KeyError, OSError):
            by = None
    row = {
        "suite": run.suite,
        "run_id": run.run_id,
        "accepted_at": time.time(),
        "accepted_by": by,
        "note": note,
        "git_sha": run.git_sha,
        "model": run.model,
        "run_started": run.started,
        "serving": serving_of(cases),
    }
    try:
        with store.engine.begin() as conn:
            bid = conn.execute(insert(baselines).values(**row)).inserted_primary_key[0]
            conn.execute(insert(baseline_cases), [
                {"baseline_id": bid, "case_id": c.case_id, "topic": c.topic, "data": c.to_dict()}
                for c in cases.values()
            ])
    except SQLAlchemyError as exc:
        raise StoreError(f"store {store.display_url}: could not save the baseline: {exc.__class__.__name__}") from None
    return Baseline(id=int(bid), cases=cases, **row)


def _from_row(row: Any) -> Baseline:
    return Baseline(id=row.id, suite=row.suite, run_id=row.run_id, accepted_at=row.accepted_at,
                    accepted_by=row.accepted_by, note=row.note, git_sha=row.git_sha, model=row.model,
                    run_started=row.run_started, serving=list(row.serving or []))


def load_baseline(store: Store, suite: str, *, with_cases: bool = True) -> Baseline | None:
    """The suite's latest accepted baseline, or None."""
    b, bc = baselines, baseline_cases
    try:
        with store.engine.connect() as conn:
            row = conn.execute(
                select(b).where(b.c.suite == suite).order_by(b.c.accepted_at.desc(), b.c.id.desc()).limit(1)
            ).first()
            if row is None:
                return None
            base = _from_row(row)
            if with_cases:
                for r in conn.execute(select(bc).where(bc.c.baseline_id == base.id).order_by(bc.c.id)):
                    base.cases[r.case_id] = CaseObs.from_dict(r.case_id, r.topic, dict(r.data or {}))
    except SQLAlchemyError as exc:
        raise StoreError(f"store {store.display_url}: could not read baselines: {exc.__class__.__name__}") from None
    return base


def list_baselines(store: Store, suite: str | None = None, limit: int = 20) -> list[Baseline]:
    """Accepted baselines, newest first (without their cases)."""
    b = baselines
    query = select(b).order_by(b.c.accepted_at.desc(), b.c.id.desc()).limit(limit)
    if suite is not None:
        query = query.where(b.c.suite == suite)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(query).all()
    except SQLAlchemyError as exc:
        raise StoreError(f"store {store.display_url}: could not read baselines: {exc.__class__.__name__}") from None
    return [_from_row(r) for r in rows]
