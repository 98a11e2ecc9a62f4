"""Real answers of real model snapshots (OpinionQA, LLMDrift), served as one silent model alias.

The data sits in the shared folder beside the checkouts (`../shared/data/llmdrift-opinionqa`,
see its README; it is read from there, never copied into the project). Chen, Zaharia and Zou,
"How is ChatGPT's behavior changing over time?" (2023).

    data = OpinionQA.load()                       # skips the test when the data is not there
    questions = data.sample(150)
    with data.server(questions, "gpt-4-0314") as server:   # an OpenAI-compatible endpoint
        ... base_url=server.base_url, model "gpt-4" ...
        server.snapshot = "gpt-4-0613"            # the silent update: same alias, no fingerprint
        server.noise = 0.03                       # a call's answer reworded now and then

One answer per snapshot and question is recorded; the variation between two calls of one
snapshot is modelled by rewording a share of answers (`noise`) without changing their meaning:
"(A) Very optimistic" ↔ "(A). Very optimistic", a full stop added or dropped.
"""

from __future__ import annotations

import json
import os
import random
import re
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mock_openai import MockOpenAI  # noqa: E402

DATASET = "llmdrift-opinionqa"
OPTION_CHECK = r"\([A-E]\)"  # the suite's check: the answer names one of the options


def shared_data() -> Path | None:
    """The shared data folder: the nearest `shared/data` above this checkout (/work/main/tests and
    /work/wt/<helper>/tests both find /work/shared/data); `HARNESS_SHARED_DATA` names it for a
    checkout that lives elsewhere."""
    named = os.environ.get("HARNESS_SHARED_DATA")
    if named:
        return Path(named)
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return None


def reword(text: str, rng: random.Random) -> str:
    """The same answer in other words: the option's punctuation or the final full stop."""
    m = re.match(r"^\(([A-E])\)(\.?)\s*(.*)$", text, re.S)
    if m:
        letter, dot, rest = m.groups()
        return f"({letter}){'' if dot else '.'} {rest}"
    return text[:-1] if text.endswith(".") else text + "."


class Server:
    """An OpenAI-compatible endpoint answering each question as the current snapshot did."""

    def __init__(self, questions: list[dict[str, Any]], snapshot: str, *, noise: float = 0.0, seed: int = 0,
                 alias: str = "gpt-4", latency_ms: float = 0.0):
        self.by_query = {q["query"].strip(): q for q in questions}
        self.snapshot = snapshot
        self.noise = noise
        self.rng = random.Random(seed)
        self.mock = MockOpenAI(reply=self._reply, model=alias, fingerprint=None, latency_ms=latency_ms)

    def _reply(self, messages: list[dict[str, Any]]) -> str:
        asked = str(messages[-1].get("content") or "").strip()
        q = self.by_query.get(asked)
        if q is None:
            return "I'm sorry, I don't know that question."
        text = q["answers"][self.snapshot]["text"]
        if self.noise and self.rng.random() < self.noise:
            text = reword(text, self.rng)
        return text

    @property
    def base_url(self) -> str:
        return self.mock.base_url

    def __enter__(self) -> Server:
        self.mock.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.mock.__exit__(*exc)


class OpinionQA:
    def __init__(self, rows: list[dict[str, Any]]):
        self.rows = rows

    @classmethod
    def load(cls) -> OpinionQA:
        root = shared_data()
        path = root / DATASET / "opinionqa.jsonl" if root else None
        if path is None or not path.is_file():
            pytest.skip(f"the shared data set {DATASET} is not there (../shared/data)")
        return cls([json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()])

    def sample(self, n: int, seed: int = 13) -> list[dict[str, Any]]:
        """`n` questions, the same ones every time."""
        return random.Random(seed).sample(self.rows, n)

    def server(self, questions: list[dict[str, Any]], snapshot: str, **kw: Any) -> Server:
        return Server(questions, snapshot, **kw)


def golden(questions: list[dict[str, Any]], topic: str = "opinion") -> str:
    """One golden file: a single-turn case per question, checking that the answer names an option."""
    lines = [f"topic: {topic}", "cases:"]
    for q in questions:
        lines.append(f"  - id: {q['id']}")
        lines.append("    turns:")
        lines.append(f"      - caller: {json.dumps(q['query'])}")
        lines.append(f"        expect: [{{regex: {json.dumps(OPTION_CHECK)}}}]")
    return "\n".join(lines) + "\n"


def suite(name: str = "opinion-drift", *, concurrency: int = 32, extra: str = "") -> str:
    """A daily drift suite on the silent alias (the server's URL comes from ${LLM_URL})."""
    return f"""
name: {name}
golden: ["golden/*.yaml"]
target:
  kind: openai
  base_url: "${{LLM_URL}}"
  model: gpt-4
  temperature: 0.1
  stream: false
  limits: {{concurrency: {concurrency}, timeout_s: 10, retries: 1, backoff_s: 0.01}}
store: {{url: "sqlite:///history.db"}}
{extra}
"""
