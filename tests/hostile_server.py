"""Hostile or broken OpenAI-compatible servers, for the bounds, secrets and crash tests.

One aiohttp app on 127.0.0.1, in a background thread (see `fake_slack.ThreadedFake`),
answering `/v1/chat/completions` (and any other path) according to `mode`:

- ``huge``: a JSON answer whose content is `size` bytes long, written in 1 MB pieces;
- ``endless_sse``: a stream of SSE deltas that never ends;
- ``gzip_bomb``: a small gzip body that inflates to `size` bytes;
- ``echo``: a 200 answer without `choices` that quotes back every request header;
- ``echo_answer``: a normal answer whose text quotes back every request header;
- ``echo_sse``: an invalid SSE event that quotes back every request header;
- ``echo_500``: a 500 whose body quotes back every request header;
- ``redirect``: a 307 to `redirect_to` (another origin), for every request;
- ``usage``: a normal answer with `usage` as given (a gateway that sends odd numbers);
- ``text``: a normal answer with `answer` as its content.

Run as a script (``python tests/hostile_server.py MODE [SIZE]``) it prints its base URL and
serves until killed: the memory benchmark does this.
"""

from __future__ import annotations

import asyncio
import json
import sys
import zlib
from typing import Any

from aiohttp import web
from fake_slack import ThreadedFake

MB = 1024 * 1024


def _completion(text: str, usage: dict[str, Any] | None = None, model: str = "hostile-1") -> dict[str, Any]:
    return {"id": "x", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": usage or {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


async def _answer(request: web.Request, text: str, usage: dict[str, Any] | None = None) -> web.StreamResponse:
    """A normal answer, streamed as SSE when the request asked for a stream."""
    try:
        stream = bool(json.loads(await request.text()).get("stream"))
    except ValueError:
        stream = False
    if not stream:
        return web.json_response(_completion(text, usage))
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    head = {"id": "x", "object": "chat.completion.chunk", "model": "hostile-1"}
    for choices, extra in (([{"index": 0, "delta": {"role": "assistant", "content": text}}], {}),
                           ([{"index": 0, "delta": {}, "finish_reason": "stop"}], {}),
                           ([], {"usage": usage or {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})):
        await resp.write(b"data: " + json.dumps({**head, "choices": choices, **extra}).encode() + b"\n\n")
    await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof()
    return resp


class HostileServer(ThreadedFake):
    def __init__(self, mode: str, *, size: int = 50 * MB, redirect_to: str = "", answer: str = "ok",
                 usage: dict[str, Any] | None = None, poison: str | None = None) -> None:
        super().__init__()
        self.mode = mode
        self.size = size
        self.redirect_to = redirect_to
        self.answer = answer
        self.usage = usage
        self.poison = poison  # `usage` only for requests whose body contains this text
        self.seen_headers: list[dict[str, str]] = []
        self.bytes_sent = 0

    @property
    def url(self) -> str:
        return self.base_url + "/v1"

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.seen_headers.append(dict(request.headers))
        echoed = json.dumps(dict(request.headers))
        mode = self.mode
        if mode == "redirect":
            raise web.HTTPTemporaryRedirect(self.redirect_to + request.path_qs)
        if mode == "echo":
            return web.json_response({"id": "x", "object": "chat.completion", "echo": echoed})
        if mode == "echo_500":
            return web.Response(status=500, text=f"upstream failed for request {echoed}")
        if mode == "echo_answer":
            return await _answer(request, f"you sent {echoed}")
        if mode == "echo_sse":
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            await resp.write(f"data: {{not json {echoed}\n\n".encode())
            await resp.write_eof()
            return resp
        if mode == "usage":
            raw = await request.text()
            usage = self.usage if self.poison is None or self.poison in raw else None
            return await _answer(request, self.answer, usage)
        if mode == "text":
            return await _answer(request, self.answer)
        if mode == "huge":
            resp = web.StreamResponse(headers={"Content-Type": "application/json"})
            await resp.prepare(request)
            head = b'{"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": "'
            await resp.write(head)
            piece = b"a" * MB
            sent = 0
            try:
                while sent < self.size:
                    await resp.write(piece)
                    sent += len(piece)
                    self.bytes_sent += len(piece)
                await resp.write(b'"}, "finish_reason": "stop"}]}')
                await resp.write_eof()
            except (ConnectionResetError, ConnectionError, RuntimeError):
                pass
            return resp
        if mode == "endless_sse":
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            event = b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": "x" * 4000}}]}).encode() + b"\n\n"
            chunk = event * 64
            try:
                while True:
                    await resp.write(chunk)
                    self.bytes_sent += len(chunk)
                    await asyncio.sleep(0)
            except (ConnectionResetError, ConnectionError, RuntimeError):
                pass
            return resp
        if mode == "gzip_bomb":
            body = _gzip_of_zeros(self.size)
            return web.Response(body=body, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
        return web.Response(status=404)


_BOMBS: dict[int, bytes] = {}


def _gzip_of_zeros(size: int) -> bytes:
    """A gzip body of a JSON answer whose content is `size` spaces (a few hundred KB on the wire)."""
    if size not in _BOMBS:
        c = zlib.compressobj(9, zlib.DEFLATED, 31)
        head = b'{"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": "'
        parts = [c.compress(head)]
        block = b" " * MB
        for _ in range(size // MB):
            parts.append(c.compress(block))
        parts.append(c.compress(b'"}, "finish_reason": "stop"}]}'))
        parts.append(c.flush())
        _BOMBS[size] = b"".join(parts)
    return _BOMBS[size]


def main() -> None:
    import threading

    mode = sys.argv[1]
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 50 * MB
    with HostileServer(mode, size=size) as server:
        print(server.url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
