"""The small HTTP/1.1 client (harness.http11) against a raw local server that answers scripted bytes.

The openai and http target tests cover the common shapes (chunked SSE, Content-Length JSON,
dropped connections); these cover the framing corners a real gateway or proxy may send.
"""

from __future__ import annotations

import asyncio
from typing import Callable

import pytest

from harness.http11 import ConnectFailed, Disconnected, Http11Pool, MalformedResponse, ResponseBrokeOff, UnsupportedURL


class RawServer:
    """Answers each request on a connection with the next bytes from `answers` (a callable
    gets the request bytes). `None` closes the connection without answering."""

    def __init__(self, answers: list[bytes | None | Callable[[bytes], bytes | None]], close_after: bool = False):
        self.answers = list(answers)
        self.close_after = close_after
        self.requests: list[bytes] = []
        self.connections = 0
        self.server: asyncio.base_events.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1/x"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.answers:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                answer = self.answers.pop(0)
                if callable(answer):
                    answer = answer(head + body)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


def pool(**kw) -> Http11Pool:
    return Http11Pool(timeout=kw.pop("timeout", 5.0), max_connections=4, headers={"X-Team": "phone"}, **kw)


async def test_content_length_body_and_keep_alive_reuse():
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    srv = RawServer([ok, ok])
    async with srv as url:
        p = pool()
        for _ in range(2):
            async with await p.request("POST", url, b'{"a": 1}') as resp:
                assert resp.status == 200 and await resp.read() == b"hello"
        await p.aclose()
    assert srv.connections == 1  # the second request reused the connection
    head = srv.requests[0].decode()
    assert head.startswith("POST /v1/x HTTP/1.1\r\n") and "X-Team: phone" in head and "Content-Length: 8" in head


async def test_chunked_with_extensions_trailers_and_split_reads():
    body = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    srv = RawServer([b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body])
    async with srv as url:
        p = pool()
        resp = await p.request("POST", url, b"x")
        pieces = [piece async for piece in resp]
        await p.aclose()
    assert resp.status == 200 and b"".join(pieces) == b"hello world"


async def test_body_until_close_and_connection_close_are_not_reused():
    srv = RawServer([b"HTTP/1.0 200 OK\r\n\r\nuntil the end"], close_after=True)
    async with srv as url:
        p = pool()
        resp = await p.request("GET", url)
        assert await resp.read() == b"until the end"
        resp.release()
        assert not any(p._idle.values())
        await p.aclose()


async def test_a_dropped_idle_connection_is_retried_once_on_a_fresh_one():
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    srv = RawServer([ok, None, ok])  # the server closes the kept connection at the second request
    async with srv as url:
        p = pool()
        assert await (await p.request("POST", url, b"1")).read() == b"ok"
        assert await (await p.request("POST", url, b"2")).read() == b"ok"
        await p.aclose()
    assert srv.connections == 2


async def test_failures_have_their_own_types():
    srv = RawServer([None])
    async with srv as url:
        with pytest.raises(Disconnected):
            await pool().request("POST", url, b"x")
    srv = RawServer([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"], close_after=True)
    async with srv as url:
        resp = await pool().request("POST", url, b"x")
        with pytest.raises(ResponseBrokeOff):
            await resp.read()
    srv = RawServer([b"SMTP ready\r\n\r\n"])
    async with srv as url:
        with pytest.raises(MalformedResponse):
            await pool().request("POST", url, b"x")
    with pytest.raises(UnsupportedURL):
        await pool().request("POST", "ftp://127.0.0.1/x", b"")
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(ConnectFailed):
        await pool().request("POST", f"http://127.0.0.1:{port}/", b"")


async def test_a_silent_server_times_out_waiting_for_the_head():
    srv = RawServer([lambda req: b"", None])  # reads the request, answers nothing, waits for more
    async with srv as url:
        with pytest.raises(TimeoutError):
            await pool(timeout=0.2).request("POST", url, b"x")
