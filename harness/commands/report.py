"""`harness report`: the HTML trend report, built from the history store alone.

    harness report                                  # every suite, last 30 days, into reports/
    harness report --suite daily-drift --since 90d -o public/
    harness report --store postgresql://…/harness --run 20240501T060000-1a2b3c4d
    harness report --group ci-123 -o reports/       # the shards of one CI job, as one run

With `--group`, the shards' runs are read back as one run and written as that run's JSON,
JUnit XML and HTML report (the same reporters `harness run` uses), next to the trend page.

Imports of pandas, jinja2 and SQLAlchemy stay inside the command so `harness --help`
starts fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    app.command("report")(report)


def report(
    suite: Optional[str] = typer.Option(
        None, "--suite", "-s", metavar="SUITE", help="Only this suite (by name). Default: every suite."
    ),
    since: str = typer.Option(
        "30d", "--since", metavar="AGE", help="How far back: 30d, 12h, 2w, 90m; 'all' for the whole history."
    ),
    store: Optional[str] = typer.Option(
        None, "--store", metavar="URL",
        help="SQLAlchemy URL of the history store. Default: .harness/history.db in the project root."
    ),
    out_dir: str = typer.Option("reports", "--output", "-o", metavar="DIR", help="Folder to write the report into."),
    run: Optional[str] = typer.Option(
        None, "--run", metavar="RUN",
        help="Run to show at the top (id, unique id prefix, or latest). Default: the latest finished run."
    ),
    group: Optional[str] = typer.Option(
        None, "--group", metavar="GROUP",
        help="Also write JSON, JUnit and HTML for this run group (the shards of one CI job) as one run."
    ),
) -> None:
    """Write the HTML trend report (verdict, trends per topic/model/suite/tag, changed and
    flaky cases, transcripts) from the history store, without running anything."""
    from rich.console import Console

    from ..errors import HarnessError
    from ..loading import find_root
    from ..report.trend import parse_since
    from ..report.trend_html import write_trend_report
    from ..store import Store

    out, err = Console(highlight=False), Console(stderr=True, highlight=False)
    try:
        since_s = None if since.strip().lower() == "all" else parse_since(since)
        root = find_root(Path.cwd() / "harness-report")  # the folder holding golden/ or pyproject.toml
        with Store.open(store, root=root) as history:
            if not history.list_runs(suite=suite, limit=1):
                where = f" for suite {suite!r}" if suite else ""
                err.print(f"warning: the store {history.display_url} holds no runs{where}; the report is empty",
                          markup=False, soft_wrap=True)
            path = write_trend_report(history, suite=suite, since_s=since_s, out_dir=out_dir, focus_run=run)
            written = _write_group(history, group, suite, Path(out_dir)) if group else []
    except HarnessError as e:
        err.print(f"error: {e.line()}", markup=False, soft_wrap=True)
        raise typer.Exit(int(e.exit_code))
    except OSError as e:
        err.print(f"error: cannot write the report into {out_dir}: {e.strerror or e}", markup=False, soft_wrap=True)
        raise typer.Exit(2)
    out.print(f"html: {path}", markup=False, soft_wrap=True)
    for name, p in written:
        out.print(f"{name}: {p}", markup=False, soft_wrap=True)


def _write_group(history, group: str, suite: str | None, out_dir: Path) -> list[tuple[str, Path]]:
    """The group's shards as one run, through the one-run reporters."""
    import re

    from ..errors import ConfigError
    from ..report import summarize, write_json, write_junit, write_run_html
    from ..sharding import group_results, group_summary

    run = group_summary(history, group, suite=suite)
    if run is None:
        raise ConfigError(f"no run in the store belongs to group {group!r}")
    results = group_results(history, group, suite=suite)
    summary = summarize(results, run)  # once: the three reports show the same figures
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{run.suite}-group-{group}")
    return [(name, writer(out_dir / f"{stem}{suffix}", run, results, summary))
            for name, writer, suffix in (("json", write_json, ".json"), ("junit", write_junit, ".junit.xml"),
                                         ("html", write_run_html, ".html"))]
