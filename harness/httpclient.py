"""The one HTTP client every target uses, and the one place HTTP failures become `InfraError`s.

Targets talk to model gateways and webhooks at high concurrency. httpx's own connection
pool costs several milliseconds of CPU per request at 50 concurrent calls, which the
harness would then report as the agent's latency; the aiohttp transport (httpx-aiohttp)
keeps httpx's API at a fraction of that cost. Each target makes one client and reuses it
for all its calls.

All mapping from transport exceptions and HTTP statuses to error kinds lives here, so the
openai and http targets classify a 429, a 503 or a dropped connection the same way, and
the runner's retries and circuit breaker see the same kinds whatever the target.
"""

from __future__ import annotations

import asyncio
import email.utils
import errno
import json
import time
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import httpx
from httpx_aiohttp import HttpxAiohttpClient

from .errors import InfraError

# Statuses that mean "the server is there but could not serve this now": worth a retry.
SERVER_ERROR_STATUSES = frozenset({500, 502, 503, 504, 520, 521, 522, 524, 529})
EXCERPT_CHARS = 200
# aiohttp >= 3.10 tells a connect timeout apart from a read timeout.
_CONNECT_TIMEOUTS: tuple[type[BaseException], ...] = tuple(
    t for t in (getattr(aiohttp, "ConnectionTimeoutError", None),) if t is not None
)


def make_client(
    *,
    timeout: float,
    max_connections: int,
    headers: Mapping[str, str] | httpx.Headers | None = None,
    base_url: str | None = None,
) -> httpx.AsyncClient:
    """An httpx client on the aiohttp transport, sized for `max_connections` concurrent calls.

    The aiohttp session inside is created on the first request, in the running event loop,
    so the client can be built before a loop exists; close it with `await client.aclose()`.
    Connecting gets its own, shorter budget so a dead host fails fast.
    """
    return HttpxAiohttpClient(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        headers=headers,
        base_url=base_url or "",
        follow_redirects=False,
    )


def safe_endpoint(url: str | httpx.URL) -> str:
    """The URL without user info, query or fragment: fit for an error line or a report.

    Webhook URLs and gateways sometimes carry tokens in the query string or as user info.
    """
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def excerpt(body: bytes | str, *, redact: Iterable[str] = ()) -> str:
    """A short one-line excerpt of a response body, with any known secret blanked out."""
    text = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else body
    text = " ".join(text.split())
    for secret in redact:
        if secret:
            text = text.replace(secret, "***")
    return text[:EXCERPT_CHARS] + ("…" if len(text) > EXCERPT_CHARS else "")


def status_error(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    endpoint: str,
    *,
    redact: Iterable[str] = (),
    hint_404: str | None = None,
) -> InfraError | None:
    """The error a non-2xx response stands for, or None when the status is a success.

    - 429 → rate_limited, retried after `Retry-After` (seconds or an HTTP date).
    - 500/502/503/504 (and the CDN/overload 52x, 529) → server_error, retried; a 503's
      `Retry-After` is honoured too.
    - 408 → timeout (the server gave up waiting on us; worth a retry).
    - 401/403 → protocol, not retried: the key was rejected. The body is left out because
      some providers echo part of the key back.
    - any other status → protocol, not retried, quoting the status and a body excerpt.
    """
    if 200 <= status < 300:
        return None
    reason = _reason(status)
    retry_after = parse_retry_after(headers.get("retry-after"))
    if status == 429:
        wait = f"; retry after {retry_after:g}s" if retry_after is not None else ""
        return InfraError("rate_limited", f"HTTP 429 Too Many Requests{wait}", endpoint=endpoint,
                          retry_after=retry_after, status=status)
    if status in SERVER_ERROR_STATUSES:
        body_txt = excerpt(body, redact=redact)
        more = f": {body_txt}" if body_txt else ""
        return InfraError("server_error", f"HTTP {status} {reason}{more}", endpoint=endpoint,
                          retry_after=retry_after, status=status)
    if status == 408:
        return InfraError("timeout", "HTTP 408 Request Timeout", endpoint=endpoint, status=status)
    if status in (401, 403):
        return InfraError("protocol", f"HTTP {status} {reason}: the API key or credentials were rejected",
                          endpoint=endpoint, retryable=False, status=status)
    body_txt = excerpt(body, redact=redact)
    more = f": {body_txt}" if body_txt else ""
    hint = f" ({hint_404})" if status == 404 and hint_404 else ""
    return InfraError("protocol", f"HTTP {status} {reason}{more}{hint}", endpoint=endpoint,
                      retryable=False, status=status)


def transport_error(exc: BaseException, endpoint: str, *, during_body: bool = False) -> InfraError:
    """The error a transport exception stands for.

    httpx-aiohttp re-raises aiohttp errors as httpx ones but folds some together (a server
    that hangs up becomes a "ConnectTimeout"), so the original aiohttp error, kept as the
    cause, is looked at first. A failure after the response started (`during_body`) means
    the server was reached and broke off mid-answer: a retryable protocol error, which the
    circuit breaker does not count as the target being down.
    """
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    if isinstance(cause, (asyncio.TimeoutError, TimeoutError)) or (
        cause is exc and isinstance(exc, httpx.TimeoutException)
    ):
        connecting = isinstance(cause, _CONNECT_TIMEOUTS) or (cause is exc and isinstance(exc, httpx.ConnectTimeout))
        what = "connecting" if connecting else "waiting for the response"
        return InfraError("timeout", f"timed out {what}", endpoint=endpoint)
    if isinstance(cause, aiohttp.ClientConnectorError):
        os_error = getattr(cause, "os_error", None)
        if isinstance(os_error, ConnectionRefusedError) or getattr(os_error, "errno", None) == errno.ECONNREFUSED:
            return InfraError("connection", "connection refused", endpoint=endpoint)
        return InfraError("connection", f"cannot connect: {_msg(os_error or cause)}", endpoint=endpoint)
    if isinstance(cause, ConnectionRefusedError):
        return InfraError("connection", "connection refused", endpoint=endpoint)
    if during_body or isinstance(cause, aiohttp.ClientPayloadError) or isinstance(
        exc, (httpx.ReadError, httpx.RemoteProtocolError)
    ):
        return InfraError("protocol", "the response broke off before it was complete",
                          endpoint=endpoint, retryable=True)
    if isinstance(cause, aiohttp.ServerDisconnectedError):
        return InfraError("connection", "the server closed the connection without answering", endpoint=endpoint)
    if isinstance(exc, httpx.UnsupportedProtocol):
        return InfraError("protocol", f"unsupported URL: {_msg(exc)}", endpoint=endpoint, retryable=False)
    return InfraError("connection", f"{type(cause).__name__}: {_msg(cause)}", endpoint=endpoint)


def parse_json(body: bytes, endpoint: str) -> Any:
    """Decode a JSON response body.

    A 200 whose body is not JSON is treated as a transient gateway glitch (a proxy's error
    page, a body cut short): a protocol error that is retried, and reported if it persists.
    """
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise InfraError("protocol", f"the response is not valid JSON ({e}): {excerpt(body)}",
                         endpoint=endpoint, retryable=True) from None


def _msg(e: BaseException | None) -> str:
    if e is None:
        return ""
    text = str(e) or type(e).__name__
    return " ".join(text.split())[:EXCERPT_CHARS]


def _reason(status: int) -> str:
    return httpx.codes.get_reason_phrase(status)  # "" for a status httpx does not know

class SSEDecoder:
    """Splits a server-sent event stream into the `data` payloads of its events.

    Bytes arrive in arbitrary pieces: an event may span reads and one read may hold many
    events. Comment lines (keep-alives such as `: ping`) and fields other than `data` are
    skipped; the data lines of one event are joined with newlines, as the SSE spec says.
    """

    __slots__ = ("_buf", "_data")

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        """The payloads of the events completed by `chunk`."""
        self._buf += chunk
        if b"\n" not in chunk:
            return []
        *lines, self._buf = self._buf.split(b"\n")
        out: list[bytes] = []
        for line in lines:
            self._line(line, out)
        return out

    def flush(self) -> list[bytes]:
        """At the end of the stream: the payload of a last event left without a blank line."""
        out: list[bytes] = []
        if self._buf:
            self._line(self._buf, out)
            self._buf = b""
        self._line(b"", out)
        return out

    def _line(self, line: bytes, out: list[bytes]) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            if self._data:
                out.append(b"\n".join(self._data))
                self._data = []
            return
        if line.startswith(b":"):
            return
        name, _, value = line.partition(b":")
        if name == b"data":
            self._data.append(value[1:] if value.startswith(b" ") else value)
