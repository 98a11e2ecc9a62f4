"""One call's media stream: the harness as the phone network on a Twilio Media Streams WebSocket.

The line sends the caller's audio on a real-time 20 ms clock (silence frames whenever the
caller is quiet, as a phone line does) and plays the agent's audio out of a playback buffer
at the same rate, so what the harness measures is what a caller would hear: audio the agent
sends faster than real time is queued, `clear` drops what is queued, and a `mark` is echoed
once the audio before it has played (or at once when cleared), as Twilio does.

Times are seconds on the event loop's clock; `t0` is when the stream started.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import InfraError
from . import audio

# A WebSocket close that means "the agent hung up" rather than "the stream broke".
_CLEAN_CLOSES = {1000, 1001}


@dataclass(eq=False)
class Utterance:
    """Audio the caller speaks (or keys) in one go; times are set as its frames go out."""

    frames: list[bytes]
    dtmf: list[tuple[int, str]] = field(default_factory=list)  # (frame index, digit): event sent before that frame
    started_at: float | None = None
    ended_at: float | None = None
    pos: int = 0
    done: asyncio.Future | None = None


@dataclass(slots=True)
class AgentFrame:
    t: float  # when it plays
    voiced: bool
    pcm: np.ndarray


class Line:
    """The phone network's side of one call."""

    def __init__(self, ws: Any, *, vad: audio.Vad, custom: dict[str, str], max_audio_s: float,
                 endpoint: str, dtmf_tones: bool = False, record: bool = False):
        self.ws = ws
        self.vad = vad
        self.custom = custom
        self.endpoint = endpoint
        self.dtmf_tones = dtmf_tones
        self.stream_sid = "MZ" + uuid.uuid4().hex
        self.call_sid = "CA" + uuid.uuid4().hex
        self.account_sid = "AC" + "0" * 32
        self.loop = asyncio.get_running_loop()
        self.t0 = 0.0
        self._seq = 0
        self._queue: deque[Utterance] = deque()
        self.caller: list[tuple[float, float]] = []  # (start, end) of each caller utterance
        self.dtmf_sent: list[tuple[float, str]] = []
        self.agent: list[AgentFrame] = []
        self._residual = b""
        self.play_end = 0.0  # when the agent audio queued so far finishes playing
        self.clears: list[float] = []
        self.marks_sent: list[tuple[float, str]] = []
        self._pending_marks: list[tuple[float, str, asyncio.TimerHandle]] = []
        self.lateness: list[float] = []  # seconds each caller frame went out after its slot
        self.closed: asyncio.Future = self.loop.create_future()  # → (clean, code)
        self.closed_at: float | None = None
        self._changed = asyncio.Event()
        self._max_frames = int(max_audio_s * 1000 / audio.FRAME_MS)
        self.max_s = max_audio_s  # the line hangs up by itself after this long, whatever happens to the call
        self._tasks: list[asyncio.Task] = []
        self.record = record
        self.sent = bytearray()  # the caller's track, kept only when recording

    # --- life of the stream -------------------------------------------------------------------

    async def start(self) -> None:
        await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        self.t0 = self.loop.time()
        self.play_end = self.t0
        await self._send({
            "event": "start", "sequenceNumber": self._next_seq(), "streamSid": self.stream_sid,
            "start": {"streamSid": self.stream_sid, "accountSid": self.account_sid, "callSid": self.call_sid,
                      "tracks": ["inbound"], "customParameters": self.custom,
                      "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": audio.RATE, "channels": 1}},
        })
        self._tasks = [asyncio.create_task(self._sender()), asyncio.create_task(self._receiver())]

    async def hang_up(self) -> None:
        """Send `stop` and close the stream (the caller hung up)."""
        me = asyncio.current_task()
        for task in self._tasks[:1]:
            if task is not me:
                task.cancel()
        if not self.closed.done():
            try:
                await self._send({"event": "stop", "sequenceNumber": self._next_seq(), "streamSid": self.stream_sid,
                                  "stop": {"accountSid": self.account_sid, "callSid": self.call_sid}})
                await self.ws.close()
            except Exception:  # noqa: BLE001 — the agent may already be gone; the call is over either way
                pass
        others = [t for t in self._tasks if t is not me]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        for _, _, handle in self._pending_marks:
            handle.cancel()

    def now(self) -> float:
        return self.loop.time()

    def rel(self, t: float | None) -> float | None:
        """Milliseconds since the stream started."""
        return None if t is None else round((t - self.t0) * 1000, 1)

    # --- the caller's side ---------------------------------------------------------------------

    def say(self, ulaw: bytes) -> Utterance:
        return self._enqueue(Utterance(frames=audio.frames_of(ulaw)))

    def keys(self, digits: str, tone_ms: int = 100, gap_ms: int = 100) -> Utterance:
        """Keypad presses: a `dtmf` event per digit, with the in-band tone when asked for."""
        frames: list[bytes] = []
        marks: list[tuple[int, str]] = []
        for d in digits:
            marks.append((len(frames), d))
            tone = audio.dtmf_tone(d, tone_ms) if self.dtmf_tones else np.zeros(audio.RATE * tone_ms // 1000, np.int16)
            frames += audio.frames_of(audio.ulaw_encode(tone))
            frames += [audio.SILENT_FRAME] * (gap_ms // audio.FRAME_MS)
        return self._enqueue(Utterance(frames=frames, dtmf=marks))

    def _enqueue(self, u: Utterance) -> Utterance:
        u.done = self.loop.create_future()
        if not u.frames:
            u.started_at = u.ended_at = self.now()
            u.done.set_result(None)
            return u
        self._queue.append(u)
        return u

    async def _sender(self) -> None:
        """Every 20 ms, one frame of the caller's audio (or silence), on an absolute clock."""
        step = audio.FRAME_MS / 1000
        k = 0
        chunk = 0
        base = self.t0
        try:
            while True:
                slot = base + k * step
                delay = slot - self.loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                now = self.loop.time()
                self.lateness.append(now - slot)
                if now - slot > step:
                    # the loop was held up: a phone line does not catch up by bursting, it
                    # carries on at 20 ms from now (the lateness is on record)
                    base = now - k * step
                frame = audio.SILENT_FRAME
                u = self._queue[0] if self._queue else None
                if u is not None:
                    if u.pos == 0:
                        u.started_at = now
                    for index, digit in u.dtmf:
                        if index == u.pos:
                            self.dtmf_sent.append((now, digit))
                            await self._send({"event": "dtmf", "streamSid": self.stream_sid,
                                              "sequenceNumber": self._next_seq(),
                                              "dtmf": {"track": "inbound_track", "digit": digit}})
                    frame = u.frames[u.pos]
                    u.pos += 1
                    if u.pos == len(u.frames):
                        self._queue.popleft()
                        u.ended_at = now + step
                        if not u.dtmf:
                            self.caller.append((u.started_at or now, u.ended_at))
                        if u.done is not None and not u.done.done():
                            u.done.set_result(None)
                if k * step > self.max_s:
                    asyncio.ensure_future(self.hang_up())
                    return
                chunk += 1
                if self.record:
                    self.sent += frame
                await self._send({"event": "media", "sequenceNumber": self._next_seq(), "streamSid": self.stream_sid,
                                  "media": {"track": "inbound", "chunk": str(chunk),
                                            "timestamp": str(k * audio.FRAME_MS),
                                            "payload": base64.b64encode(frame).decode()}})
                k += 1
        except (ConnectionError, RuntimeError):
            self._lost(None)  # the socket went away under us; the receiver records how

    # --- the agent's side --------------------------------------------------------------------

    async def _receiver(self) -> None:
        import aiohttp

        try:
            async for msg in self.ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self._on_message(msg.data)
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    self._on_message(msg.data.decode("utf-8", errors="replace"))
                else:
                    break
        except Exception:  # noqa: BLE001 — a broken connection is recorded below, not raised here
            pass
        code = self.ws.close_code
        self._lost(code)

    def _lost(self, code: int | None) -> None:
        if not self.closed.done():
            self.closed_at = self.now()
            self.closed.set_result((code in _CLEAN_CLOSES, code))
            self._changed.set()

    def _on_message(self, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            return  # not ours to judge: Twilio ignores what it cannot parse
        if not isinstance(msg, dict):
            return
        event = msg.get("event")
        if event == "media":
            payload = (msg.get("media") or {}).get("payload")
            if isinstance(payload, str):
                try:
                    self._on_audio(base64.b64decode(payload))
                except ValueError:
                    return
        elif event == "mark":
            name = str((msg.get("mark") or {}).get("name", ""))
            self._on_mark(name)
        elif event == "clear":
            self._on_clear()
        self._changed.set()

    def _on_audio(self, data: bytes) -> None:
        data = self._residual + data
        whole = len(data) - len(data) % audio.FRAME_SAMPLES
        self._residual = data[whole:]
        now = self.now()
        step = audio.FRAME_MS / 1000
        for i in range(0, whole, audio.FRAME_SAMPLES):
            if len(self.agent) >= self._max_frames:
                raise_later = InfraError("protocol", f"the agent sent more than {self._max_frames * step:g}s of audio "
                                                     "in one call", endpoint=self.endpoint, retryable=False)
                if not self.closed.done():
                    self.closed.set_exception(raise_later)
                    self.closed.exception()
                return
            pcm = audio.ulaw_decode(data[i:i + audio.FRAME_SAMPLES])
            t = max(now, self.play_end)
            self.agent.append(AgentFrame(t, self.vad.is_speech(pcm), pcm))
            self.play_end = t + step

    def _on_mark(self, name: str) -> None:
        at = max(self.now(), self.play_end)
        handle = self.loop.call_at(at, self._echo_mark, name)
        self._pending_marks.append((at, name, handle))

    def _echo_mark(self, name: str) -> None:
        self._pending_marks = [p for p in self._pending_marks if p[1] != name or p[0] > self.now()]
        self.marks_sent.append((self.now(), name))
        asyncio.ensure_future(self._send_quietly({"event": "mark", "sequenceNumber": self._next_seq(),
                                                  "streamSid": self.stream_sid, "mark": {"name": name}}))

    def _on_clear(self) -> None:
        now = self.now()
        self.clears.append(now)
        while self.agent and self.agent[-1].t > now:  # queued audio that has not played yet is dropped
            self.agent.pop()
        self.play_end = max(now, self.agent[-1].t + audio.FRAME_MS / 1000 if self.agent else now)
        self._residual = b""
        pending, self._pending_marks = self._pending_marks, []
        for _, name, handle in pending:  # Twilio answers every pending mark when the buffer is cleared
            handle.cancel()
            self._echo_mark(name)

    # --- waiting on what the caller hears -------------------------------------------------------

    async def wait(self, until: float) -> None:
        """Sleep until `until` (loop time) or until something arrives, whichever is first."""
        delay = until - self.now()
        if delay <= 0:
            return
        self._changed.clear()
        try:
            await asyncio.wait_for(self._changed.wait(), delay)
        except TimeoutError:
            pass

    def check_open(self) -> None:
        """Raise when the stream broke (an infra error: the call could not be tested)."""
        if self.closed.done():
            if self.closed.exception() is not None:
                raise self.closed.exception()  # type: ignore[misc]
            clean, code = self.closed.result()
            if not clean:
                raise InfraError("connection", f"the media stream closed mid-call (code {code})",
                                 endpoint=self.endpoint, retryable=False)

    @property
    def hung_up(self) -> bool:
        """The agent closed the stream cleanly (it ended the call)."""
        return self.closed.done() and self.closed.exception() is None and self.closed.result()[0]

    def first_voice(self, after: float) -> AgentFrame | None:
        for f in self._frames_from(after):
            if f.voiced:
                return f
        return None

    def _frames_from(self, after: float) -> list[AgentFrame]:
        # frames are in play order; search from the end (the recent past is what we ask about)
        lo = len(self.agent)
        while lo > 0 and self.agent[lo - 1].t >= after:
            lo -= 1
        return self.agent[lo:]

    def last_voice_end(self, after: float) -> float | None:
        for f in reversed(self.agent):
            if f.t < after:
                return None
            if f.voiced:
                return f.t + audio.FRAME_MS / 1000
        return None

    def voiced_runs(self, start: float, end: float) -> list[tuple[float, float]]:
        """(start, end) of each stretch of agent speech playing between `start` and `end`."""
        runs: list[tuple[float, float]] = []
        step = audio.FRAME_MS / 1000
        for f in self._frames_from(start):
            if f.t >= end:
                break
            if not f.voiced:
                continue
            if runs and f.t - runs[-1][1] < step / 2:
                runs[-1] = (runs[-1][0], f.t + step)
            else:
                runs.append((f.t, f.t + step))
        return runs

    def pcm(self, start: float, end: float) -> np.ndarray:
        """The agent audio played between `start` and `end`, silence where nothing played."""
        frames = [f for f in self._frames_from(start) if f.t < end]
        if not frames:
            return np.zeros(0, np.int16)
        n = int(round((frames[-1].t - frames[0].t) * 1000 / audio.FRAME_MS)) + 1
        out = np.zeros(n * audio.FRAME_SAMPLES, np.int16)
        for f in frames:
            i = int(round((f.t - frames[0].t) * 1000 / audio.FRAME_MS)) * audio.FRAME_SAMPLES
            out[i:i + audio.FRAME_SAMPLES] = f.pcm
        return out

    # --- plumbing --------------------------------------------------------------------------------

    def _next_seq(self) -> str:
        self._seq += 1
        return str(self._seq)

    async def _send(self, obj: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(obj, separators=(",", ":")))

    async def _send_quietly(self, obj: dict[str, Any]) -> None:
        try:
            await self._send(obj)
        except Exception:  # noqa: BLE001 — a mark echo after the agent left goes nowhere
            pass
