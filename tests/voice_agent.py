"""A voice agent on a Twilio Media Streams WebSocket, for tests: real audio, scriptable faults.

Faults apply to every call, or per case with `per_case` (the harness sends the case id
in `start.customParameters`). It runs in-process on a background thread with its own event loop, like tests/mock_openai.py::

    with VoiceAgent(faults={"slow_first_audio_ms": 3000}) as agent:
        ... url=agent.url ...

It listens to the caller with an energy detector on the μ-law frames it receives; when the
caller has been quiet for `end_of_speech_ms` after talking (or pressed a key), it answers
with espeak-ng audio, paced in real time (20 ms frames) or, with `burst`, all at once like
an agent that leaves the buffering to the network. When the caller talks over an answer it
stops and sends `clear`. It keeps its own record of when each answer's first audio left it
(`answers`), which the tests compare with what the harness measured.

Faults: `slow_first_audio_ms` (delay before an answer), `ignore_barge_in` (talks on),
`dead_air_ms` (a silence in the middle of each answer), `drop_after` (aborts the TCP
connection after that many answers), `hang_up_after` (closes the stream cleanly after that
many answers), `talk_over` (starts an answer while the caller is still talking),
`silent` (never answers), `no_greeting`, `reprompt_ms` (speaks up after that much caller
silence).
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import threading
import time
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web

from harness.targets.voice import audio

GREETING = "Hello, thanks for calling the restaurant. How can I help?"
ANSWER = "Certainly. We have a table at seven tonight. Shall I book it for you?"
KEYS = "You pressed {digits}. Connecting you now."
REPROMPT = "Are you still there?"

_TTS: dict[str, bytes] = {}


def speak(text: str) -> bytes:
    """espeak-ng → 8 kHz μ-law (trimmed), cached."""
    if text not in _TTS:
        wav = subprocess.run(["espeak-ng", "-v", "en-us", "--stdout", text], capture_output=True, check=True).stdout
        pcm, rate = audio.read_wav(wav)
        _TTS[text] = audio.ulaw_encode(audio.trim(audio.resample(pcm, rate)))
    return _TTS[text]


class _Call:
    def __init__(self, agent: "VoiceAgent", ws: web.WebSocketResponse):
        self.agent = agent
        self.ws = ws
        self.faults = dict(agent.faults)
        self.sid = ""
        self.talking: asyncio.Task | None = None
        self.caller_active = False
        self.last_voice = 0.0
        self.last_activity = time.monotonic()
        self.answers = 0
        self.marks: list[str] = []
        self.start: dict[str, Any] = {}

    async def send(self, obj: dict[str, Any]) -> None:
        if not self.ws.closed:
            await self.ws.send_str(json.dumps(obj))

    async def say(self, text: str) -> None:
        """Answer with audio; a barge-in cancels it (and sends `clear`)."""
        f = self.faults
        delay = f.get("slow_first_audio_ms", 0) / 1000
        if delay:
            await asyncio.sleep(delay)
        frames = audio.frames_of(speak(text))
        if f.get("dead_air_ms"):
            half = len(frames) // 2
            frames = frames[:half] + [audio.SILENT_FRAME] * int(f["dead_air_ms"] / 20) + frames[half:]
        self.answers += 1
        self.agent.answers.append({"text": text, "first_audio": time.monotonic(), "case": self.start.get("case_id")})
        if f.get("burst"):
            payload = base64.b64encode(b"".join(frames)).decode()
            await self.send({"event": "media", "streamSid": self.sid, "media": {"payload": payload}})
            await self.send({"event": "mark", "streamSid": self.sid, "mark": {"name": f"answer-{self.answers}"}})
        else:
            t0 = time.monotonic()
            for i, fr in enumerate(frames):
                await self.send({"event": "media", "streamSid": self.sid,
                                 "media": {"payload": base64.b64encode(fr).decode()}})
                await asyncio.sleep(max(0.0, t0 + (i + 1) * 0.02 - time.monotonic()))
        self.last_activity = time.monotonic()
        await self._after_answer()

    async def _after_answer(self) -> None:
        f = self.faults
        if f.get("drop_after") and self.answers >= f["drop_after"]:
            self.ws._writer.transport.abort()  # the TCP connection dies without a close frame
        elif f.get("hang_up_after") and self.answers >= f["hang_up_after"]:
            await asyncio.sleep(0.2)
            await self.ws.close()

    def answer(self, text: str) -> None:
        if self.faults.get("silent"):
            return
        if self.talking and not self.talking.done():
            self.talking.cancel()
        self.talking = asyncio.create_task(self.say(text))

    async def barge_in(self) -> None:
        if self.talking and not self.talking.done() and not self.faults.get("ignore_barge_in"):
            self.talking.cancel()
            self.agent.barge_ins.append(time.monotonic())
            await self.send({"event": "clear", "streamSid": self.sid})

    async def run(self) -> None:
        async for msg in self.ws:
            if msg.type != WSMsgType.TEXT:
                break
            m = json.loads(msg.data)
            self.agent.events.append(m["event"])
            ev = m["event"]
            if ev == "start":
                self.sid = m["streamSid"]
                self.start = m["start"]["customParameters"]
                self.faults.update(self.agent.per_case.get(self.start.get("case_id", ""), {}))
                self.agent.starts.append(m["start"])
                if not self.faults.get("no_greeting"):
                    self.answer(GREETING)
            elif ev == "media":
                await self.on_audio(base64.b64decode(m["media"]["payload"]))
            elif ev == "dtmf":
                self.agent.digits += m["dtmf"]["digit"]
                self.pending_digits = getattr(self, "pending_digits", "") + m["dtmf"]["digit"]
                self.digit_at = time.monotonic()
            elif ev == "mark":
                self.marks.append(m["mark"]["name"])
                self.agent.marks.append(m["mark"]["name"])
            elif ev == "stop":
                self.agent.stops += 1
                break
        if self.talking:
            self.talking.cancel()

    async def on_audio(self, data: bytes) -> None:
        now = time.monotonic()
        pcm = audio.ulaw_decode(data)
        loud = float(np.sqrt(np.mean(pcm.astype(np.float32) ** 2))) > 300
        speaking = self.talking is not None and not self.talking.done()
        if loud:
            if not self.caller_active:
                self.caller_active = True
                if speaking:
                    await self.barge_in()
                if self.faults.get("talk_over"):
                    self.answer(ANSWER)
            self.last_voice = now
            self.last_activity = now
        elif self.caller_active and now - self.last_voice > self.agent.end_of_speech_ms / 1000:
            self.caller_active = False
            if not self.faults.get("talk_over"):
                self.answer(ANSWER)
        digits = getattr(self, "pending_digits", "")
        if digits and now - self.digit_at > 0.4:
            self.pending_digits = ""
            self.answer(KEYS.format(digits=" ".join(digits)))
        reprompt = self.faults.get("reprompt_ms")
        if reprompt and not speaking and not self.caller_active and now - self.last_activity > reprompt / 1000:
            self.last_activity = now
            self.answer(REPROMPT)


class VoiceAgent:
    def __init__(self, faults: dict[str, Any] | None = None, end_of_speech_ms: float = 300,
                 per_case: dict[str, dict[str, Any]] | None = None):
        self.faults = dict(faults or {})
        self.per_case = dict(per_case or {})  # case id (sent in customParameters) → its own faults
        self.end_of_speech_ms = end_of_speech_ms
        self.answers: list[dict[str, Any]] = []
        self.barge_ins: list[float] = []
        self.events: list[str] = []
        self.starts: list[dict[str, Any]] = []
        self.marks: list[str] = []
        self.digits = ""
        self.stops = 0
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/media"

    async def _handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await _Call(self, ws).run()
        return ws

    async def _answers(self, request: web.Request) -> web.Response:
        """Its own record of every answer (for bench/bench_voice.py, which runs it in a process)."""
        return web.json_response(self.answers)

    def __enter__(self) -> "VoiceAgent":
        speak(GREETING), speak(ANSWER), speak(REPROMPT)  # synthesise before the clock matters
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_get("/media", self._handler)
        app.router.add_get("/answers", self._answers)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._runner = runner
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    def __exit__(self, *exc: Any) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)


if __name__ == "__main__":  # python tests/voice_agent.py: serve until killed, print the URL
    import signal
    import sys

    with VoiceAgent() as served:
        print(served.url, flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
        sys.exit(0)
