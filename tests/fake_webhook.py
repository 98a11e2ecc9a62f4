"""A local receiver for the generic JSON webhook, verifying signatures as the README tells
receivers to (independently of the harness's own code).

    with FakeWebhook(secret="s3cret") as hook:
        ... url=hook.url ...
        assert hook.deliveries[0]["summary"]["pass_rate"] == 0.75
        assert hook.bad_signatures == []

Served on 127.0.0.1 from a background thread (see `fake_slack.ThreadedFake`); it can be told
to answer 429 or 5xx. A request whose signature does not verify is answered 401 and recorded
in `bad_signatures`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from aiohttp import web
from fake_slack import ThreadedFake


class FakeWebhook(ThreadedFake):
    def __init__(self, secret: str | None = None, path: str = "/hooks/harness/TOKEN-abcdef123456") -> None:
        super().__init__()
        self.secret = secret
        self.path = path
        self.deliveries: list[dict[str, Any]] = []  # accepted, verified JSON bodies
        self.headers: list[dict[str, str]] = []  # headers of every request, answered or refused
        self.bad_signatures: list[str] = []  # why a request was refused

    @property
    def url(self) -> str:
        return self.base_url + self.path

    def routes(self, app: web.Application) -> None:
        app.router.add_post(self.path, self._receive)

    def failure_response(self, request: web.Request, failure: Any) -> web.Response:
        self.headers.append(dict(request.headers))  # a refused attempt is still a request
        return super().failure_response(request, failure)

    def _verify(self, headers: Any, body: bytes) -> str | None:
        """The receiver's check from the README; returns why it failed, or None."""
        stamp = headers.get("X-Harness-Timestamp")
        given = headers.get("X-Harness-Signature")
        if not stamp or not given:
            return "unsigned request"
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > 300:
            return f"stale or bad timestamp {stamp!r}"
        want = "sha256=" + hmac.new(self.secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        return None if hmac.compare_digest(want, given) else "signature mismatch"

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()  # the exact bytes that were signed
        self.headers.append(dict(request.headers))
        if request.headers.get("Content-Type", "").split(";")[0] != "application/json":
            self.bad_signatures.append("not application/json")
            return web.Response(status=415)
        if self.secret is not None:
            why = self._verify(request.headers, body)
            if why is not None:
                self.bad_signatures.append(why)
                return web.Response(status=401, text=why)
        self.deliveries.append(json.loads(body))
        return web.json_response({"ok": True})
