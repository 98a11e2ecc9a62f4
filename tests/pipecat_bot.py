"""A real Pipecat bot behind a FastAPI WebSocket, speaking Twilio Media Streams through
Pipecat's own `TwilioFrameSerializer` — our side of the protocol against a framework we
did not write.

Pipeline: transport in → Silero VAD (ships in the pipecat wheel) → a small responder →
transport out. The responder answers each finished caller turn with espeak-ng audio
(`TTSAudioRawFrame`s), and when the caller starts talking over an answer it broadcasts an
interruption, which Pipecat's output transport turns into a dropped queue and the
serializer into a Twilio `clear`. Run in-process on a background thread (uvicorn)::

    with PipecatBot() as bot:
        ... url=bot.url ...
"""

# no `from __future__ import annotations`: FastAPI reads the route's WebSocket annotation at runtime

import asyncio
import socket
import threading
import time
from typing import Any

GREETING = "Hello, this is the pipecat restaurant bot. How can I help?"
ANSWER = "Of course. I can book a table for you this evening at seven o'clock. Is that all right?"


def _app(bot: "PipecatBot") -> Any:
    from fastapi import FastAPI, WebSocket
    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.audio.vad.vad_analyzer import VADParams
    from pipecat.frames.frames import (
        Frame,
        StartFrame,
        TTSAudioRawFrame,
        VADUserStartedSpeakingFrame,
        VADUserStoppedSpeakingFrame,
    )
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.runner import PipelineRunner
    from pipecat.pipeline.task import PipelineParams, PipelineTask
    from pipecat.processors.audio.vad_processor import VADProcessor
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
    from pipecat.serializers.twilio import TwilioFrameSerializer
    from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport

    from tests.voice_agent import speak
    from harness.targets.voice import audio

    def pcm_of(text: str) -> bytes:
        return audio.ulaw_decode(speak(text)).astype("<i2").tobytes()

    class Responder(FrameProcessor):
        def __init__(self) -> None:
            super().__init__()
            self.speaking_until = 0.0
            self.task: asyncio.Task | None = None

        async def say(self, text: str) -> None:
            data = pcm_of(text)
            bot.answers.append(time.monotonic())
            chunk = 1600  # 100 ms of 8 kHz int16
            for i in range(0, len(data), chunk):
                await self.push_frame(TTSAudioRawFrame(audio=data[i:i + chunk], sample_rate=8000, num_channels=1))
            self.speaking_until = time.monotonic() + len(data) / 16000 + 0.3

        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, StartFrame):
                await self.push_frame(frame, direction)
                await self.say(GREETING)
                return
            if isinstance(frame, VADUserStartedSpeakingFrame):
                if time.monotonic() < self.speaking_until:
                    bot.interruptions += 1
                    self.speaking_until = 0.0
                    await self.broadcast_interruption()
            elif isinstance(frame, VADUserStoppedSpeakingFrame):
                await self.say(ANSWER)
            await self.push_frame(frame, direction)

    app = FastAPI()

    @app.websocket("/media")
    async def media(ws: WebSocket) -> None:
        await ws.accept()
        it = ws.iter_text()
        await it.__anext__()  # connected
        import json

        start = json.loads(await it.__anext__())
        bot.starts.append(start)
        serializer = TwilioFrameSerializer(stream_sid=start["start"]["streamSid"],
                                           call_sid=start["start"]["callSid"],
                                           params=TwilioFrameSerializer.InputParams(auto_hang_up=False))
        transport = FastAPIWebsocketTransport(websocket=ws, params=FastAPIWebsocketParams(
            audio_in_enabled=True, audio_out_enabled=True, add_wav_header=False, serializer=serializer))
        vad = VADProcessor(vad_analyzer=SileroVADAnalyzer(params=VADParams(stop_secs=0.3, start_secs=0.1)))
        pipeline = Pipeline([transport.input(), vad, Responder(), transport.output()])
        task = PipelineTask(pipeline, params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000))

        @transport.event_handler("on_client_disconnected")
        async def _gone(_t: Any, _c: Any) -> None:
            await task.cancel()

        await PipelineRunner(handle_sigint=False).run(task)

    return app


class PipecatBot:
    def __init__(self) -> None:
        self.answers: list[float] = []
        self.starts: list[dict[str, Any]] = []
        self.interruptions = 0
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/media"

    def __enter__(self) -> "PipecatBot":
        import uvicorn
        from loguru import logger

        logger.remove()  # Pipecat logs every frame at DEBUG
        from tests.voice_agent import speak

        speak(GREETING), speak(ANSWER)
        config = uvicorn.Config(_app(self), host="127.0.0.1", port=self.port, log_level="warning", ws="websockets-sansio")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
