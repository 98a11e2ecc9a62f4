"""The HTTP clients targets use, and the one place HTTP failures become `InfraError`s.

Targets talk to model gateways and webhooks at high concurrency, and whatever CPU a request
costs the harness shows up as the agent's latency. httpx's own connection pool costs
several milliseconds of CPU per request at 50 concurrent calls, so the targets' hot path
(`Session`) is plain aiohttp: one `ClientSession` with a keep-alive pool per target, well
under a millisecond per request. `make_client` gives an httpx client on aiohttp's
transport (httpx-aiohttp) for the judge and the LLM callers, which send few requests and
are written against httpx's API.

All mapping from transport exceptions and HTTP statuses to error kinds lives here, so the
openai and http targets classify a 429, a 503 or a dropped connection the same way, and
the runner's retries and circuit breaker see the same kinds whatever the target.
"""

from __future__ import annotations

import asyncio
import email.utils
import errno
import os
import socket
import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterable, Mapping
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic_core import from_json

from .errors import InfraError

if TYPE_CHECKING:  # imported on first use: httpx and aiohttp cost ~0.2 s to import
    import aiohttp
    import httpx

# Statuses that mean "the server is there but could not serve this now": worth a retry.
SERVER_ERROR_STATUSES = frozenset({500, 502, 503, 504, 520, 521, 522, 524, 529})
EXCERPT_CHARS = 200
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy")
_IDLE_KEEP_S = 15.0  # pooled connections idle longer than this are dropped (servers close them anyway)


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

    `headers.get` ignores the case of names. Failures while reading are `InfraError`s (a
    body that breaks off is a retryable protocol error). Always `await reply.aclose()`.
    """

    __slots__ = ("status", "headers", "_resp", "_endpoint")

    def __init__(self, resp: aiohttp.ClientResponse, endpoint: str):
        self.status = resp.status
        self.headers: Mapping[str, str] = resp.headers
        self._resp: aiohttp.ClientResponse | None = resp
        self._endpoint = endpoint

    async def read(self) -> bytes:
        assert self._resp is not None, "read() after aclose()"
        try:
            return await self._resp.read()
        except Exception as e:
            raise transport_error(e, self._endpoint, during_body=True) from None

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        """The body in the pieces it arrives in, so a stream's first token is seen when it comes."""
        assert self._resp is not None, "iter_bytes() after aclose()"
        try:
            async for chunk in self._resp.content.iter_any():
                yield chunk
        except Exception as e:
            raise transport_error(e, self._endpoint, during_body=True) from None

    async def aclose(self) -> None:
        """Give the connection back to the pool (body read to the end) or close it (anything else)."""
        resp, self._resp = self._resp, None
        if resp is not None:
            resp.release()


class Session:
    """Sends a target's requests on one `aiohttp.ClientSession` with a keep-alive pool.

    At most `max_connections` requests are in flight. `timeout` bounds connecting (capped at
    10 s, so a dead host fails fast) and each wait for bytes from the server; the runner's
    per-request timeout bounds the whole exchange. A proxy named by the environment
    (HTTP(S)_PROXY, ALL_PROXY, NO_PROXY) is used, and credentials in a URL become Basic auth.

    Made before the event loop runs; the aiohttp session is made inside it on first use.
    Close it with `await session.aclose()`.
    """

    def __init__(self, *, timeout: float, max_connections: int, headers: Mapping[str, str] | None = None):
        self.timeout = timeout
        self.max_connections = max_connections
        self.headers = dict(headers or {})
        self._client: aiohttp.ClientSession | None = None
        self._sockets_opened = 0  # connections the pool opened (see send)
        self._proxies: dict[str, tuple[str | None, Any]] = {}

    @classmethod
    def for_target(cls, limits: Any, headers: Mapping[str, str], defaults: Mapping[str, str]) -> "Session":
        """A target's session: its limits, and the user's headers over ours (names compared
        without case, so a user's Content-Type replaces the default one)."""
        merged = {name.lower(): (name, value) for name, value in defaults.items()}
        merged.update((name.lower(), (name, value)) for name, value in headers.items())
        return cls(timeout=limits.timeout_s, max_connections=limits.concurrency + 4, headers=dict(merged.values()))

    def open(self) -> "Session":
        """Make the aiohttp session now, inside the event loop, and return self.

        The first one imports aiohttp (0.2 s): a target opens its session before it starts a
        request's clock, so that never counts as the first call's latency.
        """
        if self._client is None:
            self._open()
        return self

    def _open(self) -> aiohttp.ClientSession:
        import aiohttp

        self._client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=0,
                                           keepalive_timeout=_IDLE_KEEP_S, socket_factory=self._new_socket),
            headers=self.headers,
            timeout=aiohttp.ClientTimeout(total=None, connect=min(self.timeout, 10.0), sock_read=self.timeout),
            auto_decompress=True,  # aiohttp asks for gzip/deflate; a gateway that compresses is unpacked
            cookie_jar=aiohttp.DummyCookieJar(),  # every call stands alone: no cookies carried between them
        )
        return self._client

    def _new_socket(self, addr_info: Any) -> socket.socket:
        """Every connection the pool opens: counted, so `send` can tell a pooled one."""
        self._sockets_opened += 1
        family, type_, proto, _, _ = addr_info
        return socket.socket(family=family, type=type_, proto=proto)

    async def send(self, method: str, url: str, body: bytes, *, endpoint: str,
                   headers: Mapping[str, str] | None = None) -> Reply:
        """Send one request and wait for the response head; failures are `InfraError`s.

        A server may close an idle keep-alive connection just as a request goes out on it;
        aiohttp retries that only for idempotent methods, so a POST that met a dropped
        reused connection without any answer is sent once more on a fresh one.
        """
        client = self._client or self._open()
        proxy = self._proxies.get(url)
        if proxy is None:
            proxy = self._proxies[url] = _proxy_for(url)
        for attempt in (0, 1):
            opened = self._sockets_opened
            try:
                resp = await client.request(method, url, data=body, headers=headers, proxy=proxy[0],
                                            proxy_auth=proxy[1], allow_redirects=False)
                return Reply(resp, endpoint)
            except (InfraError, asyncio.CancelledError):
                raise
            except Exception as e:
                # Every request needs a connection: when the pool opened none while this one
                # was out, it went on a pooled one. (Another request opening a connection at
                # the same moment hides that, and the request is then not sent again: the
                # safe side.) aiohttp's request tracing would tell exactly, but tracing
                # costs every request tens of microseconds.
                reused = self._sockets_opened == opened
                if attempt == 0 and reused and _dropped_before_answer(e):
                    continue
                raise transport_error(e, endpoint) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()


def _dropped_before_answer(e: Exception) -> bool:
    import aiohttp

    return isinstance(e, aiohttp.ServerDisconnectedError) or (
        isinstance(e, aiohttp.ClientOSError) and isinstance(e.__cause__ or e, ConnectionResetError)
    )


def _proxy_for(url: str) -> tuple[str | None, Any]:
    """(proxy URL, proxy Basic auth) the environment names for `url`, or (None, None).

    Resolved once per URL with the standard library's rules. aiohttp's own `trust_env`
    would look the environment and ~/.netrc up again on two worker threads for every
    request, and it ignores ALL_PROXY and https:// proxies.
    """
    if not any(os.environ.get(v) or os.environ.get(v.upper()) for v in _PROXY_VARS):
        return None, None
    import urllib.request

    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass_environment(parts.hostname or "", proxies):
        return None, None
    if "://" not in proxy:
        proxy = "http://" + proxy
    p = urlsplit(proxy)
    if not (p.username or p.password):
        return proxy, None
    import aiohttp

    # aiohttp takes the proxy's credentials apart from its URL
    auth = aiohttp.BasicAuth(unquote(p.username or ""), unquote(p.password or ""))
    return urlunsplit((p.scheme, p.netloc.rpartition("@")[2], p.path, p.query, p.fragment)), auth


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
    """The error a transport exception (aiohttp's, or httpx's on the aiohttp transport) stands for.

    httpx-aiohttp re-raises aiohttp errors as httpx ones but folds some together (a server
    that hangs up becomes a "ConnectTimeout"), so the original aiohttp error, kept as the
    cause, is looked at first. A failure after the response started (`during_body`) means
    the server was reached and broke off mid-answer: a retryable protocol error, which the
    circuit breaker does not count as the target being down.
    """
    import aiohttp

    httpx = _httpx_if_loaded()
    from_httpx = httpx is not None and isinstance(exc, httpx.HTTPError)
    cause = exc.__cause__ if from_httpx and exc.__cause__ is not None else exc
    if isinstance(cause, (asyncio.TimeoutError, TimeoutError)) or (
        from_httpx and cause is exc and isinstance(exc, httpx.TimeoutException)
    ):
        # ConnectionTimeoutError is aiohttp 3.10+; older ones say only "ServerTimeoutError"
        connecting = isinstance(cause, getattr(aiohttp, "ConnectionTimeoutError", ())) or (
            from_httpx and cause is exc and isinstance(exc, httpx.ConnectTimeout))
        what = "connecting" if connecting else "waiting for the response"
        return InfraError("timeout", f"timed out {what}", endpoint=endpoint)
    if isinstance(cause, aiohttp.ClientConnectorError):
        os_error = getattr(cause, "os_error", None)
        if isinstance(os_error, ConnectionRefusedError) or getattr(os_error, "errno", None) == errno.ECONNREFUSED:
            return InfraError("connection", "connection refused", endpoint=endpoint)
        return InfraError("connection", f"cannot connect: {_msg(os_error or cause)}", endpoint=endpoint)
    if isinstance(cause, ConnectionRefusedError):
        return InfraError("connection", "connection refused", endpoint=endpoint)
    if isinstance(cause, aiohttp.InvalidURL) or (from_httpx and isinstance(exc, httpx.UnsupportedProtocol)):
        return InfraError("protocol", f"unsupported URL: {_msg(cause)}", endpoint=endpoint, retryable=False)
    if during_body or isinstance(cause, aiohttp.ClientPayloadError) or (
        from_httpx and isinstance(exc, (httpx.ReadError, httpx.RemoteProtocolError))
    ):
        return InfraError("protocol", "the response broke off before it was complete",
                          endpoint=endpoint, retryable=True)
    if isinstance(cause, aiohttp.ServerDisconnectedError):
        return InfraError("connection", "the server closed the connection without answering", endpoint=endpoint)
    if isinstance(cause, aiohttp.ClientResponseError):  # the parser could not read the response head
        return InfraError("protocol", f"the response is not valid HTTP: {_msg(cause)}", endpoint=endpoint,
                          retryable=True)
    return InfraError("connection", f"{type(cause).__name__}: {_msg(cause)}", endpoint=endpoint)


def _httpx_if_loaded() -> Any:
    """httpx if something already imported it; an error from the targets' plain aiohttp
    session should not cost the import."""
    import sys

    return sys.modules.get("httpx")


def loads(data: bytes) -> Any:
    """JSON from a response body or a stream event; ValueError for anything that is not JSON.

    pydantic's parser (jiter) reads it in a third of json.loads's time, which counts when
    every streamed token is an event. It refuses a lone UTF-16 surrogate escape, which JSON
    allows: that text is read by the standard library and the surrogate made U+FFFD.
    """
    try:
        return from_json(data)
    except ValueError:
        import json

        from .normalize import without_surrogates

        return without_surrogates(json.loads(data))  # its own errors are ValueErrors too


def parse_json(body: bytes, endpoint: str) -> Any:
    """Decode a JSON response body.

    A 200 whose body is not JSON is treated as a transient gateway glitch (a proxy's error
    page, a body cut short): a protocol error that is retried, and reported if it persists.
    """
    try:
        return loads(body)
    except ValueError as e:  # invalid UTF-8 included
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
        line_of = self._line
        for line in lines:
            # the common lines, `data: {...}` and the blank line that ends an event with one
            # data line, are taken here: a call per line showed in profiles
            if line.startswith(b"data: ") and not line.endswith(b"\r"):
                self._data.append(line[6:])
            elif not line and len(self._data) == 1:
                out.append(self._data.pop())
            else:
                line_of(line, out)
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
