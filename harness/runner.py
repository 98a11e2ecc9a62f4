"""Play every planned call against a target, check it, and hand each result on as it completes.

The runner owns everything about *how* calls are made: bounded concurrency, a
requests-per-minute budget, per-request and per-call timeouts, retries with exponential
backoff and jitter that honour `Retry-After`, and a circuit breaker that stops the run
early when the target is down. Targets only answer; checks only judge.

Every planned item ends as exactly one `CaseResult` (passed, failed, error or not_run),
delivered to `on_result` the moment it is known, so the store has it before anything is
reported.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, TypeVar

from .calls import play_call  # the caller's side of a call: scripted or goal-driven
from .errors import InfraError, TargetUnreachable
from .httpclient import RetryPolicy
from .records import CaseResult, CheckResult
from .spec import Limits
from .targets.base import Target
from .workload import CompiledCase, WorkItem, compile_case, plan_items  # noqa: F401  (the plan, re-exported)
from .workload import with_service_versions
from . import tracing

T = TypeVar("T")

# Failures that mean "the target is not there" (`InfraError.down`): connection errors and
# timeouts, and a gateway's 5xx that names its upstream's failure. A 429 or a plain 5xx means
# it answered: those are retried and, if they persist, end their case as an infra error
# without stopping the run. A misconfiguration (a wrong key, an unknown model alias) opens
# the breaker at once: every later call would be refused the same way.
BREAKER_KINDS = frozenset({"connection", "timeout"})


# What is played (CompiledCase, WorkItem, compile_case, plan_items) is worked out in
# `harness.workload`, under both this module and the call driver.


# --- guards ---------------------------------------------------------------------------


class RateLimiter:
    """Spaces requests evenly to stay under a requests-per-minute budget."""

    def __init__(self, rpm: float | None):
        self.interval = 60.0 / rpm if rpm else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if not self.interval:
            return
        async with self._lock:
            now = time.monotonic()
            wait = self._next - now
            self._next = max(now, self._next) + self.interval
        if wait > 0:
            await asyncio.sleep(wait)


class CircuitBreaker:
    """Opens after `threshold` consecutive infra failures; then every request fails fast."""

    def __init__(self, threshold: int):
        self.threshold = threshold
        self.consecutive = 0
        self.open_reason: str | None = None
        self.misconfigured: str | None = None  # the refusal's line when a mistake of ours opened it

    @property
    def is_open(self) -> bool:
        return self.open_reason is not None

    def success(self) -> None:
        self.consecutive = 0

    def failure(self, err: InfraError) -> None:
        if err.misconfigured:
            if not self.is_open:
                self.misconfigured = err.line()
                self.open_reason = f"configuration: {err.line()}"
            return
        if not err.down:
            return
        self.consecutive += 1
        if self.consecutive >= self.threshold and not self.is_open:
            self.open_reason = (
                f"target unreachable: {self.consecutive} consecutive failures, last: {err.line()}"
            )

    def check(self) -> None:
        if self.open_reason is not None:
            raise TargetUnreachable(self.open_reason)


@dataclass
class RequestStats:
    requests: int = 0
    retries: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class Guard:
    """Applies limits, retries and the breaker to every request a target makes."""

    def __init__(self, limits: Limits, *, rng: random.Random | None = None):
        self.limits = limits
        self.limiter = RateLimiter(limits.rpm)
        self.breaker = CircuitBreaker(limits.breaker_threshold)
        self.stats = RequestStats()
        self.policy = RetryPolicy(limits.retries, limits.backoff_s, limits.backoff_max_s, rng=rng)

    def backoff(self, attempt: int, err: InfraError) -> float:
        """Exponential backoff with jitter; a server's Retry-After wins when longer."""
        return self.policy.delay(attempt, err)

    async def request(self, fn: Callable[[], Awaitable[T]], *, what: str = "request") -> T:
        attempt = 0
        while True:
            self.breaker.check()
            await self.limiter.acquire()
            self.stats.requests += 1
            try:
                async with asyncio.timeout(self.limits.timeout_s):
                    result = await fn()
            except TimeoutError:
                err = InfraError("timeout", f"{what} took longer than {self.limits.timeout_s:g}s")
            except InfraError as e:
                err = e
            else:
                self.breaker.success()
                return result
            self.stats.by_kind[err.kind] = self.stats.by_kind.get(err.kind, 0) + 1
            self.breaker.failure(err)
            if not self.policy.retries_after(attempt, err) or self.breaker.is_open:
                if not err.misconfigured:  # its own line says what to fix
                    self.breaker.check()
                raise err
            await asyncio.sleep(self.backoff(attempt, err))
            attempt += 1
            self.stats.retries += 1


# --- one call ------------------------------------------------------------------------


# One call (scripted or goal-driven) is played by `harness.calls.play_call`, imported above.


def _status(checks: list[CheckResult]) -> str:
    return "passed" if all(c.passed or c.skipped for c in checks) else "failed"


JUDGE_ERROR = "judge"  # error_kind of a case whose judged check could not run (the judge, not the agent)


def _judge_error(cc: CompiledCase, checks: list[CheckResult]) -> str | None:
    """For a case that did not pass: the judge's error line when the only checks that did not
    pass are judged checks that could not run (the judge was down or answered nonsense). Such a
    case is an infra error, never a failure of the agent. None when anything else failed."""
    open_checks = [c for c in checks if not c.passed and not c.skipped]
    if not open_checks or not all(c.error for c in open_checks):
        return None
    judged = {cc_.display_name for cc_ in cc.call_checks if cc_.info.needs_llm}
    judged.update(cc_.display_name for turn in cc.turn_checks for cc_ in turn if cc_.info.needs_llm)
    if not all(c.name in judged for c in open_checks):
        return None
    reason = open_checks[0].reason
    return f"judge: {reason.removeprefix('check could not run: ')}"


# --- the run -----------------------------------------------------------------------------


@dataclass
class RunStats:
    """How the run went at the request level (results themselves go to `on_result`)."""

    aborted: str | None = None  # the breaker's one line when the run stopped early
    misconfigured: str | None = None  # set when a mistake of ours (key, model alias) stopped it
    requests: RequestStats = field(default_factory=RequestStats)


class Runner:
    def __init__(
        self,
        target: Target,
        *,
        limits: Limits | None = None,
        on_result: Callable[[CaseResult], Any] | None = None,
        seed: int | None = None,
        extras: dict[str, Any] | None = None,
    ):
        self.target = target
        self.limits = limits or target.limits
        self.guard = Guard(self.limits, rng=random.Random(seed))
        self.on_result = on_result or (lambda r: None)
        self.extras = extras or {}  # services checks may use (the judge), by name
        self.judge_errors = 0  # cases whose judged check could not run (status "error", kind "judge")

    async def _one(self, item: WorkItem) -> CaseResult:
        started = time.time()
        t0 = time.perf_counter()
        timeout = item.compiled.case.timeout_s or self.limits.case_timeout_s
        try:
            async with asyncio.timeout(timeout):
                transcript, checks = await play_call(self.target, item, self.guard, self.extras)
        except Exception as e:  # a target bug must not crash the run or lose the other results
            error, kind = _error_line(e, timeout)
            return _result(item, started, status="error", error=error, error_kind=kind,
                           duration_ms=(time.perf_counter() - t0) * 1000)
        status = _status(checks)
        versions = [t.reply.service_version for t in transcript.turns if t.reply.service_version]
        inputs = with_service_versions(item.compiled.inputs, versions)
        if status == "failed" and (judge_error := _judge_error(item.compiled, checks)) is not None:
            self.judge_errors += 1
            return _result(item, started, status="error", error=judge_error, error_kind=JUDGE_ERROR, checks=checks,
                           transcript=transcript, duration_ms=(time.perf_counter() - t0) * 1000, inputs=inputs)
        return _result(item, started, status=status, checks=checks, transcript=transcript,
                       duration_ms=(time.perf_counter() - t0) * 1000, inputs=inputs)

    async def run(self, items: list[WorkItem]) -> RunStats:
        stats = RunStats(requests=self.guard.stats)
        queue = iter(items)
        one = tracing.wrap_case(self._one)  # self._one itself when tracing is off

        async def worker() -> None:
            for item in queue:
                if self.guard.breaker.is_open:
                    self.on_result(self._not_run(item))
                    continue
                self.on_result(await one(item))

        workers = [asyncio.create_task(worker()) for _ in range(min(self.limits.concurrency, max(1, len(items))))]
        try:
            await asyncio.gather(*workers)
        finally:
            for w in workers:
                w.cancel()
        stats.aborted = self.guard.breaker.open_reason
        stats.misconfigured = self.guard.breaker.misconfigured
        return stats

    def _not_run(self, item: WorkItem) -> CaseResult:
        return _result(item, time.time(), status="not_run", error=f"not run: {self.guard.breaker.open_reason}",
                       error_kind="unreachable")


def _result(item: WorkItem, started: float, **outcome: Any) -> CaseResult:
    """A planned item's result: the case's identity (worked out once by compile_case) and its
    outcome; its input fingerprint is the plan's unless the call learnt more (`inputs`)."""
    cc = item.compiled
    outcome.setdefault("inputs", cc.inputs)
    return CaseResult(case_id=cc.case.id, topic=cc.topic, tags=list(cc.tags), repeat_index=item.repeat_index,
                      started=started, source=cc.source, **outcome)


def _error_line(e: Exception, timeout: float) -> tuple[str, str]:
    """One line and an error kind for a call that ended without a transcript."""
    if isinstance(e, TargetUnreachable):
        return e.line(), "unreachable"
    if isinstance(e, InfraError):
        return e.line(), e.kind
    if isinstance(e, TimeoutError):
        return f"timeout: the call took longer than {timeout:g}s", "timeout"
    return f"target failed: {type(e).__name__}: {e}", "internal"
