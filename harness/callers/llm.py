"""The LLM caller brain: a model plays the caller through any OpenAI-compatible endpoint.

It is for agents whose questions a rule-based caller cannot follow. The model gets a
persona, a language, the goal and the facts, and sees the call so far with the roles
swapped (the agent is its "user"). It answers one line per turn and ends the call by
writing `[END]`; `[DTMF 1234]` presses keys. Its output is untrusted: it only ever becomes
the caller's words, recorded as a turn, so a replay needs no model.

It talks through the shared chat client (`harness.chat`), which maps failures to
`InfraError`, keeps the key out of them and retries a transient one under the caller's own
policy (the caller's endpoint is not the target: its errors must not trip the target's
circuit breaker).
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..chat import ChatClient
from ..errors import InfraError
from ..httpclient import RetryPolicy
from ..records import AgentReply
from ..spec import CallerModelSpec
from ._base import CallerBrain, CallerMove

END = "[END]"
_DTMF = re.compile(r"\[DTMF\s+([0-9*#A-D]+)\]", re.I)
_LANGUAGES = {"ja": "Japanese", "en": "English"}
BACKOFF_S = 0.2  # the caller's first retry waits about this long, doubling up to BACKOFF_MAX_S
BACKOFF_MAX_S = 2.0


def system_prompt(goal: str, facts: dict[str, Any], *, language: str, persona: str | None,
                  question: str | None, corrections: dict[str, Any], flexible: bool) -> str:
    lang = _LANGUAGES.get(language, language or "the agent's language")
    lines = [
        "You are a caller phoning a restaurant's automated phone agent. Stay in role as the caller.",
        f"Speak {lang}. Say one short, natural sentence per turn, as people do on the phone.",
        f"Your goal: {goal}." + (f" Your question: {question}" if question else ""),
        "Your facts (use only these; if asked for anything else, say you don't know): "
        + json.dumps(facts, ensure_ascii=False, default=str),
        "Answer only what the agent asks. Do not volunteer every fact at once.",
    ]
    if corrections:
        lines.append("When the agent first reads your booking back, change these details: "
                     + json.dumps(corrections, ensure_ascii=False, default=str))
    lines.append("If the agent offers another time, " + ("accept it." if flexible else "refuse it."))
    if persona:
        lines.append(f"Persona: {persona}")
    lines.append(f"When your goal is done, or the agent transfers you or says goodbye, say goodbye and add {END}. "
                 "To press phone keys, write [DTMF digits].")
    return "\n".join(lines)


class LLMBrain(CallerBrain):
    name = "llm"

    def __init__(self, model: CallerModelSpec, prompt: str, *, seed: int | None = None):
        if not model.base_url or not model.model:
            raise ValueError("the llm caller brain needs base_url and model (suite caller:)")
        self.spec = model
        self._chat = ChatClient(model.base_url, api_key=model.api_key.get_secret_value() if model.api_key else None,
                                headers=model.headers, timeout_s=model.timeout_s, max_connections=2,
                                retry=RetryPolicy(model.retries, BACKOFF_S, BACKOFF_MAX_S),
                                who="the caller model's answer")
        self.endpoint = self._chat.endpoint
        self.messages: list[dict[str, str]] = [{"role": "system", "content": prompt}]
        self.seed = seed
        self.goal_reached = False
        self._ended = False

    async def next(self, agent: AgentReply | None) -> CallerMove:
        if agent is not None and agent.ended:
            return CallerMove.hangup("the agent ended the call")
        if self._ended:
            return CallerMove.hangup("the caller said goodbye")
        self.messages.append({"role": "user", "content": agent.text if agent is not None else "(the line is open)"})
        raw = await self._complete()
        self.messages.append({"role": "assistant", "content": raw})
        return self._move(raw)

    def _move(self, raw: str) -> CallerMove:
        text = " ".join(raw.split())
        m = _DTMF.search(text)
        if m:
            return CallerMove("dtmf", m.group(1).upper(), "the model pressed keys")
        if END in text.upper():
            self._ended = self.goal_reached = True
            said = re.sub(re.escape(END), "", text, flags=re.I).strip()
            if not said:
                return CallerMove.hangup("the model ended the call")
            return CallerMove("say", said, "the model said goodbye", last=True)
        if not text:
            return CallerMove("silence", "", "the model said nothing")
        return CallerMove("say", text, "the model's line")

    async def _complete(self) -> str:
        body: dict[str, Any] = {"model": self.spec.model, "messages": self.messages,
                                "temperature": self.spec.temperature}
        if self.seed is not None:
            body["seed"] = self.seed
        try:
            return (await self._chat.complete(body)).text
        except InfraError as e:  # retried already: the call's runner must not retry it again
            raise InfraError(e.kind, f"caller model: {e.detail}", endpoint=e.endpoint, status=e.status,
                             retryable=False) from None

    async def aclose(self) -> None:
        await self._chat.aclose()
