"""Accepted baselines: a run the team says is right, kept per case for later comparison.

`harness baseline accept RUN` (or `harness run --accept-baseline` on a green run) copies
what later runs are compared with — per case the statuses, normalised answers, scores,
turn latencies and the models that served — into two tables. A baseline outlives the
run's own rows (history may be pruned), and a newer acceptance simply supersedes it.

The rows live in the store (`store.baselines`, tables `baselines` and `baseline_cases`).
"""

from __future__ import annotations

import getpass
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, HarnessError
from ..store import Store
from ..store.features import BaselineRow
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
    bid = store.baselines.add(row, [(c.case_id, c.topic, c.to_dict()) for c in cases.values()])
    return Baseline(id=bid, cases=cases, **row)


def _from_row(row: BaselineRow) -> Baseline:
    base = Baseline(id=row.id, suite=row.suite, run_id=row.run_id, accepted_at=row.accepted_at,
                    accepted_by=row.accepted_by, note=row.note, git_sha=row.git_sha, model=row.model,
                    run_started=row.run_started, serving=list(row.serving))
    for case_id, (topic, data) in row.cases.items():
        base.cases[case_id] = CaseObs.from_dict(case_id, topic, data)
    return base


def load_baseline(store: Store, suite: str, *, with_cases: bool = True) -> Baseline | None:
    """The suite's latest accepted baseline, or None."""
    row = store.baselines.latest(suite, with_cases=with_cases)
    return _from_row(row) if row is not None else None


def list_baselines(store: Store, suite: str | None = None, limit: int = 20) -> list[Baseline]:
    """Accepted baselines, newest first (without their cases)."""
    return [_from_row(r) for r in store.baselines.recent(suite, limit)]
