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

With `serve: embedded` (and no `url`) the target starts the embedded restaurant agent
(`harness agent serve --voice`, in a process of its own so its clock is not the caller's)
on a free port for the run, with the sim's fault knobs in `faults:` (or `--sim-fault`), and
tells it the caller's words (`tell_words`, a test shortcut: offline recognition of synthetic
speech is too poor to drive a call flow).

Each reply carries what was measured on the audio (`AgentReply.voice`): the response time
(end of the caller's speech → the agent's first voiced audio, also its `first_token_ms`),
the longest silence inside the answer, talk-over, barge-in stop time, reprompt time. Its text
is the agent's utterance through the STT engine. The speech engines are the `voice` extra.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Literal, Mapping, Sequence

from pydantic import Field, field_validator, model_validator

from ...errors import ConfigError, InfraError
from ...httpclient import safe_endpoint
from ...records import AgentReply, Outcome
from ...spec import CaseSpec
from ..base import CallContext, Conversation, Target, TargetConfig, TargetOption, register
from .config import SttConfig, TtsConfig

__all__ = ["VoiceConfig", "VoiceTarget"]


class VoiceConfig(TargetConfig):
    """Settings of the `voice` target."""

    url: str | None = Field(default=None, description="the agent's media-stream WebSocket, ws:// or wss://")
    serve: Literal["embedded"] | None = Field(
        default=None, description="embedded: start the embedded restaurant agent for the run (instead of url)")
    faults: list[str] = Field(default_factory=list,
                              description="serve: embedded — the agent's fault knobs, as the sim target's")
    tell_words: bool | None = Field(
        default=None, description="test shortcut: a `caller-words:` mark before each caller line (default: "
                                  "on with serve: embedded, else off)")
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
    def _ws_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("ws://", "wss://")):
            raise ValueError("expected a ws:// or wss:// URL such as ws://127.0.0.1:8765/media")
        return v

    @field_validator("faults", mode="before")
    @classmethod
    def _fault_list(cls, v: Any) -> Any:
        if isinstance(v, (str, dict)):
            v = [v]
        if not isinstance(v, list):
            raise ValueError("expected a list of faults, e.g. [slow_first_audio, 'dead_air:4000']")
        out: list[str] = []
        for item in v:  # names and values are checked by the embedded agent when it starts
            pairs = item.items() if isinstance(item, dict) else [(item, None)]
            out += [str(k) if val is None else f"{k}:{val}" for k, val in pairs]
        return out

    @model_validator(mode="after")
    def _url_or_serve(self) -> "VoiceConfig":
        if (self.url is None) == (self.serve is None):
            raise ValueError("give the agent's url (ws://…/media) or serve: embedded, one of the two")
        if self.faults and self.serve is None:
            raise ValueError("faults: apply to the embedded agent only (serve: embedded)")
        return self


@register
class VoiceTarget(Target):
    kind = "voice"
    config_model = VoiceConfig
    description = "a voice agent on a Twilio Media Streams WebSocket: real-time μ-law audio, DTMF, barge-in"
    config: VoiceConfig
    cli_options = (TargetOption(
        "--sim-fault", "FAULT", "Inject a fault into the embedded agent (serve: embedded), e.g. dead_air:4000."),)

    @classmethod
    def with_cli_options(cls, raw: Mapping[str, Any], given: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        """`--sim-fault` adds to `faults:` of the embedded agent."""
        out = dict(raw)
        faults = list(given.get("--sim-fault", ()))
        if faults:
            if out.get("serve") != "embedded":
                raise ConfigError("--sim-fault applies to the voice target only with serve: embedded")
            out["faults"] = [*(out.get("faults") or []), *faults]
        return out

    def __init__(self, config: VoiceConfig, *, root: str | None = None):
        super().__init__(config)
        if config.vad == "webrtc" and not _has("webrtcvad"):
            raise ConfigError("target.vad: webrtc needs webrtcvad-wheels (pip install 'harness[voice]'), "
                              "or set vad: energy")
        self._root = root or "."
        self._served: Any = None
        if config.serve == "embedded":
            self._served = _EmbeddedAgent(config)
            config = config.model_copy(update={"url": self._served.url})
            self.config = config
        self.tell_words = config.tell_words if config.tell_words is not None else config.serve == "embedded"
        self.safe_url = safe_endpoint(config.url or "")
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
        out = {"kind": self.kind, "url": self.safe_url, "tts": self.config.tts.kind, "stt": stt.kind,
               "vad": self.config.vad}
        if self.config.recordings:  # where the report links each call's recording from
            where = self.config.recordings
            out["recordings"] = os.path.abspath(where if os.path.isabs(where) else os.path.join(self._root, where))
        if self.config.serve:
            out.update(serve=self.config.serve, faults=list(self.config.faults), tell_words=self.tell_words)
        return out

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
                return await self._session.ws_connect(c.url or "", heartbeat=None, max_msg_size=4 * 1024 * 1024,
                                                      timeout=aiohttp.ClientWSTimeout(ws_close=5.0))
            except aiohttp.WSServerHandshakeError as e:
                kind = "server_error" if e.status >= 500 else "protocol"
                raise InfraError(kind, f"the media stream was refused: HTTP {e.status}", endpoint=self.safe_url,
                                 status=e.status, retryable=e.status >= 500) from None
            except (aiohttp.ClientError, OSError) as e:
                raise InfraError("connection", f"cannot open the media stream: {type(e).__name__}: {e}",
                                 endpoint=self.safe_url) from None

        ws = await ctx.request(connect, what=f"media stream ({self.safe_url})")
        custom = {"case_id": case.id, "repeat": str(ctx.repeat_index)}
        if case.resolved_language or case.language:
            custom["language"] = str(case.resolved_language or case.language)
        if case.faults:  # a chaos case's own faults, for an agent that takes them (the embedded one does)
            custom["faults"] = ",".join(case.faults)
        custom.update(c.custom_parameters)
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
        if self._served is not None:
            await asyncio.to_thread(self._served.stop)
            self._served = None


class _EmbeddedAgent:
    """`harness agent serve --voice` in a child process on a free port, for this run only.

    It goes when the run closes the target, and also when this process dies (it watches its
    stdin). A mistake in its faults is a configuration error, as in the sim target."""

    def __init__(self, config: VoiceConfig):
        import subprocess
        import sys

        args = [sys.executable, "-m", "harness", "agent", "serve", "--voice", "--port", "0", "--until-stdin-closes"]
        for f in config.faults:
            args += ["--fault", f]
        import tempfile

        self.log = tempfile.TemporaryFile("w+")  # what it says on stderr, read if it fails to start
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline().strip() if self.proc.stdout else ""  # the URL, once it is ready
        if not line.startswith("ws://"):
            self.proc.wait()
            self.log.seek(0)
            err = self.log.read()
            last = [x for x in err.strip().splitlines() if x.strip()][-1:] or [f"exit code {self.proc.returncode}"]
            raise ConfigError(f"target.serve: the embedded voice agent did not start: "
                              f"{last[0].removeprefix('error: ')}")
        self.url = line

    def stop(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except Exception:  # noqa: BLE001 — it did not go in time: it goes now
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def _warm_up(vad: str) -> None:
    import scipy.signal  # noqa: F401  (resampling)

    from . import audio

    audio.make_vad(vad)
    audio.ulaw_encode(audio.resample(audio.dtmf_tone("1"), 8000, 16000))


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
