"""The one-run HTML report: a single self-contained file that opens offline.

Everything a model said is untrusted. The template autoescapes every value; nothing from a
result is marked safe; data the filter script needs sits in escaped data- attributes; and a
Content-Security-Policy lets only our own script (pinned by its hash) run and nothing load
from the network, so even a missed escape could not run code or phone home.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..records import CaseResult, RunInfo
from ..verdict import Verdict
from ._common import one_line, redact, write_text_atomic
from ._pages import (
    STATUS_LABEL,
    STATUS_ORDER,
    assets,
    case_view,
    trace_view,
    compact,
    environment,
    fmt_duration,
    fmt_time,
    rounded,
)
from .summary import STATUSES, RunSummary, rate_text, repeated_case_ids, status_line, stored_verdict, summarize


def _verdict_view(stored: Any) -> dict[str, Any] | None:
    """The stored verdict, read as a `Verdict`: its class (coloured by its tone), its
    evidence, and its other fields that say something as plain name/value pairs (a note
    when the stored verdict could not be read)."""
    verdict = Verdict.from_stored(stored)
    if verdict is None:
        return None
    data = redact(verdict.to_dict())
    items = [e["detail"] if set(e) == {"kind", "detail"} and not e["kind"] else compact(rounded(e), 600)
             for e in data["evidence"]]
    other = [(str(k), v if isinstance(v, str) else compact(v, 600)) for k, v in data.items()
             if k not in ("class", "evidence") and v not in (None, "", [], {})]
    return {"cls": str(data["class"]), "slug": verdict.cls.tone, "evidence": items, "other": other}


def _header_view(run: RunInfo, summary: RunSummary) -> dict[str, Any]:
    target = redact(run.target or {})
    duration = (run.ended - run.started) * 1000 if run.ended and run.started else None
    status = summary.status or status_line(run, summary)
    extra = run.extra if isinstance(run.extra, dict) else {}
    t = summary.total
    requests, retries = extra.get("requests"), extra.get("retries")
    return {
        "requests": requests if isinstance(requests, int) else None,
        "retries": retries if isinstance(retries, int) else None,
        "suite": run.suite,
        "suite_file": run.suite_file,
        "run_id": run.run_id,
        "target_kind": target.get("kind"),
        "target_model": target.get("model") or run.model,
        "target_url": target.get("base_url") or target.get("url"),
        "git_sha": (run.git_sha or "")[:12] or None,
        "host": run.host,
        "started": fmt_time(run.started),
        "ended": fmt_time(run.ended),
        "duration": fmt_duration(duration) if duration is not None else "—",
        "run_status": run.status,
        "planned": run.planned,
        "message": run.message,
        "level": status.level,
        "badge": {"passed": "PASSED", "failed": "FAILED", "error": "ERROR", "incomplete": "INCOMPLETE"}.get(status.level, "NO CASES"),
        "status_text": status.text,
        "pass_rate": rate_text(t.pass_rate),
        "judged": t.judged,
        "infra_errors": t.infra_errors,
        "infra_error_rate": rate_text(t.error_rate),
        "cases": t.cases,
    }


def render_run_html(run: RunInfo, results: Sequence[CaseResult], *, include_passed_transcripts: bool = True,
                    summary: RunSummary | None = None) -> str:
    """Render the report. With `include_passed_transcripts=False` passed cases keep their row
    but not their transcript, which keeps a 10 000-case report small."""
    summary = summary or summarize(results, run)
    repeated = repeated_case_ids(results)
    order = sorted(range(len(results)), key=lambda i: (STATUS_ORDER.get(results[i].status, 1), results[i].topic, results[i].case_id, results[i].repeat_index, i))
    cases = []
    for n, i in enumerate(order, 1):
        view = case_view(results[i], n, repeated)
        view["trace"] = trace_view(run, results[i])
        if not include_passed_transcripts and view["status"] == "passed":
            view["turns"], view["call_checks"], view["outcome"] = [], [], None
            view["omitted"] = True
        else:
            view["omitted"] = False
        cases.append(view)
    tags = sorted({t for r in results for t in r.tags})
    status_counts = {s: getattr(summary.total, s) for s in STATUSES}
    css, js, script_hash = assets(("run.css",), "run.js")
    return environment().get_template("run.html.j2").render(
        run=_header_view(run, summary),
        summary=summary,
        verdict=_verdict_view(stored_verdict(run)),
        objectives=summary.objectives,
        cases=cases,
        topics=[t.topic for t in summary.topics],
        tags=tags,
        status_counts=status_counts,
        status_label=STATUS_LABEL,
        generated=fmt_time(datetime.now(timezone.utc).timestamp()),
        one_line=one_line,
        css=css,
        js=js,
        script_hash=script_hash,
    )


def write_run_html(path: str | os.PathLike[str], run: RunInfo, results: Sequence[CaseResult],
                   summary: RunSummary | None = None, **kwargs: Any) -> Path:
    """Write the HTML report to `path` (parents created) and return the path."""
    return write_text_atomic(path, render_run_html(run, results, summary=summary, **kwargs))
