"""A local OpenAI-compatible server for tests and benchmarks, with scriptable faults.

Two ways to run it:

- in-process, on a background thread with its own event loop, so sync and async tests can
  both use it::

      with MockOpenAI(latency_ms=5) as mock:
          mock.script = ["429", "ok"]        # what the next requests get, in order
          ... base_url=mock.base_url ...
          assert mock.requests == 2

- as a subprocess (the benchmark does this): ``python tests/mock_openai.py --port 0
  --latency-ms 50`` prints its base URL (``http://127.0.0.1:PORT/v1``) on the first line.

Behaviours, one per request from `script` (then `default` once the script is used up):
``ok``, ``429`` (with Retry-After), ``500``, ``503`` (with Retry-After), ``401``, ``404``,
``hang`` (answer nothing for `hang_s`), ``malformed_json``, ``truncated_stream`` (a stream
that breaks off mid-answer), ``close`` (drop the connection before answering).
`retry_after_header` names the header the wait goes in (a LiteLLM gateway passes the
provider's on as ``llm_provider-retry-after``); `headers` are added to every answer (a
gateway's ``x-litellm-*``); `echo_key` makes error messages quote the caller's key back,
as some providers do.

It answers deterministically: `reply` may be a callable taking the request's messages, a
mapping of substring → reply (first match in the last user message wins), or None for an
echo. Each request costs little CPU: the benchmark drives thousands per second through it (in
subprocess mode with the default `ok` behaviour and no chunk delay it answers on plain
asyncio, see `_Lean`; `--aiohttp` keeps the aiohttp server).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import signal
import sys
import threading
import time
from typing import Any, Callable, Iterable, Mapping

from aiohttp import web

ReplyRule = Callable[[list[dict[str, Any]]], str] | Mapping[str, str] | None
BEHAVIOURS = ("ok", "429", "500", "503", "401", "404", "hang", "malformed_json", "truncated_stream", "close")


class MockOpenAI:
    """An OpenAI-compatible `/v1/chat/completions` endpoint on 127.0.0.1 with a free port."""

    def __init__(
        self,
        *,
        latency_ms: float = 0.0,
        chunk_delay_ms: float = 0.0,
        reply: ReplyRule = None,
        model: str = "mock-model-2024-01-01",
        fingerprint: str | None = "fp_mock_1",
        retry_after: float | str = 1,
        hang_s: float = 30.0,
        default: str = "ok",
        port: int = 0,
        keep: int = 50,
        retry_after_header: str = "Retry-After",
        headers: Mapping[str, str] | None = None,
        echo_key: bool = False,
    ):
        self.latency_ms = latency_ms
        self.chunk_delay_ms = chunk_delay_ms
        self.reply = reply
        self.model = model
        self.fingerprint = fingerprint
        self.retry_after = retry_after
        self.hang_s = hang_s
        self.default = default
        self.port = port
        self.retry_after_header = retry_after_header
        self.extra_headers = dict(headers or {})
        self.echo_key = echo_key
        self.requests = 0
        self.bodies: collections.deque[dict[str, Any]] = collections.deque(maxlen=keep)
        self.headers: collections.deque[dict[str, str]] = collections.deque(maxlen=keep)  # names lower-cased
        self.behaviours: collections.deque[str] = collections.deque(maxlen=keep)  # what each request got
        self._script: collections.deque[str] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None

    # --- control ---------------------------------------------------------------------

    @property
    def script(self) -> list[str]:
        return list(self._script)

    @script.setter
    def script(self, behaviours: Iterable[str]) -> None:
        behaviours = list(behaviours)
        for b in behaviours:
            if b not in BEHAVIOURS:
                raise ValueError(f"unknown behaviour {b!r} (expected one of {', '.join(BEHAVIOURS)})")
        self._script = collections.deque(behaviours)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def last_body(self) -> dict[str, Any]:
        return self.bodies[-1]

    @property
    def last_headers(self) -> dict[str, str]:
        return self.headers[-1]

    def _next_behaviour(self) -> str:
        try:
            return self._script.popleft()
        except IndexError:
            return self.default

    # --- the app -----------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        return app

    async def start(self) -> None:
        """Start serving in the running loop (the subprocess mode uses this directly)."""
        self._stopping = asyncio.Event()
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def __enter__(self) -> "MockOpenAI":
        started = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as e:  # noqa: BLE001 — handed to the starting thread
                failure.append(e)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        self._thread = threading.Thread(target=serve, name="mock-openai", daemon=True)
        self._thread.start()
        started.wait(10)
        if failure:
            raise failure[0]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    # --- handlers ----------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": self.model, "object": "model"}]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        raw = await request.read()
        behaviour = self._next_behaviour()
        self.behaviours.append(behaviour)
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(400, "invalid_request_error", "request body is not JSON")
        self.bodies.append(body)

        if behaviour == "close":
            return await self._drop(request)
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        if behaviour == "hang":
            assert self._stopping is not None
            try:
                await asyncio.wait_for(self._stopping.wait(), self.hang_s)
            except asyncio.TimeoutError:
                pass
            return _error(504, "timeout", "the mock hung")
        wait = {self.retry_after_header: str(self.retry_after)}
        key = f" (key: {request.headers.get('Authorization', '').removeprefix('Bearer ')})" if self.echo_key else ""
        if behaviour == "429":
            return self._error(429, "rate_limit_exceeded", "Rate limit reached" + key, wait)
        if behaviour == "500":
            return self._error(500, "server_error", "The server had an error while processing your request" + key)
        if behaviour == "503":
            return self._error(503, "overloaded", "The engine is currently overloaded" + key, wait)
        if behaviour == "401":
            return self._error(401, "invalid_api_key", "Incorrect API key provided" + key)
        if behaviour == "404":
            return self._error(404, "not_found", "Unknown route" + key)

        if body.get("stream"):
            return await self._stream(request, body, behaviour)
        if behaviour == "malformed_json":
            return web.Response(body=b'{"id": "chatcmpl-mock", "choices": [{"message": ',
                                content_type="application/json", headers=self.extra_headers)
        return web.Response(body=self.completion(body), content_type="application/json", headers=self.extra_headers)

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
        return _error(status, code, message, {**self.extra_headers, **(headers or {})})

    def _answer(self, body: dict[str, Any]) -> tuple[str, dict[str, int]]:
        messages = body.get("messages") or []
        text = self._reply_text(messages)
        usage = {
            "prompt_tokens": sum(len(str(m.get("content", ""))) for m in messages) // 4 + 1,
            "completion_tokens": len(text.split()) or 1,
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return text, usage

    def completion(self, body: dict[str, Any]) -> bytes:
        """The JSON body of a non-streamed answer to the request `body`."""
        text, usage = self._answer(body)
        out = {
            "id": "chatcmpl-mock",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "system_fingerprint": self.fingerprint,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": usage,
        }
        return json.dumps(out).encode()

    def events(self, body: dict[str, Any]) -> tuple[bytes, bytes]:
        """The server-sent events of a streamed answer: (up to the first token, the rest)."""
        text, usage = self._answer(body)
        head = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": self.model, "system_fingerprint": self.fingerprint}

        def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            return b"data: " + json.dumps({**head, "choices": choices, **extra}).encode() + b"\n\n"

        pieces = _split(text)
        first = event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        first += b": keep-alive\n\n" + event([{"index": 0, "delta": {"content": pieces[0]}, "finish_reason": None}])
        rest = b"".join(event([{"index": 0, "delta": {"content": p}, "finish_reason": None}]) for p in pieces[1:])
        rest += event([{"index": 0, "delta": {}, "finish_reason": "stop"}])
        if (body.get("stream_options") or {}).get("include_usage"):
            rest += event([], usage=usage)
        return first, rest + b"data: [DONE]\n\n"

    async def _stream(self, request: web.Request, body: dict[str, Any], behaviour: str) -> web.StreamResponse:
        first, rest = self.events(body)
        resp = web.StreamResponse(headers={**_SSE_HEADERS, **self.extra_headers})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.write(first)
        if behaviour == "malformed_json":
            await resp.write(b"data: {\"choices\": [{\"delta\": \n\n")
            await resp.write_eof()
            return resp
        if behaviour == "truncated_stream":
            return await self._drop(request, resp)
        if self.chunk_delay_ms:
            await asyncio.sleep(self.chunk_delay_ms / 1000)
        await resp.write(rest)
        await resp.write_eof()
        return resp

    async def _drop(self, request: web.Request, resp: web.StreamResponse | None = None) -> web.StreamResponse:
        """Close the socket without finishing the answer, as a crashed upstream does."""
        transport = request.transport
        if transport is not None:
            transport.close()
        # aiohttp will not write to the closed socket; a response object is still required.
        return resp if resp is not None else web.Response(status=500)

    def _reply_text(self, messages: list[dict[str, Any]]) -> str:
        last_user = next((str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"), "")
        rule = self.reply
        if callable(rule):
            return rule(messages)
        if rule:
            for needle, answer in rule.items():
                if needle in last_user:
                    return answer
        return f"You said: {last_user}"


_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


def _split(text: str) -> list[str]:
    """Three-ish pieces, so a stream has a first token and a rest."""
    if len(text) < 3:
        return [text]
    a, b = len(text) // 3, 2 * len(text) // 3
    return [text[:a], text[a:b], text[b:]]


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = json.dumps({"error": {"message": message, "type": code, "code": code}}).encode()
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


# --- subprocess mode ---------------------------------------------------------------------


class _Lean(asyncio.Protocol):
    """The subprocess mode's server when every request is `ok` and the stream has no pauses.

    The benchmark sends a thousand requests a second through it, in waves of C at a time:
    whatever CPU each one costs here delays the whole wave, and aiohttp's server spends
    about 0.2 ms a request. This answers the same bytes (`MockOpenAI.events`/`completion`,
    chunked SSE or JSON) on plain asyncio, at a fraction of that. Anything it does not
    expect gets a 400 and a closed connection.
    """

    def __init__(self, mock: MockOpenAI):
        self.mock = mock
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            method, path, *_ = lines[0].split(" ")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "transfer-encoding":
                    return self._reply(b"400 Bad Request", b"application/json", b'{"error": "chunked upload"}', True)
            if len(self.buf) < end + 4 + length:
                return
            raw = bytes(self.buf[end + 4 : end + 4 + length])
            del self.buf[: end + 4 + length]
            self._request(method, path, raw)

    def _request(self, method: str, path: str, raw: bytes) -> None:
        if method == "GET" and path == "/v1/models":
            body = json.dumps({"object": "list", "data": [{"id": self.mock.model, "object": "model"}]}).encode()
            return self._reply(b"200 OK", b"application/json", body)
        if method != "POST" or path != "/v1/chat/completions":
            return self._reply(b"404 Not Found", b"application/json", b'{"error": "not found"}')
        self.mock.requests += 1
        try:
            body = json.loads(raw)
        except ValueError:
            return self._reply(b"400 Bad Request", b"application/json", b'{"error": "request body is not JSON"}')
        if body.get("stream"):
            first, rest = self.mock.events(body)
            answer = (b"200 OK", b"text/event-stream", first + rest)
        else:
            answer = (b"200 OK", b"application/json", self.mock.completion(body))
        self.loop.call_later(self.mock.latency_ms / 1000, self._reply, *answer)

    def _reply(self, status: bytes, content_type: bytes, body: bytes, close: bool = False) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        head = b"HTTP/1.1 " + status + b"\r\nContent-Type: " + content_type + b"\r\nCache-Control: no-cache\r\n"
        if content_type == b"text/event-stream":  # chunked, as a streaming server sends it
            head += b"Transfer-Encoding: chunked\r\n\r\n"
            self.transport.write(head + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
        else:
            self.transport.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        if close:
            self.transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.transport = None


async def _serve(args: argparse.Namespace) -> None:
    mock = MockOpenAI(port=args.port, latency_ms=args.latency_ms, chunk_delay_ms=args.chunk_delay_ms,
                      model=args.model, fingerprint=args.fingerprint or None, retry_after=args.retry_after,
                      default=args.default)
    server = None
    if args.default == "ok" and not args.chunk_delay_ms and not args.aiohttp:
        server = await asyncio.get_running_loop().create_server(lambda: _Lean(mock), "127.0.0.1", args.port)
        mock.port = server.sockets[0].getsockname()[1]
    else:
        await mock.start()
    print(mock.base_url, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not on this platform
            pass
    await stop.wait()
    if server is not None:
        server.close()
    await mock.stop()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="A local OpenAI-compatible mock server.")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--latency-ms", type=float, default=0.0, help="delay before the first token")
    p.add_argument("--chunk-delay-ms", type=float, default=0.0, help="delay between the first token and the rest")
    p.add_argument("--model", default="mock-model-2024-01-01")
    p.add_argument("--fingerprint", default="fp_mock_1")
    p.add_argument("--retry-after", default="1")
    p.add_argument("--default", default="ok", choices=BEHAVIOURS, help="behaviour for every request")
    p.add_argument("--aiohttp", action="store_true", help="serve with aiohttp even when the lean server would do")
    args = p.parse_args(argv)
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main(sys.argv[1:])
