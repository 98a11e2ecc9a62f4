"""A generic JSON webhook: the run's summary POSTed to any URL, signed when a secret is set.

    notify:
      webhook:
        url: "${HOOK_URL}"
        secret: "${HOOK_SECRET}"          # optional: sign every request
        headers: {Authorization: "Bearer ${HOOK_TOKEN}"}
        when: [regression, drift, infra, judge_drift, change]   # or [always]

The body is one JSON document (`schema: harness.run.v1`): the run, its verdict, the
`RunSummary` (the same figures as every other surface) and, when the suite has history,
which failing cases are new, still failing or recovered. Every string in it is masked like
a Slack message (phone numbers, e-mail addresses, `notify.redact` patterns, secrets).

Signature (with `secret:`): `X-Harness-Timestamp` holds the Unix time in seconds and
`X-Harness-Signature` is `sha256=` + the hex HMAC-SHA256, keyed by the secret, of the bytes
`<timestamp>.<body>`. The timestamp is inside what is signed so a captured request cannot
be replayed later under a fresh timestamp; receivers should compare in constant time and
refuse timestamps more than five minutes old. `X-Harness-Delivery` is the same on every
attempt and re-send of one payload, so a receiver can drop duplicates.

The URL, the secret and header values are credentials: none of them reaches a payload, a
pending row, a log line or a warning (errors name the status, never the URL). 429 and 5xx
answers and connection errors are retried with backoff (honouring Retry-After up to 30 s);
any other answer outside 2xx fails at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

from pydantic import Field, SecretStr, field_validator

from ..report.summary import rate_text
from .base import Notifier, NotifierConfig, Publication, register
from .errors import DeliveryError
from .redact import Redactor

SCHEMA = "harness.run.v1"
SIGNATURE_HEADER = "X-Harness-Signature"
TIMESTAMP_HEADER = "X-Harness-Timestamp"
DELIVERY_HEADER = "X-Harness-Delivery"
MAX_RETRY_AFTER_S = 30.0
MAX_CASES = 200  # failing / erroring cases listed in one body; the counts say how many there were
_RESERVED = {h.lower() for h in (SIGNATURE_HEADER, TIMESTAMP_HEADER, DELIVERY_HEADER, "content-type", "content-length",
                                 "host")}


class WebhookSpec(NotifierConfig):
    """`notify.webhook`: where to POST the run summary, and how to sign it."""

    url: SecretStr = Field(description="http(s) URL the summary is POSTed to (a credential: masked everywhere)")
    secret: SecretStr | None = Field(default=None, description="HMAC-SHA256 key; signs every request when set")
    headers: dict[str, SecretStr] = Field(default_factory=dict, description="extra request headers (values masked)")

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: SecretStr) -> SecretStr:
        text = v.get_secret_value()
        if not text.startswith(("http://", "https://")) or len(text.split("://", 1)[1].split("/", 1)[0]) == 0:
            raise ValueError("expected an http:// or https:// URL")
        return v

    @field_validator("headers")
    @classmethod
    def _own_headers(cls, v: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name in v:
            if name.lower() in _RESERVED:
                raise ValueError(f"header {name!r} is set by the harness itself")
        return v


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Harness-Signature` value: `sha256=` + hex HMAC-SHA256 of `<timestamp>.<body>`."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, now: float | None = None,
           tolerance_s: float = 300.0) -> bool:
    """What a receiver does: recompute the signature, compare in constant time, check the age."""
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance_s and hmac.compare_digest(sign(secret, timestamp, body), signature)


def build_body(pub: Publication) -> dict[str, Any]:
    """The JSON document sent for a run."""
    run, summary = pub.run, pub.summary
    history = pub.history
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "delivery_id": uuid.uuid4().hex,
        "run": {
            "run_id": run.run_id, "suite": run.suite, "status": run.status, "started": run.started,
            "ended": run.ended, "model": run.model, "target": run.target.get("kind") if run.target else None,
            "git_sha": run.git_sha, "group": run.group, "report_url": pub.link,
        },
        "verdict": {
            "class": summary.verdict_class, "headline": summary.headline, "stored": summary.verdict_stored,
            "baseline_run": summary.baseline_run, "evidence": summary.evidence,
            "changed_cases": summary.changed_cases,
        },
        "pass_rate_text": rate_text(summary.pass_rate),
        "summary": summary.to_dict(),
    }
    for key in ("failing_cases", "erroring_cases"):
        cases = doc["summary"][key]
        doc["summary"][f"{key}_total"] = len(cases)
        del cases[MAX_CASES:]  # a receiver should not need to take megabytes; the report has them all
    if history is not None:
        doc["history"] = {
            "previous_run": history.previous.run_id if history.previous else None,
            "new_failures": history.new,
            "still_failing": {c: history.streaks[c].label() for c in history.still},
            "recovered": history.recovered,
        }
    return doc


@register
class WebhookNotifier(Notifier):
    """`notify.webhook`: the run summary as JSON to any HTTP endpoint, HMAC-signed."""

    name = "webhook"
    config_model = WebhookSpec
    description = "any HTTP endpoint: the run summary as JSON, signed with HMAC-SHA256 when a secret is set"
    uses_history = True

    config: WebhookSpec

    @classmethod
    def is_off(cls, raw: dict[str, Any]) -> bool:
        return "url" in raw and not raw.get("url")

    def payload(self, pub: Publication) -> dict[str, Any]:
        return build_body(pub)

    async def send(self, payload: dict[str, Any], redactor: Redactor, *, retries: int, backoff_s: float,
                   timeout_s: float) -> list[DeliveryError]:
        # aiohttp, not httpx: httpx logs every request's URL at INFO, and this URL is a secret
        import aiohttp

        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")
        delivery = str(payload.get("delivery_id") or uuid.uuid4().hex)
        attempt = 0
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as session:
            while True:
                retry_after, status = None, None
                try:
                    async with session.post(self.config.url.get_secret_value(), data=body,
                                            headers=self._headers(body, delivery), allow_redirects=False) as resp:
                        status = resp.status
                        if 200 <= status < 300:
                            return []
                        detail = f"webhook answered HTTP {status}"
                        retryable = status == 429 or status >= 500
                        retry_after = _retry_after(resp.headers.get("Retry-After"))
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                    detail, retryable = _describe(exc), True
                if not retryable or attempt >= retries:
                    return [DeliveryError("webhook", redactor.scrub(detail), remaining=payload,
                                          attempts=attempt + 1, status=status)]
                await asyncio.sleep(retry_after if retry_after is not None else min(backoff_s * 2**attempt, 30.0))
                attempt += 1

    def _headers(self, body: bytes, delivery: str) -> dict[str, str]:
        headers = {name: value.get_secret_value() for name, value in self.config.headers.items()}
        headers.update({"Content-Type": "application/json", "User-Agent": "harness-webhook/1",
                        DELIVERY_HEADER: delivery})
        if self.config.secret is not None:
            stamp = str(int(time.time()))  # signed afresh on every attempt: a retry is not a replay
            headers[TIMESTAMP_HEADER] = stamp
            headers[SIGNATURE_HEADER] = sign(self.config.secret.get_secret_value(), stamp, body)
        return headers


def _retry_after(value: str | None) -> float | None:
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_S) if value is not None else None
    except ValueError:
        return None


def _describe(exc: BaseException) -> str:
    """One line for a transport error: its type and first line (callers scrub the URL)."""
    if isinstance(exc, asyncio.TimeoutError):
        return "no answer within the timeout"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__
