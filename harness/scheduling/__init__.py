"""`harness schedule`: the daemon that starts each suite's runs on its cron (`daemon`), and the
parts that need no running daemon: crontab reading, the missed-fire decision, the last-fire
record, and the per-run worker process.

The daemon is imported from `harness.scheduling.daemon` (it pulls in APScheduler)."""

from .catchup import CatchUp, catch_up
from .cron import crontab_days, crontab_trigger, fires_between, next_fires, resolve_timezone, trigger_for

__all__ = [
    "CatchUp",
    "catch_up",
    "crontab_days",
    "crontab_trigger",
    "fires_between",
    "next_fires",
    "resolve_timezone",
    "trigger_for",
]
