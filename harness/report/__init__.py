"""Reporters for one run: console summary and progress, JSON, JUnit XML and an HTML page.

Every reporter takes the same inputs, `RunInfo` and a list of `CaseResult`, plus the run's
`RunSummary` (from `summary.summarize`, computed once per run and also read by the
notifiers): every count, rate, percentile, the verdict and the status line come from it, so
all formats agree.
"""

from .console import ProgressReporter, print_summary, summary_table
from .html import render_run_html, write_run_html
from .json_report import build_json, write_json
from .junit import build_junit, write_junit
from ..percentiles import percentile
from .summary import ErrorGroup, RunSummary, SlowTurn, StatusLine, Tally, rate_text, status_line, summarize

__all__ = [
    "ErrorGroup",
    "ProgressReporter",
    "RunSummary",
    "SlowTurn",
    "StatusLine",
    "Tally",
    "build_json",
    "build_junit",
    "percentile",
    "print_summary",
    "rate_text",
    "render_run_html",
    "status_line",
    "summarize",
    "summary_table",
    "write_json",
    "write_junit",
    "write_run_html",
]
