"""One case over time: how it did in each run of its suite, newest first.

`harness history CASE` answers "since when does this case fail, and what did it say
before?" without opening a report per day.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..percentiles import percentile
from ..store import Store
from ..verdict import Verdict
from .consistency import agreement, reduce_case
from .observe import short
from .window import load_observations

__all__ = ["CasePoint", "case_history"]


@dataclass
class CasePoint:
    run_id: str
    suite: str
    started: float
    git_sha: str | None
    verdict: str | None  # the run's verdict class
    status: str  # the case's repeats reduced with `all`
    passes: int
    executed: int
    repeats: int
    agreement: float | None
    answer: str | None  # the most common normalised answer, cut short
    fingerprints: list[str]
    p95_turn_ms: float | None


def case_history(store: Store, case_id: str, *, suite: str | None = None, limit: int = 20) -> list[CasePoint]:
    """The case in the last `limit` runs that ran it (of `suite`, if given), newest first."""
    runs = store.list_runs(suite, limit=max(limit * 5, 50))
    observed = load_observations(store, [r.run_id for r in runs], case_id=case_id)
    points: list[CasePoint] = []
    for run in runs:
        obs = observed.get(run.run_id, {}).get(case_id)
        if obs is None:
            continue
        reduced = reduce_case(obs)
        agree, distinct = agreement(obs)
        verdict = Verdict.of_extra(run.extra)
        prints = sorted({f"{m or '?'}/{f or '?'}" for (_, m, f) in obs.serving if m or f})
        points.append(CasePoint(
            run_id=run.run_id, suite=run.suite, started=run.started, git_sha=run.git_sha,
            verdict=verdict.name if verdict else None,
            status=reduced.status, passes=reduced.passes, executed=reduced.executed, repeats=len(obs.statuses),
            agreement=agree, answer=short(distinct[0][0]) if distinct else None, fingerprints=prints,
            p95_turn_ms=percentile(obs.turn_ms, 95),
        ))
        if len(points) >= limit:
            break
    return points
