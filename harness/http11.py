"""A small HTTP/1.1 client on asyncio's protocol layer, for the targets' hot path.

Why not httpx or aiohttp alone: at 50 calls in flight, httpx's own pool costs several
milliseconds of CPU per request, and httpx on aiohttp's transport still about 0.5 ms,
plus ~0.2 s of imports (aiohttp builds two TLS contexts when imported). The harness would
report that CPU as the agent's latency. A model gateway needs very little of HTTP: POST a
body, read a response that is sized by Content-Length, chunked, or ended by close, keep
the connection for the next call. That is what this module does, at a few tens of
microseconds per request, with nothing but the standard library.

What it leaves out, on purpose: redirects (a gateway that redirects is misconfigured),
compression (it never asks for any), HTTP/2, cookies, and proxies (`httpclient` sends a
request through httpx when the environment names a proxy for the host).

Failures are raised as the exception types below; `httpclient.transport_error` turns
them into the harness's error kinds, like every other transport failure.
"""

from __future__ import annotations

import asyncio
import ssl  # asyncio imports it anyway; the CA bundle is loaded only on first https use
from typing import AsyncIterator, Mapping
from urllib.parse import urlsplit

__all__ = [
    "ConnectFailed",
    "ConnectTimeout",
    "Disconnected",
    "Http11Pool",
    "Http11Response",
    "MalformedResponse",
    "ResponseBrokeOff",
    "UnsupportedURL",
]

_MAX_HEAD = 64 * 1024
_IDLE_KEEP_S = 15.0  # drop pooled connections idle longer than this (servers close them anyway)
_NO_BODY = frozenset({204, 304})


class ConnectFailed(OSError):
    """The connection could not be opened (refused, unreachable, DNS, TLS handshake)."""


class ConnectTimeout(TimeoutError):
    """Opening the connection took longer than the connect timeout."""


class Disconnected(ConnectionError):
    """The server closed the connection before sending a response."""


class ResponseBrokeOff(ConnectionError):
    """The connection ended in the middle of a response."""


class MalformedResponse(ValueError):
    """The server's bytes are not an HTTP/1.x response."""


class UnsupportedURL(ValueError):
    """The URL is not http:// or https:// with a host."""


_TLS: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    # made on first https use only: loading the CA bundle costs ~20 ms
    global _TLS
    if _TLS is None:
        _TLS = ssl.create_default_context()
    return _TLS


class _Conn(asyncio.Protocol):
    """One TCP (or TLS) connection: buffers what arrives and wakes the one reader."""

    __slots__ = ("transport", "buf", "closed", "error", "_waiter", "idle_since")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.closed = False
        self.error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._wake()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake()
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self.error = exc
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def more(self) -> bool:
        """Wait for more bytes; False when the connection has ended instead."""
        if self.closed:
            return False
        have = len(self.buf)
        while len(self.buf) == have and not self.closed:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return len(self.buf) > have

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Http11Response:
    """A response whose head has arrived; read the body with `read()` or `async for`.

    Leave it with `release()` (or use `async with`): a fully read body gives the connection
    back to the pool, anything else closes it.
    """

    __slots__ = ("status", "headers", "_pool", "_conn", "_key", "_mode", "_left", "_done", "_reusable")

    def __init__(self, pool: "Http11Pool", conn: _Conn, key: tuple, status: int, headers: dict[str, str],
                 mode: str, length: int, reusable: bool):
        self.status = status
        self.headers = headers  # names lower-cased; a repeated header keeps its last value
        self._pool = pool
        self._conn = conn
        self._key = key
        self._mode = mode  # "length", "chunked" or "close"
        self._left = length  # bytes left: of the body ("length") or of the current chunk ("chunked")
        self._done = mode == "length" and length == 0
        self._reusable = reusable

    async def __aenter__(self) -> "Http11Response":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def read(self) -> bytes:
        parts = [piece async for piece in self._chunks()]
        return b"".join(parts)

    async def _chunks(self) -> AsyncIterator[bytes]:
        conn = self._conn
        while not self._done:
            buf = conn.buf
            if self._mode == "length":
                if buf:
                    piece = bytes(buf[: self._left])
                    del buf[: len(piece)]
                    self._left -= len(piece)
                    self._done = self._left == 0
                    yield piece
                elif not await conn.more():
                    raise ResponseBrokeOff("the connection ended before the whole body arrived")
            elif self._mode == "close":
                if buf:
                    piece = bytes(buf)
                    buf.clear()
                    yield piece
                elif not await conn.more():
                    self._done = True
            else:
                piece = self._chunked_step(buf)
                if piece:
                    yield piece
                elif piece is None and not await conn.more():
                    raise ResponseBrokeOff("the connection ended in the middle of a chunked body")
        self.release()

    def _chunked_step(self, buf: bytearray) -> bytes | None:
        """Take what the buffer holds of the chunked body: data (b"" when only framing was
        consumed) or None when more bytes are needed."""
        if self._left > 0:
            if not buf:
                return None
            piece = bytes(buf[: self._left])
            del buf[: len(piece)]
            self._left -= len(piece)
            if self._left == 0:
                self._left = -2  # the chunk's CRLF comes next
            return piece
        if self._left == -2:
            if len(buf) < 2:
                return None
            if buf[:2] != b"\r\n":
                raise MalformedResponse("a chunk is not followed by CRLF")
            del buf[:2]
            self._left = 0
            return b""
        if self._left == -1:  # after the last chunk: trailers up to an empty line
            end = buf.find(b"\r\n\r\n") if not buf.startswith(b"\r\n") else -2
            if end == -1:
                if len(buf) > _MAX_HEAD:
                    raise MalformedResponse("the chunked trailer is too long")
                return None
            del buf[: end + 4]
            self._done = True
            return b""
        eol = buf.find(b"\r\n")
        if eol < 0:
            if len(buf) > 1024:
                raise MalformedResponse("a chunk size line is too long")
            return None
        size_text = bytes(buf[:eol]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise MalformedResponse(f"bad chunk size {size_text[:20]!r}") from None
        del buf[: eol + 2]
        self._left = size if size > 0 else -1
        return b""

    def release(self) -> None:
        """Give the connection back (body read to the end) or close it (anything else)."""
        conn, self._conn = self._conn, None  # type: ignore[assignment]
        if conn is None:
            return
        if self._done and self._reusable and not conn.closed and not conn.buf:
            self._pool._put(self._key, conn)
        else:
            conn.close()
        self._pool._slots.release()


class Http11Pool:
    """Keep-alive connections to any number of hosts, at most `max_connections` in use at once.

    `timeout` bounds connecting (capped at `connect_timeout`) and, separately, the wait for
    the response head; the caller bounds the whole exchange (the runner's per-request
    timeout does).
    """

    def __init__(self, *, timeout: float, max_connections: int, headers: Mapping[str, str] | None = None,
                 connect_timeout: float = 10.0):
        self.timeout = timeout
        self.connect_timeout = min(timeout, connect_timeout)
        self._headers = dict(headers or {})
        self._idle: dict[tuple, list[_Conn]] = {}
        self._slots = asyncio.Semaphore(max_connections)
        self._closed = False
        self._head_cache: dict[tuple, bytes] = {}

    async def request(self, method: str, url: str, body: bytes = b"",
                      headers: Mapping[str, str] | None = None) -> Http11Response:
        """Send a request and wait for the response head. Release the response when done."""
        scheme, host, port, target = _split_url(url)
        key = (scheme, host, port)
        head = self._head(method, key, target, headers)
        payload = head + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        await self._slots.acquire()
        try:
            loop = asyncio.get_running_loop()
            for attempt in (0, 1):
                conn, reused = self._get(key, loop.time())
                if conn is None:
                    conn = await self._connect(scheme, host, port)
                assert conn.transport is not None
                conn.transport.write(payload)
                try:
                    status, hdrs, mode, length, reusable = await self._read_head(conn, method)
                except Disconnected:
                    conn.close()
                    if reused and attempt == 0:
                        continue  # the server had dropped the idle connection: once more, fresh
                    raise
                except BaseException:
                    conn.close()
                    raise
                return Http11Response(self, conn, key, status, hdrs, mode, length, reusable)
            raise AssertionError("unreachable")  # pragma: no cover
        except BaseException:
            self._slots.release()
            raise

    async def aclose(self) -> None:
        self._closed = True
        for conns in self._idle.values():
            for c in conns:
                c.close()
        self._idle.clear()

    # --- connections ----------------------------------------------------------------

    def _get(self, key: tuple, now: float) -> tuple[_Conn | None, bool]:
        conns = self._idle.get(key)
        while conns:
            conn = conns.pop()
            if conn.closed or conn.buf or now - conn.idle_since > _IDLE_KEEP_S:
                conn.close()
                continue
            return conn, True
        return None, False

    def _put(self, key: tuple, conn: _Conn) -> None:
        if self._closed:
            conn.close()
            return
        conn.idle_since = asyncio.get_running_loop().time()
        self._idle.setdefault(key, []).append(conn)

    async def _connect(self, scheme: str, host: str, port: int) -> _Conn:
        loop = asyncio.get_running_loop()
        tls = _tls_context() if scheme == "https" else None
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(_Conn, host, port, ssl=tls,
                                                       server_hostname=host if tls else None)
        except TimeoutError:
            raise ConnectTimeout(f"connecting to {host}:{port} took longer than {self.connect_timeout:g}s") from None
        except OSError as e:  # refused, unreachable, DNS failure, TLS handshake (ssl.SSLError is an OSError)
            raise ConnectFailed(e.errno, str(e) or type(e).__name__) from e
        return conn

    # --- the request and the response head -------------------------------------------

    def _head(self, method: str, key: tuple, target: str, extra: Mapping[str, str] | None) -> bytes:
        cache_key = (method, key, target)
        head = self._head_cache.get(cache_key) if extra is None else None
        if head is not None:
            return head
        scheme, host, port = key
        default_port = 443 if scheme == "https" else 80
        host_header = host if port == default_port else f"{host}:{port}"
        if ":" in host and not host.startswith("["):
            host_header = f"[{host}]" if port == default_port else f"[{host}]:{port}"
        fields: dict[str, tuple[str, str]] = {}
        for name, value in (("Host", host_header), ("User-Agent", "harness"), ("Accept", "*/*"),
                            *self._headers.items(), *(extra or {}).items()):
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise ValueError(f"header {name!r} holds a line break")
            fields[name.lower()] = (name, value)  # a later header replaces an earlier one, whatever its case
        fields.pop("content-length", None)
        fields.pop("connection", None)
        lines = [f"{method} {target} HTTP/1.1"] + [f"{n}: {v}" for n, v in fields.values()]
        head = ("\r\n".join(lines) + "\r\n").encode("utf-8")
        if extra is None:
            self._head_cache[cache_key] = head
        return head

    async def _read_head(self, conn: _Conn, method: str) -> tuple[int, dict[str, str], str, int, bool]:
        got_bytes = False
        async with asyncio.timeout(self.timeout):
            while True:
                end = conn.buf.find(b"\r\n\r\n")
                if end >= 0:
                    raw = bytes(conn.buf[:end])
                    del conn.buf[: end + 4]
                    status, version, headers = _parse_head(raw)
                    if 100 <= status < 200:
                        continue  # 100 Continue and friends: the real answer follows
                    break
                if len(conn.buf) > _MAX_HEAD:
                    raise MalformedResponse("the response head is larger than 64 KiB")
                got_bytes = got_bytes or bool(conn.buf)
                if not await conn.more():
                    if got_bytes or conn.buf:
                        raise ResponseBrokeOff("the connection ended inside the response head")
                    raise Disconnected("the server closed the connection without answering")
        reusable = version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
        if method == "HEAD" or status in _NO_BODY:
            return status, headers, "length", 0, reusable
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return status, headers, "chunked", 0, reusable
        length = headers.get("content-length")
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                raise MalformedResponse(f"bad Content-Length {length[:20]!r}") from None
            if n < 0:
                raise MalformedResponse(f"bad Content-Length {length[:20]!r}")
            return status, headers, "length", n, reusable
        return status, headers, "close", 0, False


def _parse_head(raw: bytes) -> tuple[int, str, dict[str, str]]:
    text = raw.decode("latin-1")
    status_line, *lines = text.split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise MalformedResponse(f"not an HTTP/1.x status line: {status_line[:40]!r}")
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep:
            raise MalformedResponse(f"bad header line: {line[:40]!r}")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), parts[0], headers


_URLS: dict[str, tuple[str, str, int, str]] = {}


def _split_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, request target); a target calls the same few URLs, so they are cached."""
    known = _URLS.get(url)
    if known is not None:
        return known
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise UnsupportedURL(f"expected an http:// or https:// URL, got {url!r}")
    port = parts.port or (443 if scheme == "https" else 80)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    out = (scheme, parts.hostname, port, target)
    if len(_URLS) < 256:
        _URLS[url] = out
    return out
