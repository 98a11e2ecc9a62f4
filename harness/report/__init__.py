"""Reporters for one run: console summary and progress, JSON, JUnit XML and an HTML page.

Every reporter takes the same inputs, `RunInfo` and a list of `CaseResult`, plus the run's
`RunSummary` (from `summary.summarize`, computed once per run and also read by the
notifiers): every count, rate, percentile, the verdict and the status line come from it, so
all formats agree.

The names below are loaded on first use: `harness run -q --no-reports` reads only
`summary` and `_common`, and must not pay for rich, jinja2 or the XML writer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "ProgressReporter": "console",
    "print_summary": "console",
    "summary_table": "console",
    "render_run_html": "html",
    "write_run_html": "html",
    "build_json": "json_report",
    "write_json": "json_report",
    "build_junit": "junit",
    "write_junit": "junit",
    "ErrorGroup": "summary",
    "RunSummary": "summary",
    "SlowTurn": "summary",
    "StatusLine": "summary",
    "Tally": "summary",
    "rate_text": "summary",
    "status_line": "summary",
    "summarize": "summary",
    "percentile": ".percentiles",  # ..percentiles: the package's, re-exported here
}

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

if TYPE_CHECKING:
    from ..percentiles import percentile
    from .console import ProgressReporter, print_summary, summary_table
    from .html import render_run_html, write_run_html
    from .json_report import build_json, write_json
    from .junit import build_junit, write_junit
    from .summary import ErrorGroup, RunSummary, SlowTurn, StatusLine, Tally, rate_text, status_line, summarize


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
