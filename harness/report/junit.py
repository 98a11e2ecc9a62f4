"""The JUnit XML reporter, for CI systems that show test results (GitHub, GitLab, Jenkins).

One <testsuite> per topic, one <testcase> per result. Failed checks become <failure>, infra
errors <error> (so CI never shows an outage as a behaviour regression), cases that never ran
<skipped>. Every string passes through `xml_safe`: one control character from a model would
otherwise make the whole file unparseable.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from ..records import CaseResult, RunInfo, Transcript
from ..tracing import trace_ref
from ._common import one_line, redact, write_text_atomic, xml_safe
from .summary import RunSummary, rate_text, repeated_case_ids, summarize

MAX_OUTPUT_CHARS = 20_000  # per case <system-out>; a CI page is not the place for a novel


def _secs(ms: float | None) -> str:
    return f"{(ms or 0.0) / 1000:.3f}"


def _iso(epoch: float | None) -> str | None:
    if not epoch:
        return None
    return datetime.fromtimestamp(epoch, tz=timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds")


def _source_file(source: str | None) -> tuple[str | None, str | None]:
    """Split "golden/x.yaml:12" (or ":12:3") into file and line."""
    if not source:
        return None, None
    parts = source.split(":")
    nums = []
    while len(parts) > 1 and parts[-1].isdigit():
        nums.insert(0, parts.pop())
    return ":".join(parts), (nums[0] if nums else None)


def _transcript_text(t: Transcript) -> str:
    lines = []
    for turn in t.turns:
        if turn.caller is not None:
            lines.append(f"[{turn.index}] caller: {turn.caller}")
        ms = f" ({turn.reply.total_ms:.0f} ms)" if turn.reply.total_ms is not None else ""
        lines.append(f"[{turn.index}] agent{ms}: {turn.reply.text}")
    o = t.outcome
    lines.append(f"outcome: intent={o.intent} slots={o.slots} transferred={o.transferred}")
    text = "\n".join(lines)
    return text if len(text) <= MAX_OUTPUT_CHARS else text[:MAX_OUTPUT_CHARS] + "\n…"


def _set(el: ET.Element, key: str, value: object) -> None:
    if value is not None:
        el.set(key, xml_safe(value))


def build_junit(run: RunInfo, results: Sequence[CaseResult], summary: RunSummary | None = None) -> ET.ElementTree:
    """The report as an ElementTree (what `write_junit` writes). Each <testsuite> carries the
    run's figures as properties (`harness.pass_rate`, `harness.infra_error_rate`, and the
    topic's own), worded as on every other surface."""
    summary = summary or summarize(results, run, slowest=0)
    repeated = repeated_case_ids(results)
    by_topic: dict[str, list[CaseResult]] = {}
    for r in results:
        by_topic.setdefault(r.topic, []).append(r)

    root = ET.Element("testsuites")
    t = summary.total
    _set(root, "name", run.suite)
    for key, value in (("tests", t.cases), ("failures", t.failed), ("errors", t.error), ("skipped", t.not_run)):
        root.set(key, str(value))
    root.set("time", _secs(t.duration_ms))
    _set(root, "timestamp", _iso(run.started))

    target = redact(run.target or {})
    props = {
        "run_id": run.run_id,
        "suite": run.suite,
        "git_sha": run.git_sha,
        "target.kind": target.get("kind"),
        "target.model": target.get("model") or run.model,
        "run.status": run.status,
        "harness.pass_rate": rate_text(t.pass_rate),
        "harness.judged": t.judged,
        "harness.infra_error_rate": rate_text(t.error_rate),
        "harness.verdict": summary.verdict_class if summary.verdict_stored else None,
    }
    for i, text in enumerate(summary.objectives.missed if summary.objectives else [], 1):
        props[f"objective.missed.{i}"] = text  # beside the verdict; never a failure of its own
    for tally in summary.topics:
        suite = ET.SubElement(root, "testsuite")
        _set(suite, "name", tally.topic)
        for key, value in (("tests", tally.cases), ("failures", tally.failed), ("errors", tally.error), ("skipped", tally.not_run)):
            suite.set(key, str(value))
        suite.set("time", _secs(tally.duration_ms))
        _set(suite, "timestamp", _iso(run.started))
        _set(suite, "hostname", run.host or None)
        properties = ET.SubElement(suite, "properties")
        own = {"topic.pass_rate": rate_text(tally.pass_rate), "topic.infra_error_rate": rate_text(tally.error_rate)}
        for name, value in {**props, **own}.items():
            if value is not None:
                prop = ET.SubElement(properties, "property")
                prop.set("name", name)
                _set(prop, "value", value)
        for r in by_topic[tally.topic]:
            suite.append(_testcase(r, repeated, run))
    return ET.ElementTree(root)


def _testcase(r: CaseResult, repeated: set[str], run: RunInfo | None = None) -> ET.Element:
    case = ET.Element("testcase")
    _set(case, "classname", r.topic)
    name = f"{r.case_id} [repeat {r.repeat_index + 1}]" if r.case_id in repeated else r.case_id
    _set(case, "name", name)
    case.set("time", _secs(r.duration_ms))
    file, line = _source_file(r.source)
    _set(case, "file", file)
    _set(case, "line", line)
    trace = trace_ref(run, r.case_id, r.repeat_index, r.status)
    if trace is not None:  # the case's OpenTelemetry trace (harness.tracing)
        properties = ET.SubElement(case, "properties")
        for name, value in (("trace_id", trace.trace_id), ("trace_url", trace.url)):
            if value:
                prop = ET.SubElement(properties, "property")
                prop.set("name", name)
                _set(prop, "value", value)
    if r.status == "failed":
        reasons = r.failing_reasons or ["a check failed (no reason given)"]
        el = ET.SubElement(case, "failure")
        _set(el, "message", one_line(reasons[0], 500))
        el.set("type", "check")
        el.text = xml_safe("\n".join(reasons))
    elif r.status == "error":
        el = ET.SubElement(case, "error")
        _set(el, "type", r.error_kind or "error")
        _set(el, "message", one_line(r.error or r.error_kind or "infra error", 500))
        el.text = xml_safe(r.error or "")
    elif r.status == "not_run":
        el = ET.SubElement(case, "skipped")
        _set(el, "message", one_line(r.error or "not run", 500))
    if r.status != "passed" and r.transcript is not None and r.transcript.turns:
        out = ET.SubElement(case, "system-out")
        out.text = xml_safe(_transcript_text(r.transcript))
    return case


def write_junit(path: str | os.PathLike[str], run: RunInfo, results: Sequence[CaseResult],
                summary: RunSummary | None = None) -> Path:
    """Write the JUnit XML report to `path` (parents created) and return the path."""
    tree = build_junit(run, results, summary)
    ET.indent(tree, space="  ")
    text = ET.tostring(tree.getroot(), encoding="unicode")
    return write_text_atomic(path, '<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n")
