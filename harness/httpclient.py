"""The HTTP clients targets use, and the one place HTTP failures become `InfraError`s.

Targets talk to model gateways and webhooks at high concurrency, and whatever CPU a request
costs the harness shows up as the agent's latency. httpx's own connection pool costs
several milliseconds of CPU per request at 50 concurrent calls; on aiohttp's transport
(httpx-aiohttp) still about half a millisecond, plus a fifth of a second of imports. So the
targets' hot path goes through `Session`, which sends a request on the small HTTP/1.1
client in `harness.http11` (tens of microseconds per request), and through httpx only when
the environment names a proxy for the host or the URL carries credentials. `make_client`
still gives the httpx client (on the aiohttp transport) for everything else (the judge).

All mapping from transport exceptions and HTTP statuses to error kinds lives here, so the
openai and http targets classify a 429, a 503 or a dropped connection the same way, and
the runner's retries and circuit breaker see the same kinds whatever the target.
"""

from __future__ import annotations

import asyncio
import email.utils
import errno
import json
import os
import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

from . import http11
from .errors import InfraError

if TYPE_CHECKING:  # imported lazily: httpx and aiohttp cost ~0.2 s to import
    import httpx

# Statuses that mean "the server is there but could not serve this now": worth a retry.
SERVER_ERROR_STATUSES = frozenset({500, 502, 503, 504, 520, 521, 522, 524, 529})
EXCERPT_CHARS = 200
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy")


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
    import httpx
    from httpx_aiohttp import HttpxAiohttpClient

    return HttpxAiohttpClient(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        headers=headers,
        base_url=base_url or "",
        follow_redirects=False,
    )


class Reply:
    """A response whose status and headers have arrived; the body is read on demand.

    `headers.get` takes lower-case names. Failures while reading are `InfraError`s (a body
    that breaks off is a retryable protocol error). Always `await reply.aclose()`.
    """

    __slots__ = ("status", "headers", "_raw", "_endpoint")

    def __init__(self, status: int, headers: Mapping[str, str], raw: Any, endpoint: str):
        self.status = status
        self.headers = headers
        self._raw = raw
        self._endpoint = endpoint

    async def read(self) -> bytes:
        try:
            if isinstance(self._raw, http11.Http11Response):
                return await self._raw.read()
            return await self._raw.aread()
        except Exception as e:
            raise _body_error(e, self._endpoint) from None

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        chunks = self._raw if isinstance(self._raw, http11.Http11Response) else self._raw.aiter_bytes()
        try:
            async for chunk in chunks:
                yield chunk
        except Exception as e:
            raise _body_error(e, self._endpoint) from None

    async def aclose(self) -> None:
        raw, self._raw = self._raw, None
        if isinstance(raw, http11.Http11Response):
            raw.release()
        elif raw is not None:
            await raw.aclose()


def _body_error(e: Exception, endpoint: str) -> Exception:
    if isinstance(e, InfraError):
        return e
    return transport_error(e, endpoint, during_body=True)


class Session:
    """Sends a target's requests: on `http11`, or on httpx when a proxy applies to the URL.

    Made before the event loop runs; the connections are opened inside it on first use.
    Close it with `await session.aclose()`.
    """

    def __init__(self, *, timeout: float, max_connections: int, headers: Mapping[str, str] | None = None):
        self.timeout = timeout
        self.max_connections = max_connections
        self.headers = dict(headers or {})
        self._pool: http11.Http11Pool | None = None
        self._httpx: httpx.AsyncClient | None = None
        self._direct: dict[str, bool] = {}

    async def send(self, method: str, url: str, body: bytes, *, endpoint: str,
                   headers: Mapping[str, str] | None = None) -> Reply:
        """Send one request and wait for the response head; failures are `InfraError`s."""
        direct = self._direct.get(url)
        if direct is None:
            direct = self._direct[url] = _can_go_direct(url)
        try:
            if direct:
                if self._pool is None:
                    self._pool = http11.Http11Pool(timeout=self.timeout, max_connections=self.max_connections,
                                                   headers=self.headers)
                raw = await self._pool.request(method, url, body, headers)
                return Reply(raw.status, raw.headers, raw, endpoint)
            client = self._httpx_client()
            request = client.build_request(method, url, content=body, headers=headers)
            resp = await client.send(request, stream=True)
            return Reply(resp.status_code, resp.headers, resp, endpoint)
        except (InfraError, asyncio.CancelledError):
            raise
        except Exception as e:
            raise transport_error(e, endpoint) from None

    def _httpx_client(self) -> httpx.AsyncClient:
        if self._httpx is None:
            self._httpx = make_client(timeout=self.timeout, max_connections=self.max_connections,
                                      headers=self.headers)
        return self._httpx

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        client, self._httpx = self._httpx, None
        if pool is not None:
            await pool.aclose()
        if client is not None:
            await client.aclose()


def _can_go_direct(url: str) -> bool:
    """True unless the environment names a proxy for this URL's host or the URL has user info."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        return False  # httpx turns user info into Basic auth
    if not any(os.environ.get(v) or os.environ.get(v.upper()) for v in _PROXY_VARS):
        return True
    import urllib.request

    proxies = urllib.request.getproxies_environment()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return True
    return bool(urllib.request.proxy_bypass_environment(parts.hostname or "", proxies))


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

    Exceptions come from `http11`, or from httpx on the aiohttp transport. httpx-aiohttp
    re-raises aiohttp errors as httpx ones but folds some together (a server that hangs up
    becomes a "ConnectTimeout"), so the original aiohttp error, kept as the cause, is looked
    at first. A failure after the response started (`during_body`) means the server was
    reached and broke off mid-answer: a retryable protocol error, which the circuit breaker
    does not count as the target being down.
    """
    if isinstance(exc, http11.ConnectTimeout):
        return InfraError("timeout", "timed out connecting", endpoint=endpoint)
    if isinstance(exc, http11.ConnectFailed):
        cause = exc.__cause__
        if isinstance(cause, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
            return InfraError("connection", "connection refused", endpoint=endpoint)
        return InfraError("connection", f"cannot connect: {_msg(cause or exc)}", endpoint=endpoint)
    if isinstance(exc, http11.Disconnected):
        return InfraError("connection", "the server closed the connection without answering", endpoint=endpoint)
    if isinstance(exc, http11.ResponseBrokeOff):
        return InfraError("protocol", "the response broke off before it was complete",
                          endpoint=endpoint, retryable=True)
    if isinstance(exc, http11.MalformedResponse):
        return InfraError("protocol", f"the response is not valid HTTP: {_msg(exc)}", endpoint=endpoint,
                          retryable=True)
    if isinstance(exc, http11.UnsupportedURL):
        return InfraError("protocol", f"unsupported URL: {_msg(exc)}", endpoint=endpoint, retryable=False)
    if type(exc) is TimeoutError:  # http11 waiting for the response head
        return InfraError("timeout", "timed out waiting for the response", endpoint=endpoint)
    return _library_error(exc, endpoint, during_body)


def _library_error(exc: BaseException, endpoint: str, during_body: bool) -> InfraError:
    """httpx and aiohttp exceptions; those libraries are loaded if such an exception exists."""
    import aiohttp
    import httpx

    connect_timeouts = tuple(t for t in (getattr(aiohttp, "ConnectionTimeoutError", None),) if t is not None)
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    if isinstance(cause, (asyncio.TimeoutError, TimeoutError)) or (
        cause is exc and isinstance(exc, httpx.TimeoutException)
    ):
        connecting = isinstance(cause, connect_timeouts) or (cause is exc and isinstance(exc, httpx.ConnectTimeout))
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
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""  # a status the standard library does not know (such as 529)

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
