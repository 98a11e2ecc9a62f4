"""One simulated call: real latency, faults and routing around the rule-based call flow.

Each turn is one simulated model request made through `ctx.request`, so the runner's
rate limit, timeout, retries and circuit breaker treat the sim exactly like a real
endpoint. The request picks a route (and may fail); only when it succeeds does the call
flow move on, so a retried request never advances the conversation twice.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from datetime import date
from typing import TYPE_CHECKING

from ...records import AgentReply, Outcome
from ...spec import CaseSpec
from ..base import CallContext, Conversation
from .agent import CallFlow
from .backend import Backend
from .faults import Faults
from .knowledge import load_knowledge
from .llm import ModelAnswer, ModelSteps
from .nlu import Reading, detect_language, normalize
from .phrases import Part, render
from .routes import Route, pick_route

if TYPE_CHECKING:
    from . import SimConfig

__all__ = ["SimConversation"]

FIRST_TOKEN_SHARE = 0.3  # the first words arrive after this share of the turn's latency
SYSTEM_PROMPT_TOKENS = 300  # the notional prompt every turn resends, for token estimates
_CJK = range(0x3000, 0xA000)


def estimate_tokens(text: str) -> int:
    """About one token per kana/kanji and one per four other characters."""
    cjk = sum(1 for c in text if ord(c) in _CJK)
    return cjk + math.ceil((len(text) - cjk) / 4)


class SimConversation(Conversation):
    def __init__(self, config: SimConfig, case: CaseSpec, ctx: CallContext, steps: ModelSteps | None = None):
        self.config = config
        self.ctx = ctx
        self.steps = steps  # the live model (brain: llm), else None
        # a chaos case adds its own faults to the suite's (`faults:` on the case)
        self.faults = Faults.from_strings([*config.faults, *case.faults])
        # Faults and jitter draw from this; repeats of a case differ only through them.
        self.rng = random.Random(f"{config.seed}:{case.id}:{ctx.repeat_index}")
        knowledge = load_knowledge()
        self.backend = backend = Backend(knowledge.facts, config.today, config.fully_booked,
                          id_rng=random.Random(f"{config.seed}:{case.id}:booking"))
        self.knowledge = knowledge
        self.flow = CallFlow(backend, knowledge, _language(config.language, case.resolved_language),
                             hallucinate=self._hallucinate)
        self._history_tokens = SYSTEM_PROMPT_TOKENS  # what the next request sends: prompt + call so far

    def _hallucinate(self) -> bool:
        return bool(self.faults.hallucination) and self.rng.random() < self.faults.hallucination

    async def greet(self) -> AgentReply:
        """The recorded greeting: no model call, so it plays even during an outage."""
        text = render([Part("greet")], self.flow.lang, 0, self.knowledge)
        self._history_tokens += estimate_tokens(text)
        return AgentReply(text=text, first_token_ms=0.0, total_ms=0.0, tokens_in=0, tokens_out=0, cost=0.0,
                          state=self.flow.state(), attempts=0)

    async def reply(self, caller: str, *, kind: str = "say") -> AgentReply:
        if self.flow.ended:  # the agent already hung up or transferred
            return AgentReply(text="", first_token_ms=0.0, total_ms=0.0, state=self.flow.state(), ended=True,
                              attempts=0)
        if kind == "say" and self.flow.lang is None:
            self.flow.lang = detect_language(normalize(caller or ""))
        start = time.perf_counter()
        attempts = 0
        first_at = start

        async def one_request() -> Route | None:
            nonlocal attempts, first_at
            attempts += 1
            route = pick_route(self.faults, self.rng)
            delay = self._delay_ms(route) / 1000
            await asyncio.sleep(delay * FIRST_TOKEN_SHARE)
            first_at = time.perf_counter()
            await asyncio.sleep(delay * (1 - FIRST_TOKEN_SHARE))
            return route

        route = await self.ctx.request(one_request, what="sim turn")
        answers: list[ModelAnswer] = []
        if route is None:
            parts = self.flow.on_outage()
        elif kind == "silence":
            parts = self.flow.on_silence()
        elif kind == "dtmf":
            parts = self.flow.on_dtmf(caller or "")
        elif self.steps is not None:
            reading, answer = await self._understand(caller or "")
            answers.append(answer)
            parts = self.flow.on_say(caller or "", reading)
        else:
            parts = self.flow.on_say(caller or "")
        text = render(parts, self.flow.lang, route.style if route else 0, self.knowledge)
        if self.steps is not None and route is not None and text:
            answer = await self.ctx.request(lambda: self.steps.word(text, self.flow.lang), what="sim model: reply")
            answers.append(answer)
            text = answer.text
            first_at = time.perf_counter()  # not streamed: the first words come with the whole reply
        end = time.perf_counter()
        said = caller if kind != "silence" else ""
        if answers:  # the live model reports what it used
            tokens_in = sum(a.tokens_in or 0 for a in answers)
            tokens_out = sum(a.tokens_out or 0 for a in answers)
        else:
            tokens_in = self._history_tokens + estimate_tokens(said)
            tokens_out = estimate_tokens(text)
            self._history_tokens = tokens_in + tokens_out
        live = answers[-1] if answers else None
        return AgentReply(
            text=text,
            first_token_ms=(first_at - start) * 1000,
            total_ms=(end - start) * 1000,
            model=(live.model or self.config.model) if live else route.model if route else None,
            fingerprint=live.fingerprint if live else route.fingerprint if route else None,
            route=route.name if route else "none",
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost=0.0,
            state=self.flow.state(),
            ended=self.flow.ended,
            attempts=attempts,
        )

    async def _understand(self, caller: str) -> tuple[Reading, ModelAnswer]:
        assert self.steps is not None
        steps, flow = self.steps, self.flow
        return await self.ctx.request(
            lambda: steps.understand(normalize(caller), expecting=flow.pending, today=flow.backend.today),
            what="sim model: understand")

    def _delay_ms(self, route: Route | None) -> float:
        base = self.config.latency_ms + self.faults.latency_ms
        if self.config.jitter_ms:
            base += self.rng.uniform(0, self.config.jitter_ms)
        if route is None:
            return base
        return base * route.latency_factor + route.extra_ms

    async def close(self) -> Outcome:
        f = self.flow
        return Outcome(
            intent=f.intent,
            slots=dict(f.slots),
            transferred=f.transferred,
            transfer_reason=f.transfer_reason,
            ended_by=f.ended_by or "caller",
            side_effects=self._side_effects(),
        )

    def _side_effects(self) -> dict:
        """What the booking book really holds at hang-up, not what the agent said it did."""
        out = dict(self.flow.side_effects)
        booked = out.get("booking")
        if booked is not None:
            b = self.backend.find(booked["id"])
            if b is None:
                del out["booking"]
            else:
                out["booking"] = b.as_dict()
                if not self.backend.is_free(date.fromisoformat(b.date), b.time):
                    out["overbooked"] = True  # the agent promised a table that was not free
        gone = out.get("cancelled")
        if gone is not None and self.backend.find(gone) is not None:
            del out["cancelled"]  # the agent said so, but the booking is still there
        return out


def _language(configured: str, case_language: str | None) -> str | None:
    if configured in ("ja", "en"):
        return configured
    lang = (case_language or "")[:2].lower()
    return lang if lang in ("ja", "en") else None
