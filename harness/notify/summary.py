"""What a notification says about a run: its verdict and the numbers behind it.

Slack and Datadog show the same facts, so they are computed once here from `RunInfo`,
the run's `CaseResult`s and the verdict the analysis stage leaves at
`run.extra["verdict"]`. When no verdict is there (analysis not run, or an older run read
back from the store), a plain one is derived from the counts, so a notification never
depends on the analysis stage having worked.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ..records import CaseResult, RunInfo
from ..stats import percentile
from ..verdict import Verdict, VerdictClass


@dataclass
class TopicStats:
    topic: str
    executed: int = 0  # results that ran (not_run excluded)
    passed: int = 0
    failed: int = 0
    errors: int = 0
    baseline_pass_rate: float | None = None
    delta: float | None = None
    p_value: float | None = None

    @property
    def pass_rate(self) -> float:
        return self.passed / self.executed if self.executed else 0.0

    @property
    def error_rate(self) -> float:
        return self.errors / self.executed if self.executed else 0.0


@dataclass
class FailingCase:
    case_id: str
    topic: str
    status: str  # failed or error
    reason: str
    trace: Any = None  # its OpenTelemetry trace (harness.tracing.TraceRef) when the run was traced


@dataclass
class RunSummary:
    """Everything a notifier needs, computed once."""

    verdict: Verdict
    counts: dict[str, int]
    topics: dict[str, TopicStats]
    failing: dict[str, FailingCase]  # case id → first failing repeat (status failed)
    erroring: dict[str, FailingCase]  # case id → first infra error
    turn_ms: list[float] = field(default_factory=list)
    tokens: int = 0
    cost: float = 0.0
    judge_score: float | None = None

    @property
    def verdict_class(self) -> VerdictClass:
        return self.verdict.cls

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def executed(self) -> int:
        return self.total - self.counts.get("not_run", 0)

    @property
    def pass_rate(self) -> float:
        return self.counts.get("passed", 0) / self.executed if self.executed else 0.0

    @property
    def error_rate(self) -> float:
        return self.counts.get("error", 0) / self.executed if self.executed else 0.0

    def latency(self, q: float) -> float | None:
        return percentile(self.turn_ms, q)


def count_statuses(results: list[CaseResult]) -> dict[str, int]:
    counts = {"passed": 0, "failed": 0, "error": 0, "not_run": 0}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    return counts


def derive_verdict(run: RunInfo, counts: dict[str, int]) -> Verdict:
    """A plain verdict from counts alone: ok, failed, or infra (aborted, or errors dominate)."""
    return Verdict.from_counts(run.status, run.message, counts)


def verdict_of(run: RunInfo, counts: dict[str, int] | None = None) -> Verdict:
    """The run's verdict; derived from the counts when analysis left none."""
    return Verdict.for_run(run.status, run.message, run.extra, counts if counts is not None else dict(run.counts))[0]


def _reason(r: CaseResult) -> str:
    if r.status == "error":
        return r.error or r.error_kind or "infra error"
    reasons = r.failing_reasons
    return reasons[0] if reasons else (r.error or "failed")


def _trace(run: RunInfo, r: CaseResult) -> Any:
    from ..tracing import trace_ref

    return trace_ref(run, r.case_id, r.repeat_index, r.status)


def summarize(run: RunInfo, results: list[CaseResult]) -> RunSummary:
    counts = count_statuses(results) if results else dict(run.counts)
    verdict = verdict_of(run, counts)
    topics: dict[str, TopicStats] = {}
    failing: dict[str, FailingCase] = {}
    erroring: dict[str, FailingCase] = {}
    turn_ms: list[float] = []
    tokens = 0
    cost = 0.0
    judge: list[float] = []
    for r in results:
        t = topics.setdefault(r.topic, TopicStats(r.topic))
        if r.status != "not_run":
            t.executed += 1
        if r.status == "passed":
            t.passed += 1
        elif r.status == "failed":
            t.failed += 1
            failing.setdefault(r.case_id, FailingCase(r.case_id, r.topic, "failed", _reason(r), _trace(run, r)))
        elif r.status == "error":
            t.errors += 1
            erroring.setdefault(r.case_id, FailingCase(r.case_id, r.topic, "error", _reason(r), _trace(run, r)))
        for c in r.checks:
            if c.name == "judge" and not c.skipped and not c.error:
                judge.append(float(c.score))
        if r.transcript is not None:
            for turn in r.transcript.turns:
                reply = turn.reply
                if reply.total_ms is not None and turn.kind != "greeting":
                    turn_ms.append(float(reply.total_ms))
                tokens += (reply.tokens_in or 0) + (reply.tokens_out or 0)
                cost += reply.cost or 0.0
    # the analysis stage knows the baseline; take its numbers where it gave them
    for name, info in verdict.topics.items():
        if not isinstance(info, dict):
            continue
        t = topics.setdefault(name, TopicStats(name))
        t.baseline_pass_rate = info.get("baseline_pass_rate")
        t.delta = info.get("delta")
        t.p_value = info.get("p_value")
        if t.delta is None and t.baseline_pass_rate is not None and t.executed:
            t.delta = t.pass_rate - float(t.baseline_pass_rate)
    return RunSummary(
        verdict=verdict,
        counts=counts,
        topics=dict(sorted(topics.items())),
        failing=failing,
        erroring=erroring,
        turn_ms=turn_ms,
        tokens=tokens,
        cost=cost,
        judge_score=sum(judge) / len(judge) if judge else None,
    )


def failing_ids(results: list[CaseResult]) -> set[str]:
    """Cases with at least one failed repeat (infra errors are not failures)."""
    return {r.case_id for r in results if r.status == "failed"}


def group_by_topic(cases: list[FailingCase]) -> dict[str, list[FailingCase]]:
    out: dict[str, list[FailingCase]] = defaultdict(list)
    for c in cases:
        out[c.topic].append(c)
    return dict(out)
