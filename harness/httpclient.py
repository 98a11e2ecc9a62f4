"""The HTTP session every model request goes through, and the one place HTTP failures become `InfraError`s.

Targets talk to model gateways and webhooks at high concurrency, and whatever CPU a request
costs the harness shows up as the agent's latency. httpx's own connection pool costs
several milliseconds of CPU per request at 50 concurrent calls, so the session (`Session`)
is plain aiohttp: one `ClientSession` with a keep-alive pool per target or model client,
well under a millisecond per request. The OpenAI-compatible chat client (`harness.chat`)
that the openai target, the judge and the LLM caller share is built on it, and so is the
http target.

All mapping from transport exceptions and HTTP statuses to error kinds lives here, so the
openai and http targets, the judge and the callers classify a 429, a 503 or a dropped
connection the same way; so do the one retry policy (`RetryPolicy`, the backoff the runner
and the model clients share) and the one secret masker (`Masker`).
"""

from __future__ import annotations

import asyncio
import email.utils
import errno
import os
import random
import re
import socket
import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic_core import from_json

from .errors import InfraError
from .tracing import outgoing_headers

if TYPE_CHECKING:  # imported on first use: aiohttp costs ~0.2 s to import
    import aiohttp

T = TypeVar("T")

# Statuses that mean "the server is there but could not serve this now": worth a retry.
SERVER_ERROR_STATUSES = frozenset({500, 502, 503, 504, 520, 521, 522, 524, 529})
EXCERPT_CHARS = 200
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy")
_IDLE_KEEP_S = 15.0  # pooled connections idle longer than this are dropped (servers close them anyway)
# Bytes of one answer (after decompression, streamed or not) the harness reads before it
# stops: a hostile or broken server cannot make a run take gigabytes. HARNESS_MAX_ANSWER_BYTES.
DEFAULT_MAX_ANSWER_BYTES = 1024 * 1024
_READ_PIECE = 64 * 1024


def max_answer_bytes() -> int:
    """The answer size bound: $HARNESS_MAX_ANSWER_BYTES (bytes; k/m suffixes) or 1 MB."""
    raw = os.environ.get("HARNESS_MAX_ANSWER_BYTES", "").strip().lower()
    if not raw:
        return DEFAULT_MAX_ANSWER_BYTES
    scale = {"k": 1024, "m": 1024 * 1024}.get(raw[-1], 1)
    try:
        value = int(float(raw[:-1] if scale > 1 else raw) * scale)
    except ValueError:
        value = 0
    if value < 1024:
        from .errors import ConfigError

        raise ConfigError(f"HARNESS_MAX_ANSWER_BYTES={raw!r}: expected a size of at least 1k, such as 4m")
    return value


def _too_large(limit: int, endpoint: str) -> InfraError:
    return InfraError("protocol", f"the answer is larger than {_size(limit)} (HARNESS_MAX_ANSWER_BYTES); "
                      "stopped reading it", endpoint=endpoint, retryable=False)


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:g} MB" if n >= 1024 * 1024 else f"{n / 1024:g} KB"


class Reply:
    """A response whose status and headers have arrived; the body is read on demand.

    `headers.get` ignores the case of names. Failures while reading are `InfraError`s (a
    body that breaks off is a retryable protocol error). Always `await reply.aclose()`.
    """

    __slots__ = ("status", "headers", "_resp", "_endpoint", "_limit")

    def __init__(self, resp: aiohttp.ClientResponse, endpoint: str, limit: int = DEFAULT_MAX_ANSWER_BYTES):
        self.status = resp.status
        self.headers: Mapping[str, str] = resp.headers
        self._resp: aiohttp.ClientResponse | None = resp
        self._endpoint = endpoint
        self._limit = limit  # bytes of body read before giving up (see DEFAULT_MAX_ANSWER_BYTES)

    async def read(self) -> bytes:
        """The whole body, up to the answer size bound (an InfraError past it)."""
        assert self._resp is not None, "read() after aclose()"
        content = self._resp.content
        pieces: list[bytes] = []
        seen = 0
        try:
            while True:
                piece = await content.read(_READ_PIECE)
                if not piece:
                    return b"".join(pieces)
                seen += len(piece)
                if seen > self._limit:
                    raise _too_large(self._limit, self._endpoint)
                pieces.append(piece)
        except InfraError:
            raise
        except Exception as e:
            raise transport_error(e, self._endpoint, during_body=True) from None

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        """The body in the pieces it arrives in, so a stream's first token is seen when it comes."""
        assert self._resp is not None, "iter_bytes() after aclose()"
        seen = 0
        try:
            async for chunk in self._resp.content.iter_any():
                seen += len(chunk)
                if seen > self._limit:
                    raise _too_large(self._limit, self._endpoint)
                yield chunk
        except InfraError:
            raise
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
        self.max_answer_bytes = max_answer_bytes()
        self._client: aiohttp.ClientSession | None = None
        self._sockets_opened = 0  # connections the pool opened (see send)
        self._proxies: dict[str, tuple[str | None, Any]] = {}

    @classmethod
    def for_target(cls, limits: Any, headers: Mapping[str, str], defaults: Mapping[str, str]) -> "Session":
        """A target's session: its limits, and the user's headers over ours (names compared
        without case, so a user's Content-Type replaces the default one)."""
        return cls(timeout=limits.timeout_s, max_connections=limits.concurrency + 4,
                   headers=merge_headers(defaults, headers))

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
        headers = outgoing_headers(headers)  # traceparent, tracestate, baggage when the run is traced
        proxy = self._proxies.get(url)
        if proxy is None:
            proxy = self._proxies[url] = _proxy_for(url)
        for attempt in (0, 1):
            opened = self._sockets_opened
            try:
                resp = await client.request(method, url, data=body, headers=headers, proxy=proxy[0],
                                            proxy_auth=proxy[1], allow_redirects=False)
                return Reply(resp, endpoint, self.max_answer_bytes)
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


def merge_headers(*layers: Mapping[str, str]) -> dict[str, str]:
    """Header mappings merged left to right, names compared without case (a later layer's
    `content-type` replaces an earlier `Content-Type`)."""
    merged: dict[str, tuple[str, str]] = {}
    for layer in layers:
        merged.update((name.lower(), (name, value)) for name, value in layer.items())
    return dict(merged.values())


MASK = "***"
MIN_SECRET_CHARS = 6  # shorter values are placeholders ("EMPTY", "none"): blanking them would mangle words
_SECRET_HEADER_WORDS = ("auth", "key", "token", "secret", "cookie", "session", "signature", "password", "credential")


class Masker:
    """Blanks known secrets out of text: the one place a model client's key is kept out of
    error lines and out of the text it stores.

    The secrets are the API key and the values of the configured headers whose names say
    they carry credentials (Authorization, X-Api-Key, Cookie, …); for a `Bearer`/`Basic`
    value, the credential after the scheme too, since servers echo the token alone.
    Iterating a masker gives its secrets, so it can be passed as `redact=`.
    """

    __slots__ = ("secrets",)

    def __init__(self, secrets: Iterable[str | None] = ()):
        found = {s for s in secrets if s and len(s) >= MIN_SECRET_CHARS}
        self.secrets = tuple(sorted(found, key=len, reverse=True))  # longest first: "Bearer k" before "k"

    @classmethod
    def of(cls, api_key: str | None = None, headers: Mapping[str, str] | None = None,
           url: str | None = None) -> "Masker":
        """The secrets of one client: its key, its credential headers, the password in its URL."""
        found: list[str | None] = [api_key]
        for name, value in (headers or {}).items():
            if any(word in name.lower() for word in _SECRET_HEADER_WORDS):
                found.append(value)
                scheme, _, credential = value.partition(" ")
                if credential and scheme.lower() in ("bearer", "basic", "token"):
                    found.append(credential.strip())
        if url:
            found.append(unquote(urlsplit(url).password or ""))
        return cls(found)

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def __iter__(self) -> Iterator[str]:
        return iter(self.secrets)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def error(self, err: InfraError) -> InfraError:
        """`err` itself, or a copy with every secret blanked out of its message."""
        if not any(secret in err.detail for secret in self.secrets):
            return err
        return InfraError(err.kind, self(err.detail), endpoint=err.endpoint, retry_after=err.retry_after,
                          retryable=err.retryable, status=err.status, down=err.down, misconfigured=err.misconfigured)


class RetryPolicy:
    """When a failed request is tried again, and after how long: the one backoff the runner's
    guard and the model clients (judge, LLM caller) share.

    A retryable `InfraError` is tried again up to `retries` times, after an exponential
    backoff with jitter (`backoff_s` doubling up to `backoff_max_s`, drawn from the upper
    half); a server's Retry-After wins when longer; one longer than `backoff_max_s` is not
    retried at all (the error keeps the wait the server asked for).
    """

    __slots__ = ("retries", "backoff_s", "backoff_max_s", "rng")

    def __init__(self, retries: int, backoff_s: float, backoff_max_s: float, *, rng: random.Random | None = None):
        self.retries = retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.rng = rng or random.Random()

    def delay(self, attempt: int, err: InfraError) -> float:
        """Seconds to wait before retry number `attempt + 1`."""
        base = min(self.backoff_max_s, self.backoff_s * (2**attempt))
        delay = self.rng.uniform(base / 2, base)
        if err.retry_after is not None:
            delay = max(delay, min(err.retry_after, self.backoff_max_s))
        return delay

    def retries_after(self, attempt: int, err: InfraError) -> bool:
        """Whether a request that failed with `err` on try `attempt` (from 0) is sent again.

        Not when the server asked for a longer wait than `backoff_max_s`: a retry sooner than
        it asked only spends a try on the same refusal."""
        if err.retry_after is not None and err.retry_after > self.backoff_max_s:
            return False
        return err.retryable and attempt < self.retries

    async def run(self, fn: Callable[[], Awaitable[T]]) -> T:
        """`fn()`, called again after a backoff while it fails with a retryable `InfraError`."""
        attempt = 0
        while True:
            try:
                return await fn()
            except InfraError as e:
                if not self.retries_after(attempt, e):
                    raise
                await asyncio.sleep(self.delay(attempt, e))
                attempt += 1


def safe_endpoint(url: str) -> str:
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


# Where a server says how long to wait: OpenAI's milliseconds, the standard header, and the
# upstream provider's own header as a LiteLLM gateway passes it on.
_RETRY_AFTER_MS = ("retry-after-ms", "llm_provider-retry-after-ms")
_RETRY_AFTER = ("retry-after", "llm_provider-retry-after")


def retry_after_of(headers: Mapping[str, str]) -> float | None:
    """Seconds a response asks the client to wait before trying again, or None."""
    for name in _RETRY_AFTER_MS:
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) / 1000)
            except ValueError:
                pass
    for name in _RETRY_AFTER:
        seconds = parse_retry_after(headers.get(name))
        if seconds is not None:
            return seconds
    return None


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: str | None) -> float | None:
    """Seconds from `12`, `0.5`, `20ms`, `1s` or `6m0s` (OpenAI's `x-ratelimit-reset-*` style)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    return sum(float(n) * _DURATION_UNIT[u] for n, u in parts)


def rate_limit_wait(headers: Mapping[str, str]) -> float | None:
    """Seconds until a rate limit the response says is used up resets (`x-ratelimit-remaining-requests:
    0` with `x-ratelimit-reset-requests`), or None while requests remain."""
    remaining = headers.get("x-ratelimit-remaining-requests") or headers.get("llm_provider-x-ratelimit-remaining-requests")
    if remaining is None or remaining.strip() not in ("0", "0.0"):
        return None
    # a LiteLLM gateway passes the provider's reset on under its own prefix
    return parse_duration(headers.get("x-ratelimit-reset-requests")
                          or headers.get("llm_provider-x-ratelimit-reset-requests"))


def excerpt(body: bytes | str, *, redact: Iterable[str] = ()) -> str:
    """A short one-line excerpt of a response body, with any known secret blanked out."""
    text = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else body
    text = " ".join(text.split())
    for secret in redact:
        if secret:
            text = text.replace(secret, MASK)
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

    - 429 → rate_limited, retried after `Retry-After` (seconds or an HTTP date; also
      `retry-after-ms` and a LiteLLM gateway's `llm_provider-retry-after`).
    - 500/502/503/504 (and the CDN/overload 52x, 529) → server_error, retried; a 503's
      `Retry-After` is honoured too.
    - 408 → timeout (the server gave up waiting on us; worth a retry).
    - 401/403 → protocol, not retried, `misconfigured`: the key was rejected (a mistake of
      ours, exit 2). The body is left out because some providers echo part of the key back.
    - any other status → protocol, not retried, quoting the status and a body excerpt.
    """
    if 200 <= status < 300:
        return None
    reason = _reason(status)
    retry_after = retry_after_of(headers)
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
        return InfraError("protocol", f"HTTP {status} {reason}: the API key or credentials were rejected "
                          "(check the key)", endpoint=endpoint, retryable=False, status=status, misconfigured=True)
    body_txt = excerpt(body, redact=redact)
    more = f": {body_txt}" if body_txt else ""
    hint = f" ({hint_404})" if status == 404 and hint_404 else ""
    return InfraError("protocol", f"HTTP {status} {reason}{more}{hint}", endpoint=endpoint,
                      retryable=False, status=status)


def transport_error(exc: BaseException, endpoint: str, *, during_body: bool = False) -> InfraError:
    """The error an aiohttp exception stands for.

    A failure after the response started (`during_body`) means the server was reached and
    broke off mid-answer: a retryable protocol error, which the circuit breaker does not
    count as the target being down.
    """
    import aiohttp

    cause = exc
    if isinstance(cause, (asyncio.TimeoutError, TimeoutError)):
        # ConnectionTimeoutError is aiohttp 3.10+; older ones say only "ServerTimeoutError"
        connecting = isinstance(cause, getattr(aiohttp, "ConnectionTimeoutError", ()))
        what = "connecting" if connecting else "waiting for the response"
        return InfraError("timeout", f"timed out {what}", endpoint=endpoint)
    if isinstance(cause, aiohttp.ClientConnectorError):
        os_error = getattr(cause, "os_error", None)
        if isinstance(os_error, ConnectionRefusedError) or getattr(os_error, "errno", None) == errno.ECONNREFUSED:
            return InfraError("connection", "connection refused", endpoint=endpoint)
        return InfraError("connection", f"cannot connect: {_msg(os_error or cause)}", endpoint=endpoint)
    if isinstance(cause, ConnectionRefusedError):
        return InfraError("connection", "connection refused", endpoint=endpoint)
    if isinstance(cause, aiohttp.InvalidURL):
        return InfraError("protocol", f"unsupported URL: {_msg(cause)}", endpoint=endpoint, retryable=False)
    if during_body or isinstance(cause, aiohttp.ClientPayloadError):
        return InfraError("protocol", "the response broke off before it was complete",
                          endpoint=endpoint, retryable=True)
    if isinstance(cause, aiohttp.ServerDisconnectedError):
        return InfraError("connection", "the server closed the connection without answering", endpoint=endpoint)
    if isinstance(cause, aiohttp.ClientResponseError):  # the parser could not read the response head
        return InfraError("protocol", f"the response is not valid HTTP: {_msg(cause)}", endpoint=endpoint,
                          retryable=True)
    return InfraError("connection", f"{type(cause).__name__}: {_msg(cause)}", endpoint=endpoint)


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


def parse_json(body: bytes, endpoint: str, *, redact: Iterable[str] = ()) -> Any:
    """Decode a JSON response body.

    A 200 whose body is not JSON is treated as a transient gateway glitch (a proxy's error
    page, a body cut short): a protocol error that is retried, and reported if it persists.
    """
    try:
        return loads(body)
    except ValueError as e:  # invalid UTF-8 included
        raise InfraError("protocol", f"the response is not valid JSON ({e}): {excerpt(body, redact=redact)}",
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
