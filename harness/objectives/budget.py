"""Error-budget arithmetic, with no I/O: windows of runs, burn rates, the policy's word.

Budgeting is by occurrences (OpenSLO's `Occurrences`): every call, check, judgement or turn
in a window is an event, and the error budget is the share of events allowed to be bad —
0.1% for `< 0.1%`, 5% for `>= 95%`, 1% of turns for a `p99` time limit. Over a window:

    burn rate       = (bad / events) / allowed     # 1: the budget lasts exactly the window
    budget consumed = burn rate over the objective's own window
    budget left     = 1 - consumed                 # negative once it is overspent

Runs are samples, not continuous traffic, so windows count runs (`12 runs`) or days (`3d`,
the runs started in them), and each figure keeps how many runs and events it rests on. A
window holding too few events for one bad event to fit in its budget (events × allowed < 1)
says so instead of guessing.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ..objective_spec import BudgetPolicy, Window

WORDS = ("ok", "slow down", "freeze", "post-mortem")
NO_DATA = "no data"
TOO_LITTLE = "too little data"
MISSED = "missed"  # a mean objective that is not met (a mean has no budget to burn)


@dataclass(slots=True)
class Sample:
    """One run's events for one objective."""

    run_id: str
    started: float
    events: int
    bad: int


@dataclass(slots=True)
class Figure:
    """A window's events and burn rate."""

    window: str
    runs: int
    events: int
    bad: int
    burn: float | None  # None: no events
    enough: bool  # events × allowed ≥ 1 and, for a window of N runs, N runs seen
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["burn"] = _finite(self.burn)
        return d


@dataclass(slots=True)
class AlertState:
    severity: str
    rate: float
    long: Figure
    short: Figure
    firing: bool

    def to_dict(self) -> dict[str, Any]:
        return {"severity": self.severity, "rate": self.rate, "long": self.long.to_dict(),
                "short": self.short.to_dict(), "firing": self.firing}


@dataclass(slots=True)
class Budget:
    window: Figure
    allowed: float
    consumed: float | None
    left: float | None
    word: str
    alerts: list[AlertState] = field(default_factory=list)

    @property
    def fast_burn(self) -> bool:
        return any(a.firing and a.severity == "page" for a in self.alerts)


def _finite(x: float | None) -> float | str | None:
    if x is None or math.isfinite(x):
        return x
    return "inf"


def select(samples: list[Sample], window: Window, now: float) -> list[Sample]:
    """The samples (newest first) a window holds, counted back from `now`."""
    if window.runs is not None:
        return samples[: window.runs]
    start = now - (window.seconds or 0)
    return [s for s in samples if s.started >= start]


def burn_rate(events: int, bad: int, allowed: float) -> float | None:
    if events == 0:
        return None
    if allowed <= 0:
        return math.inf if bad else 0.0
    return (bad / events) / allowed


def figure(samples: list[Sample], window: Window, now: float, allowed: float, unit: str = "events",
           *, need_full: bool = False) -> Figure:
    chosen = select(samples, window, now)
    events = sum(s.events for s in chosen)
    bad = sum(s.bad for s in chosen)
    runs = sum(1 for s in chosen if s.events)
    burn = burn_rate(events, bad, allowed)
    enough, note = True, None
    if events == 0:
        enough, note = False, f"no {unit} in the last {window}"
    elif need_full and window.runs is not None and len(chosen) < window.runs:
        enough, note = False, f"{len(chosen)} of {window} so far"
    elif allowed > 0 and events * allowed < 1:
        need = math.ceil(1 / allowed)
        enough, note = False, (f"too little data: {events:,} {unit}; a budget of {allowed * 100:.4g}% needs "
                               f"{need:,} for one miss to fit")
    return Figure(str(window), runs, events, bad, burn, enough, note)


def word_for(consumed: float, policy: BudgetPolicy) -> str:
    if consumed >= policy.post_mortem:
        return "post-mortem"
    if consumed >= policy.freeze:
        return "freeze"
    if consumed >= policy.slow_down:
        return "slow down"
    return "ok"


def budget(samples: list[Sample], window: Window, now: float, allowed: float, policy: BudgetPolicy,
           unit: str = "events") -> Budget:
    """The objective's budget over its window, with the policy's word and every burn alert."""
    fig = figure(samples, window, now, allowed, unit)
    consumed = fig.burn
    left = None if consumed is None else 1 - consumed
    if fig.events == 0:
        word = NO_DATA
    elif not fig.enough:
        word = TOO_LITTLE
    else:
        word = word_for(consumed or 0.0, policy)
    alerts = []
    for a in policy.alerts:
        long = figure(samples, a.long, now, allowed, unit, need_full=True)
        short = figure(samples, a.short, now, allowed, unit, need_full=True)
        firing = (long.enough and short.enough and long.burn is not None and short.burn is not None
                  and long.burn >= a.rate and short.burn >= a.rate)
        alerts.append(AlertState(a.severity, a.rate, long, short, firing))
    return Budget(fig, allowed, consumed, left, word, alerts)


def severity(word: str) -> int:
    """How far along the policy a word is (0 for ok and the no-data words)."""
    return WORDS.index(word) if word in WORDS else 0
