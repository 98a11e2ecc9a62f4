"""`harness schedule`: the cron daemon (or, with --list, when each suite runs next)."""

from __future__ import annotations

from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    app.command("schedule")(schedule)


def schedule(
    paths: List[str] = typer.Argument(..., metavar="PATH", help="Suite files, or folders of them (e.g. suites/)."),
    list_only: bool = typer.Option(False, "--list", help="Print each suite's next fire times and exit."),
    count: int = typer.Option(
        3, "--count", metavar="N", min=1, max=100, help="With --list: how many fire times per suite."
    ),
    grace: str = typer.Option(
        "6h", "--grace", metavar="AGE",
        help="Run a missed fire (host down, daemon late) if it is at most this old: 30m, 6h, 1d."
    ),
    stop_timeout: str = typer.Option(
        "5m", "--stop-timeout", metavar="DURATION",
        help="On SIGTERM/SIGINT, let a run in progress finish for this long, then stop it."
    ),
    lock_stale: Optional[str] = typer.Option(
        None, "--lock-stale", metavar="DURATION",
        help="A suite lock whose holder went silent this long is taken over (default 10m)."
    ),
    store: Optional[str] = typer.Option(
        None, "--store", metavar="URL", help="SQLAlchemy URL of the store, for every suite."
    ),
) -> None:
    """Run every suite that has a `schedule:` (crontab, in its `timezone:`) on time, until stopped.

    Each run is one JSON line on stdout (suite, run_id, status, verdict, duration_s). A fire missed
    while the daemon was down runs once at start-up if it is within --grace; a suite never runs
    twice at once, also across hosts sharing the store.
    """
    from datetime import timedelta

    from rich.console import Console

    from ..errors import HarnessError
    from ..scheduling.daemon import Daemon, listing, parse_duration, read_schedules

    err = Console(stderr=True, highlight=False)
    try:
        if list_only:
            for line in listing(paths, count=count):
                typer.echo(line)
            return
        scheduled, unscheduled = read_schedules(paths)
        if not scheduled:
            raise HarnessError(f"no suite in {', '.join(paths)} has a schedule: (expected e.g. schedule: \"0 6 * * *\")")
        daemon = Daemon(
            scheduled,
            grace=timedelta(seconds=parse_duration(grace, what="--grace")),
            stop_timeout=parse_duration(stop_timeout, what="--stop-timeout"),
            lock_stale_s=parse_duration(lock_stale, what="--lock-stale") if lock_stale else None,
            store_url=store,
        )
        code = daemon.serve()
    except HarnessError as e:
        err.print(f"error: {e.line()}", markup=False, soft_wrap=True)
        raise typer.Exit(int(e.exit_code))
    raise typer.Exit(code)
