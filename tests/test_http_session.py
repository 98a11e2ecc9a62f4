"""The targets' HTTP session (harness.httpclient.Session, on aiohttp) against a raw local
server that answers scripted bytes.

The openai and http target tests cover the common shapes (chunked SSE, Content-Length JSON,
dropped connections); these cover the framing corners a real gateway or proxy may send, and
check that each transport failure becomes the right `InfraError` kind and message.
"""

from __future__ import annotations

import asyncio
from typing import Callable

import pytest

from harness.errors import InfraError
from harness.httpclient import Session

Answer = bytes | None | Callable[[bytes], bytes | None]


class RawServer:
    """Answers each request on a connection with the next bytes from `answers` (a callable
    gets the request bytes). `None` closes the connection without answering."""

    def __init__(self, answers: list[Answer], close_after: bool = False):
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
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        writer.close()


def session(**kw) -> Session:
    return Session(timeout=kw.pop("timeout", 5.0), max_connections=4, headers={"X-Team": "phone"}, **kw)


async def exchange(s: Session, url: str, body: bytes = b"x", method: str = "POST") -> tuple[int, bytes]:
    reply = await s.send(method, url, body, endpoint="ep")
    try:
        return reply.status, await reply.read()
    finally:
        await reply.aclose()


async def failure(url: str, answers: list[Answer] | None = None, **kw) -> InfraError:
    """The InfraError one request (and reading its body) ends in."""
    s = session(**kw)
    try:
        with pytest.raises(InfraError) as err:
            await exchange(s, url)
    finally:
        await s.aclose()
    return err.value


async def test_content_length_body_and_keep_alive_reuse():
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    srv = RawServer([ok, ok])
    async with srv as url:
        s = session()
        for _ in range(2):
            assert await exchange(s, url, b'{"a": 1}') == (200, b"hello")
        await s.aclose()
    assert srv.connections == 1  # the second request reused the connection
    head = srv.requests[0].decode()
    assert head.startswith("POST /v1/x HTTP/1.1\r\n") and "X-Team: phone" in head and "Content-Length: 8" in head


async def test_chunked_with_extensions_trailers_arrives_in_pieces():
    body = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    srv = RawServer([b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body])
    async with srv as url:
        s = session()
        reply = await s.send("POST", url, b"x", endpoint="ep")
        pieces = [piece async for piece in reply.iter_bytes()]
        await reply.aclose()
        await s.aclose()
    assert reply.status == 200 and b"".join(pieces) == b"hello world"


async def test_body_until_close_is_read_to_the_end_and_not_reused():
    srv = RawServer([b"HTTP/1.0 200 OK\r\n\r\nuntil the end"] * 2, close_after=True)
    async with srv as url:
        s = session()
        assert await exchange(s, url, method="GET") == (200, b"until the end")
        assert await exchange(s, url, method="GET") == (200, b"until the end")
        await s.aclose()
    assert srv.connections == 2


async def test_headers_are_case_insensitive_and_a_gzip_body_is_unpacked():
    import gzip

    packed = gzip.compress(b'{"ok": true}')
    srv = RawServer([b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nContent-Encoding: gzip\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(packed) + packed])
    async with srv as url:
        s = session()
        reply = await s.send("POST", url, b"x", endpoint="ep")
        assert reply.status == 429 and reply.headers.get("retry-after") == "3"
        assert await reply.read() == b'{"ok": true}'
        await reply.aclose()
        await s.aclose()


async def test_a_dropped_idle_connection_is_retried_once_on_a_fresh_one():
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    srv = RawServer([ok, None, ok])  # the server closes the kept connection at the second request
    async with srv as url:
        s = session()
        assert await exchange(s, url, b"1") == (200, b"ok")
        assert await exchange(s, url, b"2") == (200, b"ok")
        await s.aclose()
    assert srv.connections == 2 and len(srv.requests) == 3


async def test_a_fresh_connection_closed_without_an_answer_is_not_retried_here():
    srv = RawServer([None, None])
    async with srv as url:
        err = await failure(url)
    assert (err.kind, err.detail) == ("connection", "the server closed the connection without answering")
    assert err.endpoint == "ep" and len(srv.requests) == 1  # the runner decides about retries


async def test_a_body_that_breaks_off_is_a_retryable_protocol_error():
    for answer in (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
                   b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"):
        srv = RawServer([answer], close_after=True)
        async with srv as url:
            err = await failure(url)
        assert (err.kind, err.retryable) == ("protocol", True)
        assert err.detail == "the response broke off before it was complete"


async def test_a_response_that_is_not_http_is_a_protocol_error():
    srv = RawServer([b"SMTP ready\r\n\r\n"])
    async with srv as url:
        err = await failure(url)
    assert err.kind == "protocol" and err.detail.startswith("the response is not valid HTTP")


async def test_connection_refused():
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    err = await failure(f"http://127.0.0.1:{port}/")
    assert (err.kind, err.detail) == ("connection", "connection refused")


async def test_a_silent_server_times_out_waiting_for_the_response():
    srv = RawServer([lambda req: b"", None])  # reads the request, answers nothing, waits for more
    async with srv as url:
        err = await failure(url, timeout=0.2)
    assert (err.kind, err.detail) == ("timeout", "timed out waiting for the response")


async def test_a_stream_that_stalls_times_out_while_reading():
    srv = RawServer([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", None])
    async with srv as url:
        s = session(timeout=0.2)
        reply = await s.send("POST", url, b"x", endpoint="ep")
        pieces = []
        with pytest.raises(InfraError) as err:
            async for piece in reply.iter_bytes():
                pieces.append(piece)
        await reply.aclose()
        await s.aclose()
    assert pieces == [b"hello"]  # what came before the stall was handed over as it came
    assert (err.value.kind, err.value.detail) == ("timeout", "timed out waiting for the response")


async def test_user_info_in_the_url_becomes_basic_auth():
    srv = RawServer([b"HTTP/1.1 204 No Content\r\n\r\n"])
    async with srv as url:
        s = session()
        assert await exchange(s, url.replace("http://", "http://ana:s%40cret@")) == (204, b"")
        await s.aclose()
    assert b"Authorization: Basic YW5hOnNAY3JldA==" in srv.requests[0]  # ana:s@cret


async def test_a_proxy_from_the_environment_gets_the_whole_url(monkeypatch):
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    proxy = RawServer([ok, ok])
    async with proxy as proxy_url:
        monkeypatch.setenv("HTTP_PROXY", proxy_url.rsplit("/v1", 1)[0].replace("http://", "http://u:p@"))
        monkeypatch.setenv("NO_PROXY", "skip.example")
        s = session()
        assert await exchange(s, "http://agent.example:8080/turn") == (200, b"ok")
        await s.aclose()
        # a host NO_PROXY names goes direct: nothing listens there, so the connection fails
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        s = session()
        with pytest.raises(InfraError):
            await exchange(s, "http://127.0.0.1:9/turn")
        await s.aclose()
    head = proxy.requests[0].decode()
    assert head.startswith("POST http://agent.example:8080/turn HTTP/1.1\r\n")
    assert "Proxy-Authorization: Basic dTpw" in head  # u:p
    assert len(proxy.requests) == 1
