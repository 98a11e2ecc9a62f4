"""The `voice` target: the harness plays the phone network over a media-stream WebSocket.

```yaml
target:
  kind: voice
  url: wss://agent.example.com/media          # Twilio Media Streams protocol
  headers: {Authorization: "Bearer ${AGENT_TOKEN}"}
  custom_parameters: {tenant: test}           # arrive in `start.customParameters`
  stt: {kind: openai, base_url: https://api.openai.com/v1, api_key: "${OPENAI_API_KEY}"}
```

It opens the stream, sends `connected` and `start`, and streams the caller in real time as
20 ms μ-law frames (silence between turns, as a phone line does); it plays the agent's
`media` out of a buffer at the same rate, echoes `mark`s when their audio has played and
honours `clear`; it sends `stop` when the caller hangs up. Scripted turns and goal-driven
callers speak their lines through the caller's voice (`tts`); `silence: N` keeps quiet for N
seconds; `dtmf: "1#"` sends `dtmf` events (with in-band tones if `dtmf_tones`); a turn's
`barge_in: {after_ms, say}` talks over the agent's answer.

Each reply carries what was measured on the audio (`AgentReply.voice`): the response time
(end of the caller's speech → the agent's first voiced audio, also its `first_token_ms`),
the longest silence inside the answer, talk-over, barge-in stop time, reprompt time. Its text
is the agent's utterance through the STT engine. The speech engines are the `voice` extra.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Literal

from pydantic import Field, field_validator

from ...errors import ConfigError, InfraError
from ...httpclient import safe_endpoint
from ...records import AgentReply, Outcome
from ...spec import CaseSpec
from ..base import CallContext, Conversation, Target, TargetConfig, register
from .config import SttConfig, TtsConfig

__all__ = ["VoiceConfig", "VoiceTarget"]


class VoiceConfig(TargetConfig):
    """Settings of the `voice` target."""

    url: str = Field(description="the agent's media-stream WebSocket, ws:// or wss://")
    headers: dict[str, str] = Field(default_factory=dict, description="handshake headers (never recorded)")
    custom_parameters: dict[str, str] = Field(default_factory=dict, description="sent in start.customParameters")
    greet: bool = Field(default=True, description="listen for the agent's opening line before the caller speaks")
    greeting_timeout_s: float = Field(default=5.0, gt=0, description="how long to listen for an opening line")
    response_timeout_s: float = Field(default=10.0, gt=0, description="how long the caller waits for an answer")
    turn_end_ms: float = Field(default=1500, gt=0, description="agent quiet this long ends its answer")
    max_answer_s: float = Field(default=60.0, gt=0, description="longest answer listened to")
    silence_s: float = Field(default=3.0, ge=0, description="a silence turn with no length given")
    stop_gap_ms: float = Field(default=400, gt=0, description="after a barge-in, agent quiet this long = it stopped")
    vad: Literal["webrtc", "energy"] = "webrtc"
    vad_aggressiveness: int = Field(default=2, ge=0, le=3)
    dtmf_tones: bool = Field(default=False, description="also play keypad presses as in-band tones")
    tts: TtsConfig = Field(default_factory=TtsConfig)
    stt: SttConfig = Field(default_factory=SttConfig)
    recordings: str | None = Field(default=None, description="directory for a stereo WAV per call (caller left)")

    @field_validator("url")
    @classmethod
    def _ws_url(cls, v: str) -> str:
        if not v.startswith(("ws://", "wss://")):
            raise ValueError("expected a ws:// or wss:// URL such as ws://127.0.0.1:8765/media")
        return v


@register
class VoiceTarget(Target):
    kind = "voice"
    config_model = VoiceConfig
    description = "a voice agent on a Twilio Media Streams WebSocket: real-time μ-law audio, DTMF, barge-in"
    config: VoiceConfig

    def __init__(self, config: VoiceConfig, *, root: str | None = None):
        super().__init__(config)
        if config.vad == "webrtc" and not _has("webrtcvad"):
            raise ConfigError("target.vad: webrtc needs webrtcvad-wheels (pip install 'harness[voice]'), "
                              "or set vad: energy")
        self.safe_url = safe_endpoint(config.url)
        self._root = root or "."
        self._tts: Any = None
        self._stt: Any = None
        self._session: Any = None
        self._warm: Any = None
        self._lines: set[Any] = set()  # calls still on the line (a call cut short by its timeout is hung up at the end)

    @property
    def root(self) -> str:
        return self._root

    @root.setter
    def root(self, value: str) -> None:
        self._root = str(value)

    def speech(self) -> tuple[Any, Any]:
        """The caller's voice and the harness's ears, made on first use (the engines load then)."""
        if self._tts is None:
            from .speech import Tts, make_stt

            self._tts = Tts(self.config.tts, self._root)
            self._stt = make_stt(self.config.stt)
        return self._tts, self._stt

    def describe(self) -> dict[str, Any]:
        tts, stt = self.speech()
        return {"kind": self.kind, "url": self.safe_url, "tts": self.config.tts.kind, "stt": stt.kind,
                "vad": self.config.vad}

    async def open(self, case: CaseSpec, ctx: CallContext) -> Conversation:
        import aiohttp

        from . import audio
        from .stream import Line

        tts, stt = self.speech()
        if self._warm is None:  # numpy, scipy and the VAD load once, off the loop other calls' clocks run on
            self._warm = asyncio.ensure_future(asyncio.to_thread(_warm_up, self.config.vad))
        await asyncio.shield(self._warm)
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self.config.headers)
        c = self.config

        async def connect() -> Any:
            try:
                return await self._session.ws_connect(c.url, heartbeat=None, max_msg_size=4 * 1024 * 1024,
                                                      timeout=aiohttp.ClientWSTimeout(ws_close=5.0))
            except aiohttp.WSServerHandshakeError as e:
                kind = "server_error" if e.status >= 500 else "protocol"
                raise InfraError(kind, f"the media stream was refused: HTTP {e.status}", endpoint=self.safe_url,
                                 status=e.status, retryable=e.status >= 500) from None
            except (aiohttp.ClientError, OSError) as e:
                raise InfraError("connection", f"cannot open the media stream: {type(e).__name__}: {e}",
                                 endpoint=self.safe_url) from None

        ws = await ctx.request(connect, what=f"media stream ({self.safe_url})")
        custom = {"case_id": case.id, "repeat": str(ctx.repeat_index), **c.custom_parameters}
        line = Line(ws, vad=audio.make_vad(c.vad, c.vad_aggressiveness), custom=custom,
                    max_audio_s=c.limits.case_timeout_s + 60, endpoint=self.safe_url, dtmf_tones=c.dtmf_tones,
                    record=bool(c.recordings))
        await line.start()
        self._lines.add(line)
        line.closed.add_done_callback(lambda _: self._lines.discard(line))
        from .call import VoiceConversation

        return VoiceConversation(self, ctx, line, tts, stt)

    async def aclose(self) -> None:
        for line in list(self._lines):
            await line.hang_up()
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        for engine in (self._tts, self._stt):
            if engine is not None:
                await engine.aclose()


def _warm_up(vad: str) -> None:
    import scipy.signal  # noqa: F401  (resampling)

    from . import audio

    audio.make_vad(vad)
    audio.ulaw_encode(audio.resample(audio.dtmf_tone("1"), 8000, 16000))


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
