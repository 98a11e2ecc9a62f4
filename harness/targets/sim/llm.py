"""The sim's live-model mode (`brain: llm`): a real model reads the caller and words the replies.

The call flow, the booking book and the fault knobs stay the same; only two steps move to
an OpenAI-compatible model, so the same golden calls test a real model's intent detection,
slot extraction and wording:

- `understand`: the caller's words → a JSON reading (intent, slots, yes/no, …) that
  replaces the rule-based `nlu.read`;
- `word`: the flow's draft reply → the model's own words, keeping every fact.

The model's output is untrusted data: the reading is type-checked field by field (junk is
dropped, so a confused model shows up as a confused agent, not as a crash), and a reply
is only ever text. The requests go through the shared chat client (`harness.chat`), which
maps failures to `InfraError` and keeps the key out of them; the runner retries them.
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from ...chat import ChatClient, ChatResult
from .nlu import Reading

__all__ = ["ModelAnswer", "ModelSteps", "reading_from"]

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_LANGUAGES = {"ja": "Japanese", "en": "English"}
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_BOOKING_ID = re.compile(r"^[Bb]?(\d{4})$")
_FENCED = re.compile(r"^\s*```(?:json)?\s*\n?(.*?)\n?```\s*$", re.DOTALL)
_FLAGS = ("yes", "no", "closing", "correction", "emergency", "anger", "transfer")
_INTENT_FLAGS = {"reservation": "reserve", "cancellation": "cancel", "transfer": "transfer"}

UNDERSTAND_PROMPT = """You read one caller turn for the phone agent of Sakura Restaurant.
Today is {today} ({weekday}). The agent last asked for: {expecting}.
Answer with one JSON object only, with these keys (null or false when the caller did not say it):
intent: "reservation" | "cancellation" | "question" | "transfer" | null
date: "YYYY-MM-DD" | null    time: "HH:MM" (24 h) | null    party_size: integer | null
name: string | null    phone: string | null    booking_id: "B1234" | null
yes, no, closing (the caller needs nothing more), correction (changes something said before),
emergency, anger, transfer (wants a human): true | false"""

WORD_PROMPT = """You are the phone agent of Sakura Restaurant. Say the draft reply to the caller in {language},
naturally and briefly. Keep every fact exactly: dates, times, numbers, names and booking numbers.
Answer with the reply only."""


ModelAnswer = ChatResult  # one model step's answer: text, model, fingerprint, tokens


class ModelSteps:
    """The two model steps of one sim target; one HTTP client shared by all its calls."""

    def __init__(self, base_url: str, model: str, *, api_key: str | None, temperature: float,
                 timeout_s: float, headers: dict[str, str], max_connections: int):
        self._client = ChatClient(base_url, api_key=api_key, headers=headers, timeout_s=timeout_s,
                                  max_connections=max_connections, json_mode_fallback=True,
                                  who="the sim model's answer")
        self.url = self._client.url
        self.endpoint = self._client.endpoint
        self.model = model
        self.temperature = temperature

    async def understand(self, text: str, *, expecting: str | None, today: date) -> tuple[Reading, ModelAnswer]:
        system = UNDERSTAND_PROMPT.format(today=today.isoformat(), weekday=_WEEKDAYS[today.weekday()],
                                          expecting=expecting or "nothing yet")
        answer = await self._chat(system, text, json_mode=True)
        return reading_from(text, answer.text), answer

    async def word(self, draft: str, lang: str | None) -> ModelAnswer:
        language = _LANGUAGES.get(lang or "", "the caller's language")
        answer = await self._chat(WORD_PROMPT.format(language=language), draft)
        if not answer.text.strip():
            answer.text = draft  # a model that says nothing must not leave the caller in silence
        return answer

    async def _chat(self, system: str, user: str, *, json_mode: bool = False) -> ModelAnswer:
        body: dict[str, Any] = {"model": self.model, "temperature": self.temperature,
                                "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}
        if json_mode:
            body["response_format"] = {"type": "json_object"}
        return await self._client.send(body)

    async def aclose(self) -> None:
        await self._client.aclose()


def reading_from(caller_text: str, model_text: str) -> Reading:
    """The model's JSON as a `Reading`; each field kept only when it has the right shape."""
    r = Reading(text=caller_text)
    raw = model_text.strip()
    m = _FENCED.match(raw)
    if m:
        raw = m.group(1)
    try:
        obj = json.loads(raw)
    except ValueError:
        return r  # not JSON: the agent did not understand, which the checks will show
    if not isinstance(obj, dict):
        return r
    for flag in _FLAGS:
        if obj.get(flag) is True:
            setattr(r, flag, True)
    intent = obj.get("intent")
    if isinstance(intent, str) and intent in _INTENT_FLAGS:
        setattr(r, _INTENT_FLAGS[intent], True)
    d = obj.get("date")
    if isinstance(d, str):
        try:
            r.slots["date"] = date.fromisoformat(d).isoformat()
        except ValueError:
            r.bad_date = True
    t = obj.get("time")
    if isinstance(t, str) and (tm := _HHMM.match(t.strip())):
        r.slots["time"] = f"{int(tm.group(1)):02d}:{tm.group(2)}"
    n = obj.get("party_size")
    if isinstance(n, int) and not isinstance(n, bool) and 0 < n < 1000:
        r.slots["party_size"] = n
    phone = obj.get("phone")
    if isinstance(phone, str) and phone.strip():
        r.slots["phone"] = re.sub(r"\D", "", phone)[:15]
    bid = obj.get("booking_id")
    if isinstance(bid, str) and (bm := _BOOKING_ID.match(bid.strip())):
        r.booking_id = f"B{bm.group(1)}"
    name = obj.get("name")
    if isinstance(name, str) and 0 < len(name.strip()) <= 40:
        r.name = name.strip()
    if r.yes and r.no:
        r.yes = False
    return r

