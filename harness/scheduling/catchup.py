"""What to do about fires that were missed while no daemon was running.

APScheduler's own misfire handling only covers a daemon that was alive but late; fires
missed while the host was down are forgotten when a fresh process adds its jobs. So the
daemon remembers, in the store, when it last fired each suite, and on start-up asks this
module: was a fire missed, and is the newest missed fire still within the grace window?
Then it runs once (however many fires were missed: they coalesce), else it logs the skip.

Pure functions of (trigger, last fire, now, grace), so tests drive them with any clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

from .cron import fires_between


@dataclass(frozen=True)
class CatchUp:
    run_for: datetime | None  # the newest missed fire within the grace window: run once for it
    missed_within: int  # missed fires inside the window (all coalesced into one run)
    missed_beyond: bool  # some fire was missed longer ago than the window allows

    @property
    def skipped_only(self) -> bool:
        return self.run_for is None and self.missed_beyond


def catch_up(trigger: CronTrigger, last_fire: datetime | None, now: datetime, grace: timedelta) -> CatchUp:
    """Decide about fires in (last_fire, now]. No record of a last fire means nothing was missed."""
    if last_fire is None or last_fire >= now:
        return CatchUp(None, 0, False)
    window_start = max(last_fire, now - grace)
    recent = fires_between(trigger, window_start, now)
    first = trigger.get_next_fire_time(None, last_fire + timedelta(microseconds=1))
    beyond = first is not None and first <= window_start and first <= now and window_start > last_fire
    return CatchUp(recent[-1] if recent else None, len(recent), bool(beyond))
