"""Publish: the reports (JSON, JUnit, HTML, the trend page) and the notifications (every notifier).

Everything here runs after every result is stored: a report or a notifier that fails
never costs a result.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ExitCode, HarnessError
from ..records import CaseResult, RunInfo
from .plan import RunOptions, RunOutcome


def write_reports(suite, run: RunInfo, results: list[CaseResult], options: RunOptions, store=None,
                  summary=None) -> dict[str, Path]:
    """JSON, JUnit and HTML for one run, into the suite's report folder unless paths are given.

    With the store at hand, also the trend page focused on this run (its verdict on top,
    then the suite's history); `<suite>-latest.html` is a copy of it, the page to open.
    """
    from ..report import write_json, write_junit, write_run_html

    out_dir = Path(options.report_dir or os.path.join(suite.root, suite.output.dir))
    written: dict[str, Path] = {}
    stem = f"{suite.name}-{run.run_id}"
    plan = [
        ("json", options.json_path, suite.output.json_, write_json, ".json"),
        ("junit", options.junit_path, suite.output.junit, write_junit, ".junit.xml"),
        ("html", options.html_path, suite.output.html, write_run_html, ".html"),
    ]
    for name, explicit, enabled, writer, suffix in plan:
        if not explicit and not enabled:
            continue
        path = Path(explicit) if explicit else out_dir / f"{stem}{suffix}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            writer(path, run, results, summary)
        except OSError as e:
            raise HarnessError(f"cannot write the {name} report to {path}: {e.strerror or e}") from None
        written[name] = path
    latest_source = written.get("html")
    if store is not None and suite.output.html:
        from ..report.trend_html import write_trend_report

        try:
            written["trend"] = latest_source = write_trend_report(
                store, suite=suite.name, since_s=TREND_WINDOW_S, out_dir=out_dir, focus_run=run.run_id,
                summary=summary)
        except OSError as e:
            raise HarnessError(f"cannot write the trend report to {out_dir}: {e.strerror or e}") from None
    if latest_source is not None and not options.html_path:
        latest = out_dir / f"{suite.name}-latest.html"
        try:
            latest.write_bytes(latest_source.read_bytes())
            written["html_latest"] = latest
        except OSError:
            pass
    return written


TREND_WINDOW_S = 30 * 86400  # the trend page after a run shows the last 30 days


def _notify(suite, run: RunInfo, results: list[CaseResult], store, outcome: RunOutcome) -> None:
    """The suite's notifiers, after the results are stored. A failed delivery is kept as pending
    in the store and becomes a warning; it fails the run only when the suite asks for that."""
    from ..notify import deliver

    problems = deliver(run, results, suite.notify, store, summary=outcome.summary)
    outcome.warnings.extend(problems)
    if problems and suite.notify.fail_on_error and outcome.exit_code == ExitCode.OK:
        outcome.exit_code = ExitCode.UNREACHABLE


def check_notifiers(suite) -> None:
    """Build every notifier the suite names, so a mistake in their settings is a positioned
    error before the run, not a failed delivery after it."""
    if suite.notify.destinations:
        from ..loading import suite_position_of
        from ..notify import notifiers_of

        notifiers_of(suite.notify, suite_position_of(suite))
