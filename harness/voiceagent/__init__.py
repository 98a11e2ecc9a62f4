"""The embedded agent answers the phone: Sakura Restaurant behind a media-stream WebSocket.

`harness agent serve --voice` (and the voice target's `serve: embedded`) puts the simulated
restaurant agent — the very call flow the `sim` target plays, with its fault knobs — behind
a Twilio Media Streams WebSocket. It speaks with the harness's own TTS (espeak-ng, OpenJTalk
for Japanese), listens with WebRTC VAD, answers DTMF, stops and sends `clear` when the caller
talks over it, and speaks up after a silence.

What it hears. Offline recognition of synthetic speech is poor (PocketSphinx gets a few
words of an espeak-ng sentence right), so the embedded agent takes the caller's words from
a **test shortcut**: the harness, when told to (`tell_words`, on by default with `serve:
embedded`), sends a `mark` named `caller-words:<text>` just before each caller line's first
frame. The agent still decides *when* the caller stopped talking from the audio alone (its
VAD), so every pace and turn-taking figure is measured as with a real agent. Without told
words it transcribes what it heard with the STT engine it was given (`--stt`).

The voice faults (`slow_first_audio`, `ignores_barge_in`, `dead_air`, `drops_stream`) join
the sim's own (`latency`, `full_outage`, ...); per call, the case's faults arrive in
`start.customParameters.faults`.
"""

from __future__ import annotations

from .server import VoiceAgentServer, serve_forever

__all__ = ["VoiceAgentServer", "serve_forever"]
