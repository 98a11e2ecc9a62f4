"""Caller brains: who plays the caller in a goal-driven call.

`make_brain(case)` picks the brain a case asks for: `rules` (deterministic, offline, used
in CI) or `llm` (any OpenAI-compatible endpoint, set in the suite's `caller:` block).
"""

from __future__ import annotations

import zlib

from ..spec import CaseSpec
from ._base import CallerBrain, CallerMove
from ._listen import hear
from .llm import LLMBrain, system_prompt
from .rules import RuleBrain

__all__ = ["CallerBrain", "CallerMove", "LLMBrain", "RuleBrain", "hear", "make_brain"]


def make_brain(case: CaseSpec, repeat_index: int = 0) -> CallerBrain:
    """The brain for a goal-driven case (raises ValueError when the llm brain has no endpoint)."""
    caller = case.caller
    if caller is None:
        raise ValueError(f"case {case.id!r} has no goal-driven caller")
    lang = caller.language or case.resolved_language or "ja"
    lang = lang[:2].lower()
    if caller.resolved_brain == "llm":
        model = caller.model
        if model is None:
            raise ValueError("brain: llm needs the suite's caller: block (base_url, model)")
        prompt = system_prompt(caller.goal, caller.facts, language=lang, persona=caller.persona,
                               question=caller.question, corrections=caller.corrections, flexible=caller.flexible)
        seed = None
        if model.seed is not None:  # the same seed per case and repeat: repeats differ, reruns do not
            seed = zlib.crc32(f"{model.seed}:{case.id}:{repeat_index}".encode()) & 0x7FFFFFFF
        return LLMBrain(model, prompt, seed=seed)
    return RuleBrain(caller.goal, caller.facts, language=lang, question=caller.question,
                     corrections=caller.corrections, flexible=caller.flexible)
