"""Run arithmetic every reporter shows the same way: per-topic tallies, latency
percentiles, error groups, the slowest turns and the one-line verdict of a run.

Pure python on purpose: it runs for every report, on 10 000 results, and must not pull
pandas in at import time.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..records import CaseResult, RunInfo
from ..percentiles import percentile
from ..verdict import Verdict
from ._common import one_line

STATUSES = ("passed", "failed", "error", "not_run")


@dataclass(slots=True)
class Tally:
    """Counts and turn latencies for one topic (or the whole run)."""

    topic: str
    cases: int = 0
    passed: int = 0
    failed: int = 0
    error: int = 0
    not_run: int = 0
    duration_ms: float = 0.0
    turn_ms: list[float] = field(default_factory=list, repr=False)

    def add(self, result: CaseResult) -> None:
        self.cases += 1
        status = result.status if result.status in STATUSES else "error"
        setattr(self, status, getattr(self, status) + 1)
        self.duration_ms += result.duration_ms or 0.0
        if result.transcript is not None:
            for turn in result.transcript.turns:
                ms = turn.reply.total_ms
                if ms is not None and math.isfinite(ms):
                    self.turn_ms.append(ms)

    @property
    def pass_rate(self) -> float | None:
        """Passed over judged cases (passed + failed). Infra errors and cases that never ran
        say nothing about the agent's behaviour, so they are shown beside the rate, not in it."""
        judged = self.passed + self.failed
        return self.passed / judged if judged else None

    @property
    def p50_ms(self) -> float | None:
        return percentile(self.turn_ms, 50)

    @property
    def p95_ms(self) -> float | None:
        return percentile(self.turn_ms, 95)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "passed": self.passed,
            "failed": self.failed,
            "error": self.error,
            "not_run": self.not_run,
            "pass_rate": self.pass_rate,
            "turn_ms_p50": self.p50_ms,
            "turn_ms_p95": self.p95_ms,
            "turns": len(self.turn_ms),
            "duration_ms": self.duration_ms,
        }


@dataclass(slots=True)
class ErrorGroup:
    """Infra errors of one kind: how many, and the line seen most often."""

    kind: str
    count: int
    example: str
    distinct: int  # how many different error lines this kind had


@dataclass(slots=True)
class SlowTurn:
    case_id: str
    repeat_index: int
    topic: str
    turn: int  # Turn.index: 0 is the agent's greeting, caller turns count from 1
    ms: float


@dataclass(slots=True)
class RunSummary:
    topics: list[Tally]
    total: Tally
    errors: list[ErrorGroup]
    slowest: list[SlowTurn]

    def to_dict(self) -> dict[str, Any]:
        return {
            "totals": self.total.to_dict(),
            "topics": {t.topic: t.to_dict() for t in self.topics},
            "errors_by_kind": {g.kind: {"count": g.count, "example": g.example, "distinct": g.distinct} for g in self.errors},
            "slowest_turns": [
                {"case_id": s.case_id, "repeat_index": s.repeat_index, "topic": s.topic, "turn": s.turn, "ms": s.ms}
                for s in self.slowest
            ],
        }


def summarize(results: Iterable[CaseResult], slowest: int = 3) -> RunSummary:
    """One pass over the results: tallies per topic (sorted by name), the total, infra
    errors grouped by kind (largest first) and the `slowest` slowest turns."""
    topics: dict[str, Tally] = {}
    total = Tally(topic="total")
    lines: dict[str, Counter[str]] = defaultdict(Counter)
    slow_heap: list[tuple[float, int, SlowTurn]] = []
    seq = 0
    for r in results:
        tally = topics.get(r.topic)
        if tally is None:
            tally = topics[r.topic] = Tally(topic=r.topic)
        tally.add(r)
        total.add(r)
        if r.status in ("error", "not_run") and (r.error or r.error_kind):
            kind = r.error_kind or ("not_run" if r.status == "not_run" else "unknown")
            lines[kind][r.error or kind] += 1
        if r.transcript is not None and slowest > 0:
            for turn in r.transcript.turns:
                ms = turn.reply.total_ms
                if ms is None or not math.isfinite(ms):
                    continue
                seq += 1
                item = (ms, -seq, SlowTurn(r.case_id, r.repeat_index, r.topic, turn.index, ms))
                # a bounded heap keeps this linear in the number of turns
                if len(slow_heap) < slowest:
                    heapq.heappush(slow_heap, item)
                elif item[:2] > slow_heap[0][:2]:
                    heapq.heapreplace(slow_heap, item)
    errors = [
        ErrorGroup(kind=kind, count=sum(c.values()), example=c.most_common(1)[0][0], distinct=len(c))
        for kind, c in lines.items()
    ]
    errors.sort(key=lambda g: (-g.count, g.kind))
    slow = [s for _, _, s in sorted(slow_heap, key=lambda x: x[:2], reverse=True)]
    return RunSummary(topics=[topics[k] for k in sorted(topics)], total=total, errors=errors, slowest=slow)


@dataclass(slots=True)
class StatusLine:
    """The one line that ends every report. `level` is passed, failed, error, incomplete or
    empty; reporters map it to a colour."""

    level: str
    text: str


def _verdict_class(run: RunInfo) -> str | None:
    verdict = Verdict.of_extra(run.extra)
    return verdict.name if verdict else None


def status_line(run: RunInfo, summary: RunSummary) -> StatusLine:
    """Say in one line what happened: an aborted run first (its cause matters most), then
    failures, then infra errors, then an incomplete run, else a pass."""
    t = summary.total
    n = t.cases
    extras = []
    if t.error:
        extras.append(f"{t.error} error{'s' if t.error != 1 else ''}")
    if t.not_run:
        extras.append(f"{t.not_run} not run")
    tail = f" ({', '.join(extras)})" if extras else ""
    if run.status == "aborted":
        reason = run.message or (summary.errors[0].example if summary.errors else "run aborted")
        counts = f"{t.passed} passed, {t.failed} failed, {t.error} error, {t.not_run + max(run.planned - n, 0)} not run"
        line = StatusLine("error", f"ERROR: {one_line(reason)}; {counts}")
    elif t.failed:
        line = StatusLine("failed", f"FAILED: {t.failed} of {n} cases failed{tail}")
    elif t.error:
        kinds = ", ".join(f"{g.kind} ×{g.count}" for g in summary.errors[:3])
        line = StatusLine("error", f"ERROR: {t.error} of {n} cases hit infra errors" + (f" ({kinds})" if kinds else ""))
    elif run.status == "incomplete" or t.not_run or (run.planned and n < run.planned):
        missing = t.not_run + max(run.planned - n, 0)
        why = f": {one_line(run.message)}" if run.message else ""
        line = StatusLine("incomplete", f"INCOMPLETE: {missing} of {max(run.planned, n)} cases did not run{why}")
    elif n == 0:
        line = StatusLine("empty", "NO CASES: nothing was run")
    else:
        line = StatusLine("passed", f"PASSED: {n} case{'s' if n != 1 else ''}")
    verdict = _verdict_class(run)
    if verdict:
        line.text += f" — verdict: {one_line(verdict, 60)}"
    return line


def repeated_case_ids(results: Iterable[CaseResult]) -> set[str]:
    """Case ids that ran more than once (repeats), so names can carry `[repeat N]`."""
    seen: Counter[str] = Counter()
    out: set[str] = set()
    for r in results:
        seen[r.case_id] += 1
        if seen[r.case_id] > 1 or r.repeat_index > 0:
            out.add(r.case_id)
    return out

