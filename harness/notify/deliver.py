"""Sending a run's notifications without ever losing them or failing the run.

The pipeline calls `deliver` after every result is in the store. The destinations are the
notifiers of the suite's `notify:` block (see `base`); for each one the order is the same:
decide whether this run is sent (its `when:` and the de-duplication rules of `dedup`),
build the payload from the run's `RunSummary`, redact it, send it with retries and
backoff; a destination still failing gets its (redacted) payload kept in
`pending_deliveries` and one warning line. Pending deliveries from earlier runs are re-sent
first, so the next run clears a backlog left by an outage; `resend_pending` does the same
on demand (`harness notify --pending`).

This module never raises for a delivery problem and never decides the exit code: it
returns warnings, and `notify.fail_on_error` is the caller's to apply.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ..errors import ConfigError, HarnessError
from ..records import CaseResult, RunInfo
from ..report.summary import RunSummary, derive_verdict, failing_ids, summarize
from ..spec import NotifySpec
from . import pending
from .base import Notifier, PositionOf, Publication, create_all, report_link
from .dedup import History, decide, load_history
from .errors import DeliveryError
from .redact import Redactor

log = logging.getLogger("harness.notify")

_T = TypeVar("_T")


def notifiers_of(spec: NotifySpec, position_of: PositionOf | None = None) -> list[Notifier]:
    """The suite's notifiers, each entry checked by its own model (ConfigError at its position)."""
    return create_all(spec.destinations, position_of)


def secrets_of(notifiers: list[Notifier]) -> list[str]:
    """Every credential of every destination, for scrubbing."""
    return [s for n in notifiers for s in n.secrets()]


def _run_sync(factory: Callable[[], Awaitable[_T]]) -> _T:
    """Run a coroutine from sync code, even when the caller already has an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def deliver(run: RunInfo, results: list[CaseResult], spec: NotifySpec, store: Any, *, retries: int = 3,
            backoff_s: float = 1.0, timeout_s: float = 30.0, resend: bool = True,
            summary: RunSummary | None = None) -> list[str]:
    """Send the suite's notifications for a stored run; returns warning lines."""
    return _run_sync(lambda: deliver_async(run, results, spec, store, retries=retries, backoff_s=backoff_s,
                                           timeout_s=timeout_s, resend=resend, summary=summary))


def resend_pending(store: Any, spec: NotifySpec, *, retries: int = 3, backoff_s: float = 1.0,
                   timeout_s: float = 30.0) -> tuple[int, int]:
    """Re-send every pending delivery; returns (sent, still pending)."""
    sent, still, _ = _run_sync(lambda: resend_pending_async(store, spec, retries=retries, backoff_s=backoff_s,
                                                            timeout_s=timeout_s))
    return sent, still


async def deliver_async(run: RunInfo, results: list[CaseResult], spec: NotifySpec, store: Any, *,
                        retries: int = 3, backoff_s: float = 1.0, timeout_s: float = 30.0,
                        resend: bool = True, summary: RunSummary | None = None) -> list[str]:
    try:
        notifiers = notifiers_of(spec)
    except HarnessError as exc:
        return [f"notify: {exc.line()}; nothing was sent"]
    if not notifiers:
        return []
    try:
        redactor = Redactor(spec.redact, secrets_of(notifiers))
    except ConfigError as exc:
        # without the suite's own masks we cannot promise what leaves the machine
        return [f"notify: {exc.line()}; nothing was sent"]
    warnings: list[str] = []
    if resend:
        _, still, resend_warnings = await _resend(store, notifiers, redactor, retries=retries, backoff_s=backoff_s,
                                                  timeout_s=timeout_s)
        warnings += resend_warnings
        if still:
            warnings.append(f"notify: {still} earlier deliveries are still pending (`harness notify --pending`)")
    summary = summary or summarize(results, run)
    pub = Publication(run=run, results=results, summary=summary, report_url=spec.report_url,
                      link=report_link(run, spec.report_url))
    if any(n.uses_history or "always" not in n.config.when for n in notifiers):
        try:
            pub.history = load_history(store, run, results)
        except HarnessError as exc:
            warnings.append(f"notify: could not read the suite's history, sending without it: {exc.line()}")
    failing = failing_ids(results)
    comparable = derive_verdict(run, summary.counts).cls
    for notifier in notifiers:
        decision = decide(notifier.config.when, summary.verdict_class, failing, pub.history or History(), comparable)
        if decision.send:
            payload = redactor.payload(notifier.payload(pub))
            failures = await notifier.send(payload, redactor, retries=retries, backoff_s=backoff_s,
                                           timeout_s=timeout_s)
            for exc in failures:
                warnings.append(_keep(store, run.run_id, exc, redactor))
            if not failures:
                log.info("%s: sent (%s)", notifier.name, decision.reason)
        else:
            log.info("%s: not sent: %s", notifier.name, decision.reason)
        for alert in notifier.alerts(pub):  # e.g. Slack's `when: [budget]`, whatever the run's own decision
            for exc in await notifier.send(redactor.payload(alert), redactor, retries=retries, backoff_s=backoff_s,
                                           timeout_s=timeout_s):
                warnings.append(_keep(store, run.run_id, exc, redactor))
    warnings += pub.notes
    return [redactor.scrub(w) for w in warnings]


def _keep(store: Any, run_id: str, exc: DeliveryError, redactor: Redactor) -> str:
    """Store what was not delivered; one warning line either way."""
    what = f"{exc.destination}: delivery failed after {exc.attempts} attempt{'s' if exc.attempts != 1 else ''}"
    what += f" ({exc.detail})"
    try:
        pending_id = pending.add(store, run_id, exc.destination, redactor.payload(exc.remaining or {}),
                                 exc.attempts, exc.detail)
    except HarnessError as store_exc:
        return redactor.scrub(f"{what}; could not keep it for a later re-send: {store_exc.line()}")
    return redactor.scrub(f"{what}; kept as pending delivery #{pending_id}, re-sent by the next run "
                          "or `harness notify --pending`")


async def resend_pending_async(store: Any, spec: NotifySpec, *, retries: int = 3, backoff_s: float = 1.0,
                               timeout_s: float = 30.0) -> tuple[int, int, list[str]]:
    """Re-send pending deliveries with the suite's current credentials.

    Returns (sent, still pending, warnings). A row whose destination is not configured any
    more stays pending and is counted as such.
    """
    notifiers = notifiers_of(spec)
    redactor = Redactor(spec.redact, secrets_of(notifiers))
    return await _resend(store, notifiers, redactor, retries=retries, backoff_s=backoff_s, timeout_s=timeout_s)


async def _resend(store: Any, notifiers: list[Notifier], redactor: Redactor, *, retries: int, backoff_s: float,
                  timeout_s: float) -> tuple[int, int, list[str]]:
    rows = pending.list_pending(store)
    sent, still, warnings = 0, 0, []
    for row in rows:
        owner = next((n for n in notifiers if n.owns(row.destination)), None)
        if owner is None:
            still += 1
            continue
        payload = redactor.payload(row.payload)
        failures = await owner.resend(payload, row.created_at, redactor, retries=retries, backoff_s=backoff_s,
                                      timeout_s=timeout_s)
        if failures:
            exc = failures[0]
            still += 1
            pending.failed_again(store, row.id, exc.attempts, exc.detail,
                                 redactor.payload(exc.remaining) if exc.remaining is not None else None)
            warnings.append(redactor.scrub(f"{row.destination}: pending delivery #{row.id} (run {row.run_id}) "
                                           f"failed again ({exc.detail})"))
            continue
        pending.done(store, row.id)
        sent += 1
    return sent, still, warnings
