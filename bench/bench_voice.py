"""Timing fidelity and capacity of the voice target: many simultaneous calls on a real clock.

    python bench/bench_voice.py                   # 1, 10 and 50 simultaneous calls
    python bench/bench_voice.py --calls 50 --stt none

Each call is the greeting plus two spoken caller turns (espeak-ng, cached) against
`tests/voice_agent.py` running in another process, with WebRTC VAD on every agent frame.
Printed per size:

- frame lateness: how late each of the caller's 20 ms frames went out after its slot on
  the clock (p50, p99, max), the figure a phone line is judged by;
- response-time error: the harness's measured start of each answer (first voiced frame it
  heard) minus the agent's own record of when it sent that answer's first audio (both on
  the machine's monotonic clock), p50 and p99 of its absolute value;
- CPU seconds of the harness process per call-minute.

Targets (issue 15): p99 lateness ≤ 5 ms and response-time error ≤ 20 ms at 50 calls on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Awaitable, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.spec import CaseSpec  # noqa: E402
from harness.targets.base import CallContext  # noqa: E402
from harness.targets.voice import VoiceConfig, VoiceTarget  # noqa: E402

LINES = ["I would like a table for two tonight.", "Yes please, at seven."]


class Ctx(CallContext):
    def __init__(self, case: CaseSpec, repeat_index: int):
        self.case = case
        self.repeat_index = repeat_index

    async def request(self, fn: Callable[[], Awaitable[Any]], *, what: str = "request") -> Any:
        return await fn()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


async def one_call(target: VoiceTarget, i: int, out: dict[str, list]) -> None:
    case = CaseSpec(id=f"bench-{i}", language="en", turns=[{"caller": line} for line in LINES])
    conv = await target.open(case, Ctx(case, 0))
    line = conv.line  # type: ignore[attr-defined]
    replies = [await conv.greet()]
    for text in LINES:
        replies.append(await conv.reply(text))
    await conv.close()
    out["lateness"] += line.lateness[5:]  # the first frames go out while the call is being set up
    out["starts"] += [(case.id, line.t0 + r.voice["answer_ms"][0] / 1000) for r in replies
                      if r is not None and r.voice and r.voice.get("answer_ms")]
    out["seconds"].append(line.now() - line.t0)


async def run_size(url: str, calls: int, stt: str) -> dict[str, Any]:
    target = VoiceTarget(VoiceConfig(kind="voice", url=url, turn_end_ms=1000, stt={"kind": stt},
                                     limits={"concurrency": calls, "case_timeout_s": 120}))
    out: dict[str, list] = {"lateness": [], "starts": [], "seconds": []}
    # synthesise the lines once (cached), as a run with a warm cache does
    warm = CaseSpec(id="warm", language="en", turns=[{"caller": "x"}])
    await target.speech()[0].speak(LINES[0], "en", None), await target.speech()[0].speak(LINES[1], "en", None)
    del warm
    cpu0 = time.process_time()
    await asyncio.gather(*(one_call(target, i, out) for i in range(calls)))
    cpu = time.process_time() - cpu0
    await target.aclose()
    return {"cpu": cpu, **out}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, action="append", help="simultaneous calls (repeatable)")
    ap.add_argument("--stt", default="none", choices=["none", "pocketsphinx"])
    args = ap.parse_args()
    sizes = args.calls or [1, 10, 50]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    agent = subprocess.Popen([sys.executable, str(ROOT / "tests" / "voice_agent.py")], stdout=subprocess.PIPE,
                             text=True, env=env)
    try:
        url = agent.stdout.readline().strip()  # type: ignore[union-attr]
        answers_url = url.replace("ws://", "http://").replace("/media", "/answers")
        print(f"{'calls':>5}  {'late p50':>8}  {'late p99':>8}  {'late max':>8}  {'err p50':>7}  {'err p99':>7}  "
              f"{'answers':>7}  {'CPU s/call-min':>14}")
        for n in sizes:
            before = len(json.load(urllib.request.urlopen(answers_url)))
            got = asyncio.run(run_size(url, n, args.stt))
            answers = json.load(urllib.request.urlopen(answers_url))[before:]
            sent: dict[str, list[float]] = {}
            for a in answers:
                sent.setdefault(a["case"], []).append(a["first_audio"])
            errors = []
            heard: dict[str, list[float]] = {}
            for case_id, t in got["starts"]:
                heard.setdefault(case_id, []).append(t)
            for case_id, ts in heard.items():
                for t, s in zip(ts, sent.get(case_id, [])):
                    errors.append(abs(t - s) * 1000)
            late = [x * 1000 for x in got["lateness"]]
            minutes = sum(got["seconds"]) / 60
            print(f"{n:>5}  {pct(late, .5):>6.2f}ms  {pct(late, .99):>6.2f}ms  {max(late):>6.1f}ms  "
                  f"{pct(errors, .5):>5.1f}ms  {pct(errors, .99):>5.1f}ms  {len(errors):>7}  "
                  f"{got['cpu'] / minutes:>14.2f}")
    finally:
        agent.terminate()
        agent.wait(10)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
