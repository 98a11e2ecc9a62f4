"""A local OpenAI-compatible server on 127.0.0.1 that plays an LLM judge.

It answers deepeval's two kinds of prompt the way a judge model would: a request for
evaluation steps gets `{"steps": [...]}`, a request for a verdict gets `{"score": n,
"reason": ...}`. The score comes from `rules`: the first (substring, score) whose
substring appears in the judged part of the prompt (the test case or the turns, not the
criteria) wins, else `default_score`; `script` scores are given first, in order. Knobs: `latency_s`, `malformed` (that many
replies are broken JSON; -1 for all), `flip` (score becomes 10 - score: a judge that
drifted), `fingerprint`. It counts every call.

In a test:  async with MockJudge(rules=[("お名前", 9)]) as judge: ... judge.url ...
As a process (the benchmark):  python tests/mock_judge.py --latency-ms 50 --rule お名前=9
prints `READY <url>` and serves until killed; GET /stats returns the counters.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

STEPS_MARKER = '"steps" key'
JUDGED_MARKERS = ("Test Case:", "Per-turn fields:")


@dataclass
class MockJudge:
    rules: list[tuple[str, int]] = field(default_factory=list)
    default_score: int = 5
    latency_s: float = 0.0
    malformed: int = 0
    flip: bool = False
    fingerprint: str = "fp-1"
    script: list[int] = field(default_factory=list)  # verdict scores to give first, in order
    calls: int = 0
    steps_calls: int = 0
    eval_calls: int = 0
    prompts: list[str] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self, port: int = 0) -> "MockJudge":
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/stats", self._stats)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{bound}/v1"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "MockJudge":
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    def reset(self) -> None:
        self.calls = self.steps_calls = self.eval_calls = 0
        self.prompts.clear()

    def counters(self) -> dict[str, int]:
        return {"calls": self.calls, "steps_calls": self.steps_calls, "eval_calls": self.eval_calls}

    # --- handlers ------------------------------------------------------------------------
    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.counters())

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        prompt = body["messages"][-1]["content"]
        self.calls += 1
        self.prompts.append(prompt)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if STEPS_MARKER in prompt:
            self.steps_calls += 1
            content = json.dumps({"steps": ["Check the answer against the criteria.",
                                            "Look for every detail the criteria name.",
                                            "Penalise missing or invented details."]})
        else:
            self.eval_calls += 1
            score, why = self._score(prompt)
            content = json.dumps({"reason": why, "score": score}, ensure_ascii=False)
        if self.malformed:
            self.malformed -= 1 if self.malformed > 0 else 0
            content = '{"reason": "I think this is fine", "score": '  # cut short: not JSON
        return web.json_response({
            "id": f"judge-{self.calls}",
            "object": "chat.completion",
            "model": body.get("model", "judge"),
            "system_fingerprint": self.fingerprint,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": max(1, len(prompt) // 4), "completion_tokens": max(1, len(content) // 4)},
        })

    def _score(self, prompt: str) -> tuple[int, str]:
        if self.script:
            return self._flip(self.script.pop(0)), "scripted score"
        judged = prompt
        for marker in JUDGED_MARKERS:
            if marker in prompt:
                judged = prompt.split(marker, 1)[1]
                break
        for needle, score in self.rules:
            if needle in judged:
                return self._flip(score), f"the answer contains {needle!r}"
        return self._flip(self.default_score), "no rule matched"

    def _flip(self, score: int) -> int:
        return 10 - score if self.flip else score


async def _serve(args: argparse.Namespace) -> None:
    rules = []
    for r in args.rule:
        needle, _, score = r.rpartition("=")
        rules.append((needle, int(score)))
    judge = await MockJudge(rules=rules, default_score=args.default_score, latency_s=args.latency_ms / 1000).start(
        args.port)
    print(f"READY {judge.url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await judge.stop()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--default-score", type=int, default=5)
    p.add_argument("--rule", action="append", default=[], help="SUBSTRING=SCORE, first match wins")
    args = p.parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
