"""Whether a run is worth a Slack message, and how to word failures the team already knows.

A daily suite with one broken case would otherwise post the same red message every
morning until people mute the channel. The rules, in order:

1. **History.** The *previous run* is the newest earlier run of the same suite whose status
   is `complete` or `aborted` (a `running` or `incomplete` run has partial results and
   would fake recoveries). Its verdict class is the one the analysis stage stored in
   `run.extra["verdict"]`, else the plain class derived from its counts.
2. **Streaks.** A case *fails* in a run when at least one of its repeats has status
   `failed` (infra errors are not failures). For each case failing now, walk back through
   earlier complete/aborted runs, newest first: a run that failed it extends the streak, a
   run that passed it ends the streak, a run that did not run it (or only errored) is
   skipped. A streak of one run is a **new failure**; a longer one is **still failing
   (day N)**, where N counts calendar days (UTC) from the streak's first run to this one, so
   a daily suite reads day 1, 2, 3 … and several runs a day stay on the same day.
3. **Recoveries.** A case that failed in the previous run and now ran with no failure and
   no error is **recovered**. It is listed once: the next run compares against this one,
   where the case no longer fails.
4. **Triggers** (`notify.slack.when`): `always` sends every run. Otherwise a run is sent
   when its class is listed and alerts (`VerdictClass.alerting`: `regression`, `drift`, `mixed`,
   `infra`, `judge_drift`, `failing`); when `failed`
   is listed and a check failed; when `change` is listed and the class differs from the
   previous run's (with no previous run, any class but `ok` counts as a change; when the
   previous run has no stored verdict, this run's class is derived from counts the same way
   before comparing). A run with recoveries is sent when `failed` or `change` is listed or
   the previous run's class was listed: what we alerted about, we also give the all-clear
   for.
5. **Suppression.** Unless `always` is listed, a triggered run is *not* sent when its
   verdict class and its set of failing cases are both equal to the previous run's: nothing
   new happened since the last message.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from ..records import CaseResult, RunInfo
from ..verdict import Verdict, VerdictClass
from .summary import failing_ids

SETTLED = ("complete", "aborted")


@dataclass
class Streak:
    runs: int  # consecutive runs failing, this one included
    days: int  # calendar days (UTC) from the first of those runs to this one, inclusive
    since: float  # start time of the first failing run of the streak

    def label(self) -> str:
        if self.runs <= 1:
            return "new"
        text = f"still failing (day {self.days}"
        if self.runs != self.days:
            text += f", {self.runs} runs"
        return text + ")"


@dataclass
class History:
    previous: RunInfo | None = None
    previous_class: str | None = None
    previous_class_derived: bool = False  # the previous run has no stored verdict: class from its counts
    previous_failing: set[str] = field(default_factory=set)
    streaks: dict[str, Streak] = field(default_factory=dict)
    recovered: list[str] = field(default_factory=list)

    @property
    def new(self) -> list[str]:
        return sorted(c for c, s in self.streaks.items() if s.runs <= 1)

    @property
    def still(self) -> list[str]:
        return sorted((c for c, s in self.streaks.items() if s.runs > 1), key=lambda c: (-self.streaks[c].runs, c))


@dataclass
class Decision:
    send: bool
    reason: str


def _day(ts: float) -> dt.date:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).date()


def _statuses(store: Any, run_id: str) -> dict[str, str]:
    """case id → 'failed' if any repeat failed, else 'passed' if any passed, else 'error'.

    Reads two columns of the results (`store.case_statuses`): a run of 5,000 cases with
    transcripts would be slow to rebuild as records just to learn which failed.
    """
    out: dict[str, str] = {}
    rows = store.case_statuses(run_id)
    rank = {"failed": 3, "passed": 2, "error": 1, "not_run": 0}
    for case_id, status in rows:
        if case_id not in out or rank.get(status, 0) > rank.get(out[case_id], 0):
            out[case_id] = status
    return out


def earlier_runs(store: Any, run: RunInfo, limit: int) -> list[RunInfo]:
    """Settled runs of the same suite that started before `run`, newest first."""
    runs = store.list_runs(suite=run.suite, limit=limit + 5)
    return [
        r for r in runs if r.run_id != run.run_id and r.status in SETTLED and (r.started or 0) < (run.started or 0)
    ][:limit]


def load_history(store: Any, run: RunInfo, results: list[CaseResult], *, max_runs: int = 60) -> History:
    """Compare this run with the suite's earlier runs in the store (see the module rules)."""
    current = failing_ids(results)
    clean = {r.case_id for r in results if r.status == "passed"} - current
    clean -= {r.case_id for r in results if r.status == "error"}
    history = History()
    earlier = earlier_runs(store, run, max_runs)
    open_streaks = {c: Streak(1, 1, run.started) for c in current}
    history.streaks = dict(open_streaks)
    for i, prev in enumerate(earlier):
        statuses = _statuses(store, prev.run_id)
        if i == 0:
            history.previous = prev
            verdict, history.previous_class_derived = Verdict.for_run(prev.status, prev.message, prev.extra,
                                                                      dict(prev.counts))
            history.previous_class = verdict.cls
            history.previous_failing = {c for c, s in statuses.items() if s == "failed"}
            history.recovered = sorted(history.previous_failing & clean)
        for case_id in list(open_streaks):
            status = statuses.get(case_id)
            if status == "failed":
                s = open_streaks[case_id]
                s.runs += 1
                s.since = prev.started
                s.days = (_day(run.started) - _day(prev.started)).days + 1
            elif status == "passed":
                del open_streaks[case_id]  # the streak ended here; what we counted stands
        if not open_streaks:
            break
    return history


def decide(when: list[str], verdict_class: str, failing: set[str], history: History,
           comparable_class: str | None = None) -> Decision:
    """Apply the trigger and suppression rules of this module's docstring.

    `comparable_class` is this run's class as it would read without the analysis stage;
    when the previous run's class had to be derived from its counts, that is the one to
    compare with (otherwise "regression" vs a derived "failed" would look like a change
    every day).
    """
    wanted = set(when)
    same_kind = comparable_class if (history.previous_class_derived and comparable_class) else verdict_class
    if "always" in wanted:
        return Decision(True, "when: always")
    reasons = []
    vc = VerdictClass.parse(verdict_class)
    if vc is not None and vc.alerting and verdict_class in wanted:
        reasons.append(f"verdict {verdict_class}")
    if "failed" in wanted and failing:
        reasons.append("a check failed")
    if "change" in wanted:
        if history.previous is None:
            if verdict_class != "ok":
                reasons.append(f"first run with verdict {verdict_class}")
        elif history.previous_class != same_kind:
            reasons.append(f"verdict changed from {history.previous_class} to {same_kind}")
    if history.recovered and (wanted & {"failed", "change"} or history.previous_class in wanted):
        reasons.append(f"{len(history.recovered)} recovered")
    if not reasons:
        return Decision(False, f"verdict {verdict_class} is not in notify.slack.when ({', '.join(when) or 'empty'})")
    if (
        history.previous is not None
        and history.previous_class == same_kind
        and history.previous_failing == failing
        and not history.recovered
    ):
        return Decision(False, f"same verdict ({verdict_class}) and failing cases as run {history.previous.run_id}")
    return Decision(True, "; ".join(reasons))
