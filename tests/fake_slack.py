"""A local stand-in for Slack: incoming webhooks and the Web API's chat.postMessage.

It runs an aiohttp server on 127.0.0.1 in its own thread (so the code under test can use
its own event loop, as the pipeline does), checks each message against Slack's Block Kit
limits, records what it accepted and every raw body it received, and can be told to
answer 429 with Retry-After or 5xx.

    with FakeSlack() as slack:
        spec = SlackSpec(webhook_url=slack.webhook_url)
        slack.fail(429, times=1, retry_after=0)
        ...
        assert slack.messages[0]["blocks"][0]["type"] == "header"
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

BODY = web.RequestKey("body", str)  # the decoded request body, read once by the middleware
BLOCK_TYPES = {"header", "section", "context", "divider", "actions", "image", "rich_text", "input"}


@dataclass
class Failure:
    status: int
    retry_after: float | None = None
    headers: dict[str, str] | None = None


class ThreadedFake:
    """An aiohttp app served from a background thread; subclasses add routes."""

    def __init__(self) -> None:
        self.raw: list[str] = []  # every request body, accepted or not
        self.requests: list[dict[str, Any]] = []  # method, path, status answered
        self._failures: deque[Failure | None] = deque()  # None: serve this one
        self._always: Failure | None = None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- scripting

    def fail(self, status: int, *, times: int = 1, retry_after: float | None = None,
             headers: dict[str, str] | None = None, after: int = 0) -> None:
        """Serve `after` requests normally, then answer `times` requests with `status`."""
        with self._lock:
            self._failures.extend([None] * after)
            for _ in range(times):
                self._failures.append(Failure(status, retry_after, headers))

    def fail_always(self, status: int | None) -> None:
        """Answer every request with `status` until called with None."""
        with self._lock:
            self._always = Failure(status) if status else None

    def heal(self) -> None:
        """Forget every scripted failure: serve normally from now on."""
        with self._lock:
            self._failures.clear()
            self._always = None

    def _next_failure(self) -> Failure | None:
        with self._lock:
            if self._always:
                return self._always
            return self._failures.popleft() if self._failures else None

    # -- lifetime

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def __enter__(self):
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            app = web.Application(middlewares=[self._record])
            self.routes(app)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # the OS picked a free port
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    @web.middleware
    async def _record(self, request: web.Request, handler):
        text = _decode(await request.read(), request.headers.get("Content-Encoding"))
        request[BODY] = text
        self.raw.append(text)
        failure = self._next_failure()
        if failure is not None:
            response = self.failure_response(request, failure)
        else:
            response = await handler(request)
        self.requests.append({"method": request.method, "path": request.path, "status": response.status})
        return response

    def failure_response(self, request: web.Request, failure: Failure) -> web.Response:
        headers = dict(failure.headers or {})
        if failure.retry_after is not None:
            headers["Retry-After"] = str(int(failure.retry_after))
        return web.Response(status=failure.status, text="failure injected by the test", headers=headers)


def _decode(body: bytes, encoding: str | None) -> str:
    import gzip
    import zlib

    if encoding == "gzip":
        body = gzip.decompress(body)
    elif encoding == "deflate":
        body = zlib.decompress(body)
    return body.decode("utf-8", "replace")


def block_problems(blocks: Any) -> list[str]:
    """What Slack would reject in a list of blocks (the limits of Block Kit's reference)."""
    out = []
    if not isinstance(blocks, list):
        return ["blocks is not a list"]
    if len(blocks) > 50:
        out.append(f"{len(blocks)} blocks (max 50)")
    for i, b in enumerate(blocks):
        kind = b.get("type") if isinstance(b, dict) else None
        if kind not in BLOCK_TYPES:
            out.append(f"block {i}: unknown type {kind!r}")
            continue
        if kind == "header":
            t = b.get("text") or {}
            if t.get("type") != "plain_text" or not 0 < len(t.get("text", "")) <= 150:
                out.append(f"block {i}: header text must be plain_text of 1..150 characters")
        elif kind == "section":
            t = b.get("text")
            fields = b.get("fields")
            if t is None and not fields:
                out.append(f"block {i}: section needs text or fields")
            if t is not None and not 0 < len(t.get("text", "")) <= 3000:
                out.append(f"block {i}: section text of {len(t.get('text', ''))} characters (max 3000)")
            if fields and (len(fields) > 10 or any(len(f.get("text", "")) > 2000 for f in fields)):
                out.append(f"block {i}: section fields over the limits")
        elif kind == "context":
            els = b.get("elements") or []
            if not 0 < len(els) <= 10:
                out.append(f"block {i}: context needs 1..10 elements")
            if any(len(e.get("text", "")) > 3000 for e in els):
                out.append(f"block {i}: context element text over 3000")
        elif kind == "actions":
            for e in b.get("elements") or []:
                if e.get("type") == "button":
                    if len(e.get("text", {}).get("text", "")) > 75:
                        out.append(f"block {i}: button text over 75")
                    if len(e.get("url", "")) > 3000:
                        out.append(f"block {i}: button url over 3000")
    return out


class FakeSlack(ThreadedFake):
    """Webhook at /services/T000/B000/<secret>; Web API under /api/ with a bot token."""

    def __init__(self, webhook_secret: str = "WEBHOOKSECRET0123456789ab", token: str = "xoxb-test-TOKEN-9876543210"):
        super().__init__()
        self.webhook_secret = webhook_secret
        self.token = token
        self.messages: list[dict[str, Any]] = []  # accepted messages, with "via" and "channel"
        self.problems: list[str] = []  # why messages were refused
        self._ts = 1_700_000_000

    @property
    def webhook_url(self) -> str:
        return f"{self.base_url}/services/T000/B000/{self.webhook_secret}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/services/{team}/{bot}/{secret}", self._webhook)
        app.router.add_post("/api/chat.postMessage", self._post_message)

    def failure_response(self, request: web.Request, failure: Failure) -> web.Response:
        if request.path.startswith("/api/"):
            headers = {"Retry-After": str(int(failure.retry_after))} if failure.retry_after is not None else {}
            error = "ratelimited" if failure.status == 429 else "fatal_error"
            return web.json_response({"ok": False, "error": error}, status=failure.status, headers=headers)
        return super().failure_response(request, failure)

    def _check(self, message: dict[str, Any]) -> list[str]:
        problems = []
        text = message.get("text")
        if not isinstance(text, str) or not text:
            problems.append("text (the notification fallback) is missing")
        elif len(text) > 4000:
            problems.append(f"text of {len(text)} characters (max 4000)")
        if "blocks" in message:
            problems += block_problems(message["blocks"])
        return problems

    async def _webhook(self, request: web.Request) -> web.Response:
        if request.match_info["secret"] != self.webhook_secret:
            return web.Response(status=404, text="no_service")
        try:
            message = json.loads(await request.text())
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        problems = self._check(message)
        if problems:
            self.problems += problems
            return web.Response(status=400, text="invalid_blocks")
        if "thread_ts" in message:
            return web.Response(status=400, text="invalid_payload")  # a webhook has no thread to reply to
        self.messages.append({**message, "via": "webhook"})
        return web.Response(text="ok")

    async def _post_message(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if request.content_type == "application/json":
            message = await request.json()
        else:
            message = {k: v[0] for k, v in parse_qs(await request.text()).items()}
            if "blocks" in message:
                message["blocks"] = json.loads(message["blocks"])
        if not message.get("channel"):
            return web.json_response({"ok": False, "error": "channel_not_found"})
        problems = self._check(message)
        if problems:
            self.problems += problems
            return web.json_response({"ok": False, "error": "invalid_blocks"})
        if message.get("thread_ts") and not any(m.get("ts") == message["thread_ts"] for m in self.messages):
            return web.json_response({"ok": False, "error": "thread_not_found"})
        self._ts += 1
        ts = f"{self._ts}.000100"
        self.messages.append({**message, "via": "bot", "ts": ts})
        return web.json_response({"ok": True, "channel": "C0TEST", "ts": ts, "message": {"text": message["text"]}})
