"""One voice call: caller turns spoken on the line, the agent's answers heard and measured."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ...records import AgentReply, Outcome
from ..base import CallContext, Conversation
from .stream import Line

if TYPE_CHECKING:
    from . import VoiceTarget

_STEP = 0.02


class VoiceConversation(Conversation):
    def __init__(self, target: "VoiceTarget", ctx: CallContext, line: Line, tts: Any, stt: Any):
        self.target = target
        self.config = target.config
        self.ctx = ctx
        self.line = line
        self.tts = tts
        self.stt = stt
        self.language = ctx.case.resolved_language or ctx.case.language
        self.turn = 0
        self.segments: list[list[Any]] = []  # [who, start ms, end ms] for the call's timeline
        self._shown = 0  # segments already attached to a reply

    # --- the surface --------------------------------------------------------------------

    async def greet(self) -> AgentReply | None:
        if not self.config.greet:
            return None
        line = self.line
        heard = await self._answer(line.t0, self.config.greeting_timeout_s, {"kind": "greeting"})
        if heard.voice and heard.voice.get("response_ms") is None and not heard.ended:
            return None  # the agent waits for the caller to speak first
        return heard

    async def reply(self, caller: str, *, kind: str = "say") -> AgentReply:
        self.turn += 1
        spec = self._spec()
        line = self.line
        line.check_open()
        if line.hung_up:
            return AgentReply(text="", ended=True, attempts=0, voice={"kind": kind, "hung_up": True})
        if kind == "dtmf":
            u = line.keys(caller)
            await u.done
            self.segments.append(["dtmf", line.rel(u.started_at), line.rel(u.ended_at), caller])
            return await self._answer(u.ended_at, self.config.response_timeout_s,
                                      {"kind": "dtmf", "digits": caller, "caller_ms": [line.rel(u.started_at),
                                                                                      line.rel(u.ended_at)]})
        if kind == "silence":
            seconds = spec.silence if spec is not None and spec.silence is not None else self.config.silence_s
            start = line.now()
            self.segments.append(["silence", line.rel(start), line.rel(start + seconds)])
            return await self._answer(start, seconds, {"kind": "silence", "quiet_ms": round(seconds * 1000)},
                                      reprompt=True)
        audio = await self.tts.speak(caller, self.language, self._request)
        u = line.say(audio)
        await u.done
        self.segments.append(["caller", line.rel(u.started_at), line.rel(u.ended_at)])
        voice: dict[str, Any] = {"kind": "say", "caller_ms": [line.rel(u.started_at), line.rel(u.ended_at)],
                                 "talk_over_ms": self._overlap(u.started_at, u.ended_at)}
        barge = spec.barge_in if spec is not None else None
        return await self._answer(u.ended_at, self.config.response_timeout_s, voice, barge=barge)

    async def close(self) -> Outcome:
        line = self.line
        hung_up = line.hung_up
        await line.hang_up()
        self._record()
        out = Outcome()
        out.ended_by = "agent" if hung_up else "caller"
        return out

    # --- listening ------------------------------------------------------------------------

    async def _answer(self, after: float, first_timeout: float, voice: dict[str, Any], *,
                      barge: Any = None, reprompt: bool = False) -> AgentReply:
        """Wait for the agent to answer (its first voiced audio after `after`), then until it
        has been quiet for `turn_end_ms`; measure the answer and transcribe it."""
        line = self.line
        first = await self._first_voice(after, after + first_timeout)
        if first is None:
            voice.update(response_ms=None, timeline=self.segments[self._shown:])
            self._shown = len(self.segments)
            return AgentReply(text="", voice=voice, ended=line.hung_up, attempts=0 if line.hung_up else 1)
        start = first.t
        voice["response_ms"] = round((start - after) * 1000, 1)
        if reprompt:
            voice["reprompt_ms"] = voice["response_ms"]
        if barge is not None:
            await self._barge(start, barge, voice)
        end = await self._quiet_after(start)
        runs = line.voiced_runs(start, end)
        gaps = [b[0] - a[1] for a, b in zip(runs, runs[1:])]
        if "barge_in" in voice and voice["barge_in"].get("said_ms"):
            # the caller's barge line is not dead air: only gaps outside it count
            b0, b1 = (t / 1000 + line.t0 for t in voice["barge_in"]["said_ms"])
            gaps = [b[0] - a[1] for a, b in zip(runs, runs[1:]) if b[0] < b0 or a[1] > b1 + self.config.response_timeout_s]
        voice["answer_ms"] = [line.rel(start), line.rel(end)]
        voice["silence_ms"] = round(max(gaps) * 1000, 1) if gaps else 0.0
        shown: list[list[float]] = []
        for a, b in runs:  # words run together on the timeline; pauses under 250 ms are not shown
            if shown and a - shown[-1][1] < 0.25:
                shown[-1][1] = b
            else:
                shown.append([a, b])
        self.segments += [["agent", line.rel(a), line.rel(b)] for a, b in shown]
        voice["timeline"], self._shown = self.segments[self._shown:], len(self.segments)
        text = await self.stt.transcribe(line.pcm(start, end), self.language, self._request)
        return AgentReply(text=text, first_token_ms=voice["response_ms"], total_ms=round((end - after) * 1000, 1),
                          route="voice", voice=voice, ended=line.hung_up)

    async def _first_voice(self, after: float, deadline: float) -> Any:
        line = self.line
        while True:
            line.check_open()
            f = line.first_voice(after)
            if f is not None or line.hung_up:
                return f
            if line.now() >= deadline:
                return None
            await line.wait(deadline)

    async def _quiet_after(self, start: float) -> float:
        """When the agent's answer that began at `start` ended: the end of its last voiced audio
        once nothing more was heard for `turn_end_ms` (or the call ended, or max_answer_s)."""
        line = self.line
        quiet = self.config.turn_end_ms / 1000
        limit = start + self.config.max_answer_s
        while True:
            line.check_open()
            last = line.last_voice_end(start) or start
            now = line.now()
            if line.hung_up or now >= last + quiet or now >= limit:
                return min(last, limit)
            await line.wait(min(last + quiet, limit))

    async def _barge(self, start: float, barge: Any, voice: dict[str, Any]) -> None:
        """Talk over the answer `after_ms` into it; time how long the agent takes to stop."""
        line = self.line
        at = start + barge.after_ms / 1000
        while line.now() < at:
            line.check_open()
            last = line.last_voice_end(start) or start
            if line.now() >= last + self.config.turn_end_ms / 1000:
                voice["barge_in"] = {"after_ms": barge.after_ms, "said_ms": None, "stop_ms": None,
                                     "note": "the answer was over before the caller could talk over it"}
                return
            await line.wait(at)
        audio = await self.tts.speak(barge.say, self.language, self._request)
        u = line.say(audio)
        await u.done
        self.segments.append(["barge_in", line.rel(u.started_at), line.rel(u.ended_at)])
        said = u.started_at
        gap = self.config.stop_gap_ms / 1000
        limit = said + self.config.max_answer_s
        while True:  # follow the agent's speech from the moment the caller cut in until it pauses
            line.check_open()
            stopped = said
            for a, b in line.voiced_runs(said - _STEP, limit):
                if a > stopped + gap:
                    break
                stopped = max(stopped, b)
            now = line.now()
            if line.hung_up or now >= limit or now >= max(stopped, u.ended_at) + gap:
                break
            await line.wait(max(stopped, u.ended_at) + gap)
        clear = next((t for t in line.clears if t >= said), None)
        if clear is not None and clear < stopped:
            stopped = clear
        voice["barge_in"] = {"after_ms": barge.after_ms, "said_ms": [line.rel(said), line.rel(u.ended_at)],
                             "stop_ms": round((stopped - said) * 1000, 1), "cleared": clear is not None}

    def _overlap(self, a: float | None, b: float | None) -> float:
        if a is None or b is None:
            return 0.0
        return round(sum(min(e, b) - max(s, a) for s, e in self.line.voiced_runs(a - 1, b) if e > a) * 1000, 1)

    # --- services ---------------------------------------------------------------------------

    def _spec(self) -> Any:
        turns = self.ctx.case.call_turns
        return turns[self.turn - 1] if self.ctx.case.caller is None and 0 < self.turn <= len(turns) else None

    async def _request(self, fn: Any, what: str) -> Any:
        return await self.ctx.request(fn, what=what)

    def _record(self) -> None:
        """A stereo WAV of the call (caller left, agent right), when `recordings` is set."""
        where = self.config.recordings
        if not where or not self.line.sent:
            return
        import numpy as np

        from . import audio

        line = self.line
        caller = audio.ulaw_decode(bytes(line.sent))
        agent = np.zeros_like(caller)
        for f in line.agent:
            i = int(round((f.t - line.t0) * 1000 / audio.FRAME_MS)) * audio.FRAME_SAMPLES
            if 0 <= i and i + audio.FRAME_SAMPLES <= agent.size:
                agent[i:i + audio.FRAME_SAMPLES] = f.pcm
        path = where if os.path.isabs(where) else os.path.join(self.target.root, where)
        os.makedirs(path, exist_ok=True)
        name = f"{self.ctx.case.id}.{self.ctx.repeat_index}.wav"
        with open(os.path.join(path, name), "wb") as fh:
            fh.write(audio.wav_bytes(np.stack([caller, agent], axis=1).reshape(-1), channels=2))
