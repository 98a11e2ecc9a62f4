"""Sending a run's notifications without ever losing them or failing the run.

The pipeline calls `deliver` after every result is in the store. For each destination
the order is: build the payload, redact it, send it with retries and backoff; a
destination still failing gets its (redacted) payload kept in `pending_deliveries` and one
warning line. Pending deliveries from earlier runs are re-sent first, so the next run
clears a backlog left by an outage; `resend_pending` does the same on demand
(`harness notify --pending`).

This module never raises for a delivery problem and never decides the exit code: it
returns warnings, and `notify.fail_on_error` is the caller's to apply.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ..errors import ConfigError, HarnessError
from ..records import CaseResult, RunInfo
from ..spec import NotifySpec
from . import datadog, pending, slack
from .dedup import History, decide, load_history
from .errors import DeliveryError
from .redact import Redactor
from .summary import derive_verdict, failing_ids, summarize

log = logging.getLogger("harness.notify")

_T = TypeVar("_T")


def secrets_of(spec: NotifySpec) -> list[str]:
    """Every credential in the notify block, for scrubbing."""
    out = []
    for owner, names in ((spec.slack, ("webhook_url", "token")), (spec.datadog, ("api_key", "app_key"))):
        for name in names:
            value = getattr(owner, name, None) if owner is not None else None
            if value is not None:
                out.append(value.get_secret_value())
    return out


def _run_sync(factory: Callable[[], Awaitable[_T]]) -> _T:
    """Run a coroutine from sync code, even when the caller already has an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def deliver(run: RunInfo, results: list[CaseResult], spec: NotifySpec, store: Any, *, retries: int = 3,
            backoff_s: float = 1.0, timeout_s: float = 30.0, resend: bool = True) -> list[str]:
    """Send Slack and Datadog notifications for a stored run; returns warning lines."""
    return _run_sync(lambda: deliver_async(run, results, spec, store, retries=retries, backoff_s=backoff_s,
                                           timeout_s=timeout_s, resend=resend))


def resend_pending(store: Any, spec: NotifySpec, *, retries: int = 3, backoff_s: float = 1.0,
                   timeout_s: float = 30.0) -> tuple[int, int]:
    """Re-send every pending delivery; returns (sent, still pending)."""
    sent, still, _ = _run_sync(lambda: resend_pending_async(store, spec, retries=retries, backoff_s=backoff_s,
                                                            timeout_s=timeout_s))
    return sent, still


async def deliver_async(run: RunInfo, results: list[CaseResult], spec: NotifySpec, store: Any, *,
                        retries: int = 3, backoff_s: float = 1.0, timeout_s: float = 30.0,
                        resend: bool = True) -> list[str]:
    if spec.slack is None and spec.datadog is None:
        return []
    try:
        redactor = Redactor(spec.redact, secrets_of(spec))
    except ConfigError as exc:
        # without the suite's own masks we cannot promise what leaves the machine
        return [f"notify: {exc.line()}; nothing was sent"]
    warnings: list[str] = []
    if resend:
        _, still, resend_warnings = await resend_pending_async(store, spec, retries=retries, backoff_s=backoff_s,
                                                               timeout_s=timeout_s, redactor=redactor)
        warnings += resend_warnings
        if still:
            warnings.append(f"notify: {still} earlier deliveries are still pending (`harness notify --pending`)")
    summary = summarize(run, results)
    link = slack.report_link(run, spec.report_url)
    if spec.slack is not None:
        try:
            history = load_history(store, run, results)
        except HarnessError as exc:
            warnings.append(f"slack: could not read the suite's history, sending without it: {exc.line()}")
            history = None
        comparable = derive_verdict(run, summary.counts)["class"]
        decision = decide(spec.slack.when, summary.verdict_class, failing_ids(results), history or History(),
                          comparable)
        if decision.send:
            payload = slack.build_payload(run, summary, history, spec.slack, spec.report_url, redactor)
            try:
                await slack.send(payload, spec.slack, redactor, retries=retries, backoff_s=backoff_s,
                                 timeout_s=timeout_s)
                log.info("slack: sent (%s)", decision.reason)
            except DeliveryError as exc:
                warnings.append(_keep(store, run.run_id, exc, redactor))
        else:
            log.info("slack: not sent: %s", decision.reason)
        if "budget" in spec.slack.when:  # a fast burn or a policy threshold crossed, and its recovery
            from ..objectives.alerts import budget_message

            message = budget_message(run, history.previous if history else None, spec.slack.mention)
            if message is not None:
                threaded = bool(spec.slack.token and spec.slack.channel)
                payload = redactor.payload({"mode": "bot" if threaded else "webhook", "messages": [message],
                                            "thread": [], "thread_ts": None, "channel": None})
                try:
                    await slack.send(payload, spec.slack, redactor, retries=retries, backoff_s=backoff_s,
                                     timeout_s=timeout_s)
                except DeliveryError as exc:
                    warnings.append(_keep(store, run.run_id, exc, redactor))
    if spec.datadog is not None:
        payload = datadog.build_payload(run, results, summary, spec.datadog, link, redactor)
        if spec.datadog.llm_observability and spec.datadog.app_key is None:
            payload.pop("experiment", None)
            warnings.append("datadog llm observability: skipped, it needs notify.datadog.app_key")
        if "slos" in payload and spec.datadog.app_key is None:
            payload.pop("slos")
            warnings.append("datadog slos: skipped, they need notify.datadog.app_key")
        for exc in await datadog.send(payload, spec.datadog, redactor, retries=retries, backoff_s=backoff_s,
                                      timeout_s=timeout_s):
            warnings.append(_keep(store, run.run_id, exc, redactor))
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
                               timeout_s: float = 30.0,
                               redactor: Redactor | None = None) -> tuple[int, int, list[str]]:
    """Re-send pending deliveries with the suite's current credentials.

    Returns (sent, still pending, warnings). A row whose destination is not configured any
    more stays pending and is counted as such.
    """
    redactor = redactor or Redactor(spec.redact, secrets_of(spec))
    rows = pending.list_pending(store)
    sent, still, warnings = 0, 0, []
    for row in rows:
        payload = redactor.payload(row.payload)
        try:
            if row.destination == "slack":
                if spec.slack is None:
                    still += 1
                    continue
                await slack.send(_mark_delayed(payload, row.created_at), spec.slack, redactor, retries=retries,
                                 backoff_s=backoff_s, timeout_s=timeout_s)
            elif row.destination.startswith("datadog"):
                if spec.datadog is None:
                    still += 1
                    continue
                failures = await datadog.send(payload, spec.datadog, redactor, retries=retries,
                                              backoff_s=backoff_s, timeout_s=timeout_s)
                if failures:
                    raise failures[0]
            else:
                still += 1
                continue
        except DeliveryError as exc:
            still += 1
            pending.failed_again(store, row.id, exc.attempts, exc.detail,
                                 redactor.payload(exc.remaining) if exc.remaining is not None else None)
            warnings.append(redactor.scrub(f"{row.destination}: pending delivery #{row.id} (run {row.run_id}) "
                                           f"failed again ({exc.detail})"))
            continue
        pending.done(store, row.id)
        sent += 1
    return sent, still, warnings


def _mark_delayed(payload: dict[str, Any], created_at: float) -> dict[str, Any]:
    """Say on a re-sent summary that it is late, so nobody reads it as today's news."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(created_at))
    messages = [dict(m) for m in payload.get("messages") or []]
    blocks = messages[0].get("blocks") or [] if messages else []
    if messages and len(blocks) < slack.MAX_BLOCKS and "Delayed delivery" not in str(blocks[-1:]):
        note = slack.context([f":hourglass: Delayed delivery: this message could not be sent at {when}."])
        messages[0]["blocks"] = list(messages[0]["blocks"]) + [note]
    return dict(payload, messages=messages)
