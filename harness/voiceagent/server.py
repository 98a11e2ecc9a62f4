"""The media-stream server and one call on it (see the package's docstring)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import sys
import time
from typing import Any, Awaitable, Callable

from aiohttp import WSMsgType, web

from ..errors import ConfigError, InfraError
from ..spec import CaseSpec
from ..targets.base import CallContext
from ..targets.sim import SimConfig, parse_faults
from ..targets.sim.conversation import SimConversation
from ..targets.sim.faults import Faults
from ..targets.voice import audio
from ..targets.voice.config import SttConfig, TtsConfig
from ..targets.voice.speech import Tts, make_stt

WORDS_MARK = "caller-words:"  # the test shortcut: a mark telling the words of the caller's next line
DTMF_SETTLE_S = 0.6  # keys pressed within this of each other are one entry
_STEP = audio.FRAME_MS / 1000
_CASE_ID = re.compile(r"[^A-Za-z0-9._-]+")


class _Ctx(CallContext):
    """The runner's part in a sim turn, played by the agent itself: each request made once."""

    def __init__(self, case: CaseSpec, repeat_index: int):
        self.case = case
        self.repeat_index = repeat_index

    async def request(self, fn: Callable[[], Awaitable[Any]], *, what: str = "request") -> Any:
        return await fn()


async def _direct(fn: Callable[[], Awaitable[Any]], what: str) -> Any:
    return await fn()


class VoiceAgentServer:
    """The embedded agent on a media-stream WebSocket (`/media`); `/answers` is its own record
    of when each answer's first audio left it (monotonic clock), for benchmarks and tests."""

    def __init__(self, *, faults: list[str] | None = None, seed: int = 7, end_of_speech_ms: float = 500,
                 reprompt_ms: float = 5000, stt: SttConfig | None = None, tts: TtsConfig | None = None,
                 vad: str = "webrtc", root: str = "."):
        try:
            self.faults = parse_faults(list(faults or []))
        except ValueError as e:
            raise ConfigError(f"--fault: {e}") from None
        if vad == "webrtc":
            import importlib.util

            if importlib.util.find_spec("webrtcvad") is None:
                vad = "energy"
        self.vad = vad
        self.seed = seed
        self.end_of_speech_s = end_of_speech_ms / 1000
        self.reprompt_s = reprompt_ms / 1000
        self.tts = Tts(tts or TtsConfig(), root)
        self.stt = make_stt(stt or SttConfig(kind="none"))
        self.answers: list[dict[str, Any]] = []
        self.calls = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application()
        app.router.add_get("/media", self._media)
        app.router.add_get("/answers", self._answers)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as e:
            await runner.cleanup()
            raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
        self._runner = runner
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"ws://{host}:{bound}/media"
        return self.url

    async def warm(self) -> None:
        """Synthesise the greetings and load the VAD before the first call's clock matters."""
        conv = SimConversation(SimConfig(language="en"), CaseSpec(id="warm", prompt="-"), _Ctx(CaseSpec(id="warm", prompt="-"), 0))
        text = (await conv.greet()).text
        await self.tts.speak(text, "en", _direct)
        audio.make_vad(self.vad)

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.tts.aclose()
        await self.stt.aclose()

    async def _answers(self, request: web.Request) -> web.Response:
        return web.json_response(self.answers)

    async def _media(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=4 * 1024 * 1024)
        await ws.prepare(request)
        self.calls += 1
        await _Call(self, ws).run()
        return ws


class _Call:
    """One caller on the line: hears, decides with the sim's call flow, speaks."""

    def __init__(self, server: VoiceAgentServer, ws: web.WebSocketResponse):
        self.server = server
        self.ws = ws
        self.sid = ""
        self.case = ""
        self.language: str | None = None
        self.faults = Faults()
        self.conv: SimConversation | None = None
        self.vad = audio.make_vad(server.vad)
        self.talking: asyncio.Task | None = None
        self.turns: set[asyncio.Task] = set()
        self.lock = asyncio.Lock()
        self.caller_on = False
        self.last_voice = 0.0
        self.heard: list[Any] = []
        self.told: list[str] = []
        self.telling = False  # the harness tells this call's words (the test shortcut)
        self.digits = ""
        self.digit_at = 0.0
        self.idle_since = time.monotonic()
        self.answered = 0
        self.ended = False

    # --- the line -------------------------------------------------------------------------

    async def run(self) -> None:
        ticker: asyncio.Task | None = None
        try:
            async for msg in self.ws:
                if msg.type != WSMsgType.TEXT:
                    break
                try:
                    m = json.loads(msg.data)
                except ValueError:
                    continue
                event = m.get("event") if isinstance(m, dict) else None
                if event == "start":
                    self._on_start(m.get("start") or {})
                    ticker = asyncio.create_task(self._tick())
                elif event == "media" and self.conv is not None:
                    payload = (m.get("media") or {}).get("payload") or ""
                    self._on_audio(base64.b64decode(payload))
                elif event == "dtmf":
                    self.digits += str((m.get("dtmf") or {}).get("digit", ""))
                    self.digit_at = time.monotonic()
                elif event == "mark":
                    name = str((m.get("mark") or {}).get("name", ""))
                    if name.startswith(WORDS_MARK):
                        self.telling = True
                        self.told.append(name[len(WORDS_MARK):])
                elif event == "stop":
                    break
        finally:
            for task in [ticker, self.talking, *self.turns]:
                if task is not None:
                    task.cancel()

    def _on_start(self, start: dict[str, Any]) -> None:
        self.sid = str(start.get("streamSid", ""))
        params = start.get("customParameters") or {}
        self.case = _CASE_ID.sub("-", str(params.get("case_id") or f"call-{self.server.calls}"))[:100] or "call"
        lang = str(params.get("language") or "")[:2].lower()
        self.language = lang if lang in ("ja", "en") else None
        own = [f for f in str(params.get("faults") or "").split(",") if f.strip()]
        try:
            faults = self.server.faults + parse_faults(own)
        except ValueError:
            faults = self.server.faults
        self.faults = Faults.from_strings(faults)
        try:
            repeat = int(params.get("repeat") or 0)
        except ValueError:
            repeat = 0
        case = CaseSpec(id=self.case, prompt="(voice call)", language=self.language)
        config = SimConfig(language=self.language or "auto", faults=faults, seed=self.server.seed)
        self.conv = SimConversation(config, case, _Ctx(case, repeat))
        self._turn("greet", "")

    def _on_audio(self, data: bytes) -> None:
        now = time.monotonic()
        for i in range(0, len(data) - audio.FRAME_SAMPLES + 1, audio.FRAME_SAMPLES):
            pcm = audio.ulaw_decode(data[i:i + audio.FRAME_SAMPLES])
            if self.vad.is_speech(pcm):
                self.last_voice = now
                if not self.caller_on:
                    self.caller_on = True
                    self.heard = []
                    self._barge_in()
            if self.caller_on:
                self.heard.append(pcm)
                self.idle_since = now
                if now - self.last_voice >= self.server.end_of_speech_s:
                    self.caller_on = False  # the caller stopped talking: the agent's turn
                    self._heard_line()

    def _heard_line(self) -> None:
        if self.told:
            self._turn("say", self.told.pop(0))
        elif not self.telling:
            heard, self.heard = self.heard, []
            self._turn("listen", heard)
        # told words ran out: a pause inside a line the agent already answers, not a new line

    def _barge_in(self) -> None:
        if self.talking is not None and not self.talking.done() and not self.faults.ignores_barge_in:
            self.talking.cancel()
            asyncio.ensure_future(self._send({"event": "clear", "streamSid": self.sid}))

    async def _tick(self) -> None:
        """Keys that settled, and a caller who stays silent, become turns."""
        while not self.ended:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            if self.digits and now - self.digit_at >= DTMF_SETTLE_S:
                digits, self.digits = self.digits, ""
                self.idle_since = now
                self._turn("dtmf", digits)
            busy = self.caller_on or self.lock.locked() or (self.talking is not None and not self.talking.done())
            if busy or self.digits:
                self.idle_since = now
            elif now - self.idle_since >= self.server.reprompt_s:
                self.idle_since = now
                self._turn("silence", "")

    # --- the agent's side -------------------------------------------------------------------

    def _turn(self, kind: str, said: Any) -> None:
        task = asyncio.create_task(self._answer(kind, said))
        self.turns.add(task)
        task.add_done_callback(self.turns.discard)

    async def _answer(self, kind: str, said: Any) -> None:
        conv = self.conv
        assert conv is not None
        async with self.lock:  # one turn of the call flow at a time, in the order heard
            if self.ended:
                return
            if kind == "listen":
                import numpy as np

                pcm = np.concatenate(said) if said else np.zeros(0, np.int16)
                said, kind = await self.server.stt.transcribe(pcm, self.language, _direct), "say"
            try:
                reply = await (conv.greet() if kind == "greet" else conv.reply(said, kind=kind))
            except InfraError as e:  # a simulated 429/503 the agent could not get past: it stays quiet
                print(f"turn not answered: {e}", file=sys.stderr, flush=True)
                return
            if self.language is None:
                self.language = conv.flow.lang
            if reply.text:
                if self.talking is not None and not self.talking.done():
                    self.talking.cancel()
                self.talking = asyncio.create_task(self._speak(reply.text, hang_up=reply.ended))
            elif reply.ended:
                await self._hang_up()

    async def _speak(self, text: str, *, hang_up: bool) -> None:
        f = self.faults
        ulaw = await self.server.tts.speak(text, self.language or "en", _direct)
        frames = audio.frames_of(ulaw)
        if f.dead_air_ms:
            half = len(frames) // 2
            frames = frames[:half] + [audio.SILENT_FRAME] * int(f.dead_air_ms / audio.FRAME_MS) + frames[half:]
        if f.slow_first_audio_ms:
            await asyncio.sleep(f.slow_first_audio_ms / 1000)
        self.answered += 1
        t0 = time.monotonic()
        self.server.answers.append({"case": self.case, "text": text, "first_audio": t0, "answer": self.answered})
        for i, frame in enumerate(frames):  # paced in real time, as a streaming TTS would send it
            await self._send({"event": "media", "streamSid": self.sid,
                              "media": {"payload": base64.b64encode(frame).decode()}})
            delay = t0 + (i + 1) * _STEP - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await self._send({"event": "mark", "streamSid": self.sid, "mark": {"name": f"answer-{self.answered}"}})
        self.idle_since = time.monotonic()
        if f.drops_stream and self.answered >= f.drops_stream:
            self.ended = True
            transport = self.ws._writer.transport if self.ws._writer is not None else None  # type: ignore[attr-defined]
            if transport is not None:
                transport.abort()  # the connection dies without a close frame
        elif hang_up:
            await asyncio.sleep(0.3)  # the last words reach the caller before the line goes
            await self._hang_up()

    async def _hang_up(self) -> None:
        self.ended = True
        await self.ws.close()

    async def _send(self, obj: dict[str, Any]) -> None:
        if not self.ws.closed:
            try:
                await self.ws.send_str(json.dumps(obj, separators=(",", ":"), ensure_ascii=False))
            except (ConnectionError, RuntimeError):
                pass


async def serve_forever(server: VoiceAgentServer, host: str, port: int, *, announce: Callable[[str], None],
                        until: asyncio.Future | None = None) -> None:
    """Start, announce the URL, warm up, and serve until `until` completes (or forever)."""
    url = await server.start(host, port)
    try:
        await server.warm()
        announce(url)
        await (until if until is not None else asyncio.get_running_loop().create_future())
    finally:
        await server.aclose()
