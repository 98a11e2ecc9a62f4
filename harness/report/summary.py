"""The run summary: every figure a report or a notifier shows about one run, computed once.

Console, JSON, JUnit, the HTML run page, the trend page's run table, Slack, Datadog, the
webhook and the pytest plugin all read the same `RunSummary`, so one run shows one pass
rate everywhere. The definitions (also in the README, "What the figures mean"):

- **cases**: results in the run; every repeat of a case counts once.
- **passed / failed**: results whose checks all passed / at least one check failed.
- **error**: results an infra problem stopped (timeout, 429, 5xx, connection, outage);
  **not run**: planned results the run never started (circuit breaker, a stop).
- **judged** = passed + failed: the results that say something about the agent.
- **pass rate** = passed ÷ judged (none when nothing was judged). Infra errors and cases
  that did not run are not failures of the agent: they are shown beside the rate.
- **infra error rate** = (error + not run) ÷ cases: the share of calls that did not reach
  a verdict, the same share the analysis compares with `analysis.infra_error_rate`.
- **turn latency p50 / p95**: percentiles (linear interpolation) of every turn's total
  reply time, greeting included, over the turns that measured one.
- **tokens**: input plus output tokens over every turn; **cost**: the sum of every turn's
  cost in USD (none when no turn had a price).
- **judge score**: the mean score of the judge checks that ran (skipped or failed-to-run
  judge calls left out); none when nothing was judged.
- **failing cases**: each case with a failed repeat, with the first failing reason;
  **erroring cases**: each case with an infra error and no failed repeat counted apart.

Pure Python on purpose: it runs once per run over up to 10 000 results and must not pull
pandas in. The run's verdict is the analysis' typed `Verdict` (`harness.verdict`), or one
derived from the counts when the analysis left none; it is read in one place (`_read_verdict`).
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..records import CaseResult, RunInfo
from ..percentiles import percentile
from ..tracing import TraceRef, trace_ref
from ..verdict import Evidence, Verdict, VerdictClass
from ._common import one_line

STATUSES = ("passed", "failed", "error", "not_run")


def rate_text(value: float | None, digits: int = 1) -> str:
    """A share shown as a percentage, the same on every surface: `80.0%`, or `—` for none."""
    return "—" if value is None else f"{value * 100:.{digits}f}%"


@dataclass(slots=True)
class Tally:
    """The figures of one topic (or of the whole run, `topic == "total"`)."""

    topic: str
    cases: int = 0
    passed: int = 0
    failed: int = 0
    error: int = 0
    not_run: int = 0
    duration_ms: float = 0.0
    turn_ms: list[float] = field(default_factory=list, repr=False)
    tokens: int = 0
    cost: float | None = None
    judge_sum: float = 0.0
    judge_n: int = 0
    # from the analysis verdict, when it compared this topic with a baseline
    compared: bool = False
    baseline_pass_rate: float | None = None
    delta: float | None = None
    p_value: float | None = None

    def add(self, result: CaseResult, judge: list[float]) -> None:
        self.cases += 1
        status = result.status if result.status in STATUSES else "error"
        setattr(self, status, getattr(self, status) + 1)
        self.duration_ms += result.duration_ms or 0.0
        for score in judge:
            self.judge_sum += score
            self.judge_n += 1
        if result.transcript is not None:
            for turn in result.transcript.turns:
                reply = turn.reply
                ms = reply.total_ms
                if ms is not None and math.isfinite(ms):
                    self.turn_ms.append(ms)
                self.tokens += (reply.tokens_in or 0) + (reply.tokens_out or 0)
                if reply.cost is not None:
                    self.cost = (self.cost or 0.0) + reply.cost

    @property
    def judged(self) -> int:
        """Results that say something about the agent: passed + failed."""
        return self.passed + self.failed

    @property
    def executed(self) -> int:
        """Results that ran: passed + failed + error."""
        return self.passed + self.failed + self.error

    @property
    def pass_rate(self) -> float | None:
        """passed ÷ (passed + failed); None when nothing was judged."""
        judged = self.judged
        return self.passed / judged if judged else None

    @property
    def infra_errors(self) -> int:
        return self.error + self.not_run

    @property
    def error_rate(self) -> float | None:
        """(error + not run) ÷ cases; None for no cases."""
        return self.infra_errors / self.cases if self.cases else None

    @property
    def p50_ms(self) -> float | None:
        return percentile(self.turn_ms, 50)

    @property
    def p95_ms(self) -> float | None:
        return percentile(self.turn_ms, 95)

    @property
    def judge_score(self) -> float | None:
        return self.judge_sum / self.judge_n if self.judge_n else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "passed": self.passed,
            "failed": self.failed,
            "error": self.error,
            "not_run": self.not_run,
            "judged": self.judged,
            "pass_rate": self.pass_rate,
            "infra_error_rate": self.error_rate,
            "turn_ms_p50": self.p50_ms,
            "turn_ms_p95": self.p95_ms,
            "turns": len(self.turn_ms),
            "tokens": self.tokens,
            "cost_usd": self.cost,
            "judge_score": self.judge_score,
            "duration_ms": self.duration_ms,
            "baseline_pass_rate": self.baseline_pass_rate,
            "delta": self.delta,
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
class FailingCase:
    case_id: str
    topic: str
    status: str  # failed or error
    reason: str
    trace: TraceRef | None = None  # its OpenTelemetry trace, when the run was traced


@dataclass(slots=True)
class StatusLine:
    """The one line that ends every report. `level` is passed, failed, error, incomplete or
    empty; reporters map it to a colour."""

    level: str
    text: str


@dataclass(slots=True)
class ObjectivesView:
    """What every surface shows beside the verdict when the suite has objectives: one line
    per missed objective, and the budget gate's reason when it failed the run. Never a
    verdict class (see `harness.objectives`)."""

    missed: list[str]
    gate: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"missed": self.missed, "gate": self.gate}


@dataclass(slots=True)
class RunSummary:
    """Every figure of one run (see the module docstring for their definitions)."""

    topics: list[Tally]
    total: Tally
    errors: list[ErrorGroup]
    slowest: list[SlowTurn]
    failing: dict[str, FailingCase] = field(default_factory=dict)  # case id → first failed repeat
    erroring: dict[str, FailingCase] = field(default_factory=dict)  # case id → first infra error
    verdict: Verdict = field(default_factory=lambda: Verdict(VerdictClass.OK))  # stored, or derived from counts
    verdict_stored: bool = False  # False: the analysis left none, `verdict` was derived from counts
    status: StatusLine | None = None  # with a run: what `status_line` says
    objectives: ObjectivesView | None = None  # with a run whose objectives missed: their lines

    # -- the run-level figures, named as every surface names them

    @property
    def cases(self) -> int:
        return self.total.cases

    @property
    def judged(self) -> int:
        return self.total.judged

    @property
    def executed(self) -> int:
        return self.total.executed

    @property
    def pass_rate(self) -> float | None:
        return self.total.pass_rate

    @property
    def error_rate(self) -> float | None:
        return self.total.error_rate

    @property
    def counts(self) -> dict[str, int]:
        t = self.total
        return {"passed": t.passed, "failed": t.failed, "error": t.error, "not_run": t.not_run}

    @property
    def tokens(self) -> int:
        return self.total.tokens

    @property
    def cost(self) -> float | None:
        return self.total.cost

    @property
    def judge_score(self) -> float | None:
        return self.total.judge_score

    def latency(self, q: float) -> float | None:
        return percentile(self.total.turn_ms, q)

    def topic(self, name: str) -> Tally | None:
        for t in self.topics:
            if t.topic == name:
                return t
        return None

    # -- the verdict (a typed `Verdict`: its class knows its colour, emoji and exit code)

    @property
    def verdict_class(self) -> VerdictClass:
        return self.verdict.cls

    @property
    def headline(self) -> str:
        return self.verdict.headline

    @property
    def evidence(self) -> list[Evidence]:
        return self.verdict.evidence

    @property
    def changed_cases(self) -> list[dict[str, Any]]:
        return self.verdict.changed_cases or []

    @property
    def baseline_run(self) -> str | None:
        return self.verdict.baseline_run

    def counts_text(self) -> str:
        """`4/5 judged passed (80.0%) · 1 failed · 1 infra error`: the counts in one phrase."""
        t = self.total
        parts = [f"{t.passed}/{t.judged} judged passed ({rate_text(t.pass_rate)})"]
        if t.failed:
            parts.append(f"{t.failed} failed")
        if t.error:
            parts.append(f"{t.error} infra error{'s' if t.error != 1 else ''}")
        if t.not_run:
            parts.append(f"{t.not_run} not run")
        return " · ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON: what the JSON report and the webhook carry."""
        t = self.total
        return {
            "pass_rate": t.pass_rate,
            "infra_error_rate": t.error_rate,
            "cases": t.cases,
            "judged": t.judged,
            "counts": self.counts,
            "turn_ms_p50": t.p50_ms,
            "turn_ms_p95": t.p95_ms,
            "tokens": t.tokens,
            "cost_usd": t.cost,
            "judge_score": t.judge_score,
            "totals": t.to_dict(),
            "topics": {x.topic: x.to_dict() for x in self.topics},
            "errors_by_kind": {g.kind: {"count": g.count, "example": g.example, "distinct": g.distinct} for g in self.errors},
            "slowest_turns": [
                {"case_id": s.case_id, "repeat_index": s.repeat_index, "topic": s.topic, "turn": s.turn, "ms": s.ms}
                for s in self.slowest
            ],
            "failing_cases": [{"case_id": c.case_id, "topic": c.topic, "reason": c.reason} for c in self.failing.values()],
            "erroring_cases": [{"case_id": c.case_id, "topic": c.topic, "reason": c.reason} for c in self.erroring.values()],
        }


# ---------------------------------------------------------------- the verdict, read in one place


def derive_verdict(run: RunInfo | None, counts: dict[str, int]) -> Verdict:
    """A plain verdict from counts alone (ok, failed, or infra), for a run the analysis did
    not classify; its headline words the counts as every surface does."""
    status, message = (run.status, run.message) if run is not None else ("complete", None)
    verdict = Verdict.from_counts(status, message, counts)
    verdict.headline = _counts_headline(counts)
    if verdict.cls is VerdictClass.INFRA and message:
        verdict.headline = f"{message} ({verdict.headline})"
    return verdict


def _counts_headline(counts: dict[str, int]) -> str:
    passed, failed = counts.get("passed", 0), counts.get("failed", 0)
    judged = passed + failed
    parts = [f"{passed}/{judged} judged passed ({rate_text(passed / judged if judged else None)})"]
    for key, word in (("failed", "failed"), ("error", "infra errors"), ("not_run", "not run")):
        if counts.get(key):
            parts.append(f"{counts[key]} {word}")
    return ", ".join(parts)


def _read_verdict(run: RunInfo | None, counts: dict[str, int]) -> tuple[Verdict, bool]:
    """The run's verdict (derived from `counts` when the analysis left none) and whether one
    was stored. Every other part of the publish layer reads the verdict through the summary."""
    derived = derive_verdict(run, counts)
    stored = Verdict.of_extra(run.extra) if run is not None else None
    if stored is None or (stored.cls is VerdictClass.UNKNOWN and stored.raw_class is None):
        return derived, False
    if not stored.headline:
        stored.headline = derived.headline
    return stored, True


def verdict_of(run: RunInfo, counts: dict[str, int] | None = None) -> Verdict:
    """The run's verdict; derived from its counts when analysis left none."""
    return _read_verdict(run, counts if counts is not None else dict(run.counts))[0]


def stored_verdict(run: RunInfo | None) -> Verdict | None:
    """The verdict the analysis stored on the run, or None."""
    return Verdict.of_extra(run.extra) if run is not None else None


def raw_verdict(run: RunInfo | None) -> Any:
    """The verdict exactly as stored on the run (the JSON report carries it unchanged)."""
    return run.extra.get("verdict") if run is not None and isinstance(run.extra, dict) else None


def verdict_class(run: RunInfo | None) -> str | None:
    """The stored verdict's class as shown, or None when the analysis left none."""
    v = stored_verdict(run)
    return v.name if v else None


# ---------------------------------------------------------------- computing it


def _judge_scores(r: CaseResult) -> list[float]:
    return [float(c.score) for c in r.checks if c.name == "judge" and not c.skipped and not c.error
            and c.score is not None]


def _reason(r: CaseResult) -> str:
    if r.status in ("error", "not_run"):
        return r.error or r.error_kind or "infra error"
    reasons = r.failing_reasons
    return reasons[0] if reasons else (r.error or "failed")


def summarize(results: Iterable[CaseResult], run: RunInfo | None = None, *, slowest: int = 3) -> RunSummary:
    """One pass over the results: figures per topic (sorted by name) and for the run, infra
    errors grouped by kind (largest first), the `slowest` slowest turns, the failing and
    erroring cases; with `run`, also the verdict and the status line."""
    topics: dict[str, Tally] = {}
    total = Tally(topic="total")
    lines: dict[str, Counter[str]] = defaultdict(Counter)
    failing: dict[str, FailingCase] = {}
    erroring: dict[str, FailingCase] = {}
    slow_heap: list[tuple[float, int, SlowTurn]] = []
    seq = 0
    for r in results:
        tally = topics.get(r.topic)
        if tally is None:
            tally = topics[r.topic] = Tally(topic=r.topic)
        judge = _judge_scores(r) if r.checks else []
        tally.add(r, judge)
        total.add(r, judge)
        if r.status == "failed":
            if r.case_id not in failing:
                failing[r.case_id] = FailingCase(r.case_id, r.topic, "failed", _reason(r),
                                                 trace_ref(run, r.case_id, r.repeat_index, r.status))
        elif r.status in ("error", "not_run"):
            if r.status == "error" and r.case_id not in erroring:
                erroring[r.case_id] = FailingCase(r.case_id, r.topic, "error", _reason(r),
                                                  trace_ref(run, r.case_id, r.repeat_index, r.status))
            if r.error or r.error_kind:
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
    counts = {"passed": total.passed, "failed": total.failed, "error": total.error, "not_run": total.not_run}
    if run is not None and not total.cases and run.counts:
        counts = {k: int(run.counts.get(k, 0)) for k in STATUSES}
    verdict, stored = _read_verdict(run, counts)
    for name, info in verdict.topics.items():
        # the analysis knows the baseline: take its per-topic comparison where it gave one
        t = topics.get(name)
        if t is None or not isinstance(info, dict):
            continue
        t.compared = True
        before = info.get("baseline_pass_rate")
        t.baseline_pass_rate = float(before) if isinstance(before, (int, float)) else None
        t.p_value = info.get("p_value") if isinstance(info.get("p_value"), (int, float)) else None
        delta = info.get("delta")
        if isinstance(delta, (int, float)):
            t.delta = float(delta)
        elif t.baseline_pass_rate is not None and t.pass_rate is not None:
            t.delta = t.pass_rate - t.baseline_pass_rate
    summary = RunSummary(topics=[topics[k] for k in sorted(topics)], total=total, errors=errors, slowest=slow,
                         failing=failing, erroring=erroring, verdict=verdict, verdict_stored=stored)
    if run is not None:
        summary.status = status_line(run, summary)
        summary.objectives = objectives_view(run)
    return summary


def objectives_view(run: RunInfo | None) -> ObjectivesView | None:
    """The run's missed objectives and budget gate, as the objectives word them; None when
    nothing was missed (or the suite has no objectives)."""
    extra = run.extra if run is not None and isinstance(run.extra, dict) else None
    if not extra or "objectives" not in extra:
        return None
    from ..objectives import report_view

    view = report_view(extra)
    return ObjectivesView(missed=view["missed"], gate=view["gate"]) if view is not None else None


def status_line(run: RunInfo, summary: RunSummary) -> StatusLine:
    """Say in one line what happened: an aborted run first (its cause matters most), then
    failures, then infra errors, then an incomplete run, else a pass. The pass rate follows."""
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
    if t.judged and (t.failed or t.error or t.not_run):
        line.text += f" — pass rate {rate_text(t.pass_rate)} of {t.judged} judged"
    cls = verdict_class(run)
    if cls:
        line.text += f" — verdict: {one_line(cls, 60)}"
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


def failing_ids(results: Sequence[CaseResult]) -> set[str]:
    """Cases with at least one failed repeat (infra errors are not failures)."""
    return {r.case_id for r in results if r.status == "failed"}


def group_by_topic(cases: Iterable[FailingCase]) -> dict[str, list[FailingCase]]:
    out: dict[str, list[FailingCase]] = defaultdict(list)
    for c in cases:
        out[c.topic].append(c)
    return dict(out)


__all__ = [
    "ErrorGroup",
    "FailingCase",
    "RunSummary",
    "SlowTurn",
    "StatusLine",
    "Tally",
    "derive_verdict",
    "failing_ids",
    "group_by_topic",
    "rate_text",
    "raw_verdict",
    "repeated_case_ids",
    "status_line",
    "stored_verdict",
    "summarize",
    "verdict_class",
    "verdict_of",
]
