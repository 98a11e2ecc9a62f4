"""The restaurant's facts and FAQ answers, read from knowledge.yaml beside this module.

Answers are data, not code, so adding a question the agent can answer means adding a
topic to the YAML. Matching is by keyword, in the order topics appear in the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

__all__ = ["Facts", "Knowledge", "load_knowledge"]

_FILE = Path(__file__).with_name("knowledge.yaml")


@dataclass(frozen=True)
class Facts:
    name: dict[str, str]
    opens: time
    closes: time
    last_seating: time
    closed_weekdays: tuple[int, ...]
    max_party: int
    seating_step_min: int


@dataclass(frozen=True)
class Topic:
    name: str
    keywords: dict[str, tuple[str, ...]]
    answers: dict[str, tuple[str, ...]]


class Knowledge:
    def __init__(self, data: dict[str, Any]):
        f = data["facts"]
        self.facts = Facts(
            name=dict(f["name"]),
            opens=time.fromisoformat(f["opens"]),
            closes=time.fromisoformat(f["closes"]),
            last_seating=time.fromisoformat(f["last_seating"]),
            closed_weekdays=tuple(f["closed_weekdays"]),
            max_party=int(f["max_party"]),
            seating_step_min=int(f["seating_step_min"]),
        )
        self.topics = [
            Topic(
                name=name,
                keywords={lang: tuple(str(k).lower() for k in kws) for lang, kws in t["keywords"].items()},
                answers={lang: tuple(a) for lang, a in t["answer"].items()},
            )
            for name, t in data["topics"].items()
        ]
        self._by_name = {t.name: t for t in self.topics}
        self._patterns = {t.name: _pattern(t) for t in self.topics}

    def match(self, text: str, limit: int = 2) -> list[str]:
        """Topics the caller asks about, in the order the caller mentions them."""
        lowered = text.lower()
        found: list[tuple[int, str]] = []
        for t in self.topics:
            m = self._patterns[t.name].search(lowered)
            if m:
                found.append((m.start(), t.name))
        return [name for _, name in sorted(found)][:limit]

    def answer(self, topic: str, lang: str, style: int) -> str:
        """The topic's answer in `lang`; `style` picks the wording (clamped to what exists)."""
        variants = self._by_name[topic].answers[lang]
        return variants[min(style, len(variants) - 1)]


def _pattern(topic: Topic) -> re.Pattern[str]:
    # Japanese has no word boundaries; English keywords must match whole words.
    parts = [re.escape(k) for k in topic.keywords.get("ja", ())]
    parts += [rf"\b{re.escape(k)}\b" for k in topic.keywords.get("en", ())]
    return re.compile("|".join(parts))


@lru_cache(maxsize=1)
def load_knowledge() -> Knowledge:
    with _FILE.open(encoding="utf-8") as fh:
        return Knowledge(yaml.safe_load(fh))
