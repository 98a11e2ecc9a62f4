"""The trailing window: the last N finished runs of a suite, summarised per case.

Only the columns analysis needs are read (no RunInfo rebuild per result), so comparing a
run with two weeks of history stays cheap even with thousands of results per run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..records import RunInfo
from ..store import Store
from ..verdict import Verdict, VerdictClass
from .observe import CaseObs, add_row

__all__ = ["HEALTHY", "PastRun", "load_observations", "trailing_window"]

HEALTHY = frozenset(c.value for c in VerdictClass if c.healthy)  # classes whose runs say what normal is


@dataclass
class PastRun:
    run: RunInfo
    cases: dict[str, CaseObs] = field(default_factory=dict)

    @property
    def verdict(self) -> Verdict | None:
        return Verdict.of_extra(self.run.extra)

    @property
    def healthy(self) -> bool:
        """A run that says what normal looks like: not an outage, not a known bad day (a
        verdict this version cannot read is not taken as normal)."""
        if self.run.status != "complete":
            return False
        verdict = self.verdict
        return verdict is None or verdict.cls.healthy


def load_observations(store: Store, run_ids: list[str], case_id: str | None = None) -> dict[str, dict[str, CaseObs]]:
    """run_id -> case_id -> CaseObs, read from the results table."""
    if not run_ids:
        return {}
    out: dict[str, dict[str, CaseObs]] = {rid: {} for rid in run_ids}
    for row in store.observation_rows(run_ids, case_id):
        cases = out[row.run_id]
        obs = cases.get(row.case_id)
        if obs is None:
            obs = cases[row.case_id] = CaseObs(row.case_id, row.topic)
        add_row(obs, row.status, list(row.checks or []), row.transcript)
        obs.note_inputs(row.input_fp)
    return out


def trailing_window(store: Store, run: RunInfo, size: int) -> list[PastRun]:
    """Up to `size` finished runs of the run's suite that started before it, newest first."""
    candidates = [r for r in store.list_runs(run.suite, limit=size * 2 + 5)
                  if r.run_id != run.run_id and r.started <= run.started and r.status in ("complete", "aborted")]
    chosen = candidates[:size]
    observed = load_observations(store, [r.run_id for r in chosen])
    return [PastRun(r, observed.get(r.run_id, {})) for r in chosen]
