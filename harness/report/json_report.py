"""The JSON reporter: the whole run in one document, for tools and for later analysis.

Key order is fixed (run, summary, verdict, results; record fields in their declared order)
so two reports of the same run diff cleanly. Text stays readable UTF-8 (Japanese is not
turned into \\u escapes).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..records import CaseResult, RunInfo
from ._common import redact, write_text_atomic
from .summary import RunSummary, raw_verdict, status_line, summarize

SCHEMA_VERSION = 1


def build_json(run: RunInfo, results: Sequence[CaseResult], summary: RunSummary | None = None) -> dict[str, Any]:
    """The report as a plain dict (what `write_json` writes)."""
    summary = summary or summarize(results, run)
    status = summary.status or status_line(run, summary)
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run": redact(run.to_dict()),
        "summary": {"status": status.level, "status_line": status.text, **summary.to_dict()},
        "verdict": redact(raw_verdict(run)),
    }
    if summary.objectives is not None:  # beside the verdict: the missed objectives' lines
        doc["objectives"] = summary.objectives.to_dict()
    doc["results"] = [r.to_dict() | _trace_of(run, r) for r in results]
    return doc


def _trace_of(run: RunInfo, r: CaseResult) -> dict[str, Any]:
    """`trace_id` (and `trace_url`) of a result when the run was traced (harness.tracing)."""
    from ..tracing import trace_ref

    ref = trace_ref(run, r.case_id, r.repeat_index, r.status)
    if ref is None:
        return {}
    return {"trace_id": ref.trace_id, "trace_url": ref.url} if ref.url else {"trace_id": ref.trace_id}


def _finite(value: Any) -> Any:
    """Replace NaN and infinities (invalid JSON) with null, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def dumps(doc: dict[str, Any]) -> str:
    """Serialise strictly: anything json cannot represent becomes its str(), never a crash
    half-way through writing a report."""
    try:
        return json.dumps(doc, ensure_ascii=False, indent=2, allow_nan=False, default=str)
    except ValueError:
        # a NaN somewhere (a latency the target could not measure): clean the tree once
        return json.dumps(_finite(doc), ensure_ascii=False, indent=2, allow_nan=False, default=str)


def write_json(path: str | os.PathLike[str], run: RunInfo, results: Sequence[CaseResult],
               summary: RunSummary | None = None) -> Path:
    """Write the JSON report to `path` (parents created) and return the path."""
    return write_text_atomic(path, dumps(build_json(run, results, summary)) + "\n")
