"""Each objective of a suite, now: this run's figure against the target, and over its window
the SLI, the budget consumed and left, the burn alerts and the policy's word.

    results = evaluate(suite, store.objectives)                  # harness slo status
    results = evaluate(suite, records, current=(run, tally))             # after a run
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from . import tally as tallies
from .budget import MISSED, NO_DATA, Budget, Figure, Sample, budget, select, severity
from ..objective_spec import LATENCY, BudgetPolicy, ObjectiveSpec, Window


@dataclass
class ObjectiveResult:
    """One objective's state; `to_dict()` is what JSON, the store and `slo status --json` hold."""

    spec: ObjectiveSpec
    run_id: str | None  # the run the `value` is of (this run, or the latest)
    value: float | None  # that run's SLI: its p99 ms, its error or pass rate
    met: bool | None  # that run's SLI meets the target (None: no events)
    run_events: int
    run_bad: int | None  # that run's bad events (None for a mean)
    window_value: float | None  # over the window: the good share (times, pass rate), the error rate, the mean
    budget: Budget | None  # None for a mean, which has no events to budget
    word: str
    window_runs: int = 0
    window_events: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def fast_burn(self) -> bool:
        return bool(self.budget and self.budget.fast_burn)

    @property
    def missed(self) -> bool:
        """Worth a line beside the verdict: this run misses the target, or the budget is burning."""
        return self.met is False or severity(self.word) > 0 or self.word == MISSED or self.fast_burn

    def to_dict(self) -> dict[str, Any]:
        s = self.spec
        b = self.budget
        return {
            "name": s.name,
            "indicator": s.indicator,
            "stat": s.stat_or_default if s.indicator in LATENCY else None,
            "selector": s.check or s.rubric or s.topic,
            "target": s.target_text,
            "window": str(s.window),
            "objective": s.describe(),
            "run": {"run_id": self.run_id, "value": self.value, "met": self.met, "events": self.run_events,
                    "bad": self.run_bad},
            "sli": self.window_value,
            "runs": self.window_runs,
            "events": self.window_events,
            "unit": s.unit,
            "allowed": b.allowed if b else None,
            "bad": b.window.bad if b else None,
            "consumed": _finite(b.consumed) if b else None,
            "budget_left": _finite(b.left) if b else None,
            "burn_rate": _finite(b.window.burn) if b else None,
            "word": self.word,
            "fast_burn": self.fast_burn,
            "alerts": [a.to_dict() for a in b.alerts] if b else [],
            "notes": list(self.notes),
        }


def _finite(x: float | None) -> float | str | None:
    if x is None or math.isfinite(x):
        return x
    return "-inf" if x < 0 else "inf"


def reach(objectives: list[ObjectiveSpec], policy: BudgetPolicy) -> tuple[float | None, int]:
    """How far back the windows look: (seconds, runs) — the longest of each kind."""
    windows: list[Window] = [o.window for o in objectives]
    for a in policy.alerts:
        windows += [a.long, a.short]
    seconds = max((w.seconds for w in windows if w.seconds), default=None)
    runs = max((w.runs for w in windows if w.runs), default=0)
    return seconds, runs


def load_history(suite: Any, records: Any, *, now: float, exclude: str | None = None,
                 extra_seconds: float = 0.0, backfill: bool = True) -> list[tuple[str, float, dict[str, Any]]]:
    """(run id, started, tally) of the suite's finished runs the windows reach, newest first.

    A run not counted yet (made before these objectives) is counted from its rows once and
    its tally kept; a store that cannot be written keeps nothing and loses nothing.
    """
    from ..errors import HarnessError

    objectives = list(suite.objectives)
    seconds, runs = reach(objectives, suite.budget_policy)
    since = None if seconds is None else now - seconds - extra_seconds
    wanted = tallies.limits(objectives)
    out = []
    for w in records.window_runs(suite.name, since=since, last=runs, until=now, exclude=exclude):
        saved = dict(w.objectives or {})
        t = saved.get("tally")
        if tallies.missing(t, wanted):
            if not backfill:
                continue
            t = tallies.count(tallies.rows_of_stored(records.result_rows(w.run_id)), _merged(wanted, t))
            saved["tally"] = t
            try:
                records.save(w.run_id, saved)
            except HarnessError:
                pass
        out.append((w.run_id, w.started, t))
    return out


def _merged(wanted: dict[str, set[str]], old: Any) -> dict[str, set[str]]:
    """Keep counting the limits an older tally counted (another suite file may want them)."""
    out = {k: set(v) for k, v in wanted.items()}
    if isinstance(old, dict):
        for ind, lat in (old.get("latency") or {}).items():
            out.setdefault(ind, set()).update((lat or {}).get("over") or {})
    return out


def evaluate(suite: Any, records: Any, *, now: float | None = None,
             current: tuple[Any, dict[str, Any]] | None = None,
             history: list[tuple[str, float, dict[str, Any]]] | None = None) -> list[ObjectiveResult]:
    """Every objective of `suite` over the history in `records` (plus `current`, a run not
    finished in the store yet, with its tally)."""
    now = time.time() if now is None else now
    if history is None:
        history = load_history(suite, records, now=now, exclude=current[0].run_id if current else None)
    runs = list(history)
    if current is not None:
        run, t = current
        runs.insert(0, (run.run_id, run.started, t))
    return [evaluate_one(o, suite.budget_policy, runs, now) for o in suite.objectives]


def evaluate_one(o: ObjectiveSpec, policy: BudgetPolicy, runs: list[tuple[str, float, dict[str, Any]]],
                 now: float) -> ObjectiveResult:
    latest = runs[0] if runs else None
    value = met = None
    run_events, run_bad = 0, None
    if latest is not None:
        value = tallies.run_value(o, latest[2])
        run_events, run_bad = tallies.events(o, latest[2])
        met = None if value is None else o.target.met(value)
    allowed = o.allowed_bad
    samples = [Sample(rid, started, *tallies.events(o, t)) for rid, started, t in runs]
    in_window = select(samples, o.window, now)
    window_runs = sum(1 for s in in_window if s.events)
    window_events = sum(s.events for s in in_window)
    notes: list[str] = []
    if allowed is None:  # a mean: met or missed over the window, no budget
        n = total = 0.0
        for rid, started, t in runs:
            if any(s.run_id == rid for s in in_window):
                k, s = tallies.latency_sum(o, t)
                n += k
                total += s
        window_value = total / n if n else None
        word = NO_DATA if window_value is None else ("ok" if o.target.met(window_value) else MISSED)
        return ObjectiveResult(o, latest[0] if latest else None, value, met, run_events, None, window_value, None, word,
                               window_runs, window_events, ["a mean has no error budget: met or missed"])
    b = budget(samples, o.window, now, allowed, policy, o.unit)
    w: Figure = b.window
    window_value = None
    if w.events:
        bad_share = w.bad / w.events
        window_value = bad_share if o.indicator in ("infra_error_rate", "check_fail_rate", "judge_fail_rate") \
            else 1 - bad_share
    if w.note:
        notes.append(w.note)
    if o.window.runs is not None and len(in_window) < o.window.runs and in_window:
        notes.append(f"{len(in_window)} of {o.window} in the history so far")
    return ObjectiveResult(o, latest[0] if latest else None, value, met, run_events, run_bad, window_value, b, b.word,
                           window_runs, window_events, notes)


def burn_down(o: ObjectiveSpec, policy: BudgetPolicy, runs: list[tuple[str, float, dict[str, Any]]],
              since: float | None = None) -> list[dict[str, Any]]:
    """Budget left after each run (oldest first), each over the objective's window ending at that
    run: the points of the HTML burn-down chart."""
    allowed = o.allowed_bad
    if allowed is None:
        return []
    samples = [Sample(rid, started, *tallies.events(o, t)) for rid, started, t in runs]  # newest first
    out = []
    for i in range(len(samples) - 1, -1, -1):
        s = samples[i]
        if since is not None and s.started < since:
            continue
        b = budget(samples[i:], o.window, s.started, allowed, policy, o.unit)
        out.append({"run_id": s.run_id, "started": s.started, "left": _finite(b.left), "word": b.word,
                    "events": b.window.events})
    return out
