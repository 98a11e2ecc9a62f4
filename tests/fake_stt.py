"""A local OpenAI-compatible `/v1/audio/transcriptions` endpoint for tests: answers a fixed
text and records each upload (model, whether the file is a WAV, its length)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp import web


class FakeStt:
    def __init__(self, text: str = "hello"):
        self.text = text
        self.uploads: list[dict[str, Any]] = []
        self.authorizations: set[str] = set()
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _transcribe(self, request: web.Request) -> web.Response:
        form = await request.post()
        f = form["file"]
        data = f.file.read()  # type: ignore[union-attr]
        self.authorizations.add(request.headers.get("Authorization", ""))
        self.uploads.append({"model": form.get("model"), "riff": data[:4] == b"RIFF", "bytes": len(data),
                             "language": form.get("language")})
        return web.json_response({"text": self.text})

    def __enter__(self) -> "FakeStt":
        threading.Thread(target=self._serve, daemon=True).start()
        self._ready.wait(10)
        return self

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_post("/v1/audio/transcriptions", self._transcribe)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def __exit__(self, *exc: Any) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
