"""Benchmark: judge calls per judged answer, and wall time for 300 judged answers.

    cd /work/main && python bench/bench_judge.py            # defaults: 300 answers, 50 ms, concurrency 50
    python bench/bench_judge.py --answers 300 --latency-ms 50 --concurrency 50 --inline

A mock OpenAI-compatible judge (tests/mock_judge.py) runs in a subprocess with a fixed
latency. 300 distinct answers are judged through the real `judge` check and JudgeService
(deepeval GEval over our pooled client) with the `confirms-reservation-details` rubric,
then judged again by a fresh service over the same cache file, as tomorrow's run would.

Targets: 1.0 judge call per judged answer on the first run (GEval alone makes 2), 0 on
the unchanged rerun, and a wall time close to the ideal answers × latency ÷ concurrency
(300 × 0.05 ÷ 50 = 0.3 s). The same number of bare POSTs to the same server is timed
too, so the judge stack's own overhead can be told apart from the machine's. `--inline` uses inline criteria instead of the rubric, whose
steps must be generated once (so N + 1 calls). deepeval's one-off import is timed apart.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.checks import Subject, compile_check  # noqa: E402
from harness.judge import JudgeService  # noqa: E402
from harness.records import AgentReply, Transcript, Turn  # noqa: E402
from harness.spec import CheckSpec, JudgeSpec  # noqa: E402

CALLER = "明日の19時に予約したいです"


def start_mock(latency_ms: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "mock_judge.py"), "--latency-ms", str(latency_ms), "--rule", "お名前=9"],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("READY "):
        proc.kill()
        raise SystemExit(f"the mock judge did not start: {line!r}")
    return proc, line.split(" ", 1)[1]


def server_calls(url: str) -> int:
    stats_url = url.rsplit("/v1", 1)[0] + "/stats"
    with urllib.request.urlopen(stats_url, timeout=5) as resp:  # noqa: S310 — 127.0.0.1 only
        return int(json.loads(resp.read())["calls"])


async def judge_run(spec: JudgeSpec, cache_url: str, raw_check: dict, answers: list[str]) -> tuple[float, dict]:
    service = JudgeService.from_spec(spec, root=str(ROOT), cache=cache_url)
    check = compile_check(CheckSpec.model_validate(raw_check), scope="turn")
    subjects = []
    for i, text in enumerate(answers):
        turn = Turn(index=1, caller=CALLER, reply=AgentReply(text=text))
        subjects.append(Subject(text=text, transcript=Transcript(turns=[turn]), turn=turn, extras={"judge": service}))
    t0 = time.perf_counter()
    results = await asyncio.gather(*(check.run(s) for s in subjects))
    wall = time.perf_counter() - t0
    await service.aclose()
    bad = [r for r in results if r.error or not r.passed]
    if bad:
        raise SystemExit(f"{len(bad)} judged answers did not pass, e.g. {bad[0].reason}")
    return wall, service.stats()


async def http_floor(url: str, n: int, concurrency: int) -> float:
    """The same number of bare POSTs to the same server on the same kind of client: the floor."""
    import json

    from harness.httpclient import Session

    client = Session(timeout=30, max_connections=concurrency, headers={"Content-Type": "application/json"})
    gate = asyncio.Semaphore(concurrency)
    body = json.dumps({"model": "bench-judge",
                       "messages": [{"role": "user", "content": "Test Case:\nお名前" + "x" * 1500}]}).encode()

    async def one() -> None:
        async with gate:
            reply = await client.send("POST", url + "/chat/completions", body, endpoint=url)
            try:
                await reply.read()
                assert reply.status == 200, reply.status
            finally:
                await reply.aclose()

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    wall = time.perf_counter() - t0
    await client.aclose()
    return wall


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--answers", type=int, default=300)
    p.add_argument("--latency-ms", type=float, default=50.0)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--inline", action="store_true", help="inline criteria (steps generated once) instead of a rubric")
    args = p.parse_args()

    t0 = time.perf_counter()
    from harness.judge._deepeval import load_deepeval

    load_deepeval(str(ROOT))
    import_s = time.perf_counter() - t0

    proc, url = start_mock(args.latency_ms)
    try:
        spec = JudgeSpec(base_url=url, model="bench-judge", concurrency=args.concurrency)
        raw = ({"judge": "人数と時間を復唱し、名前を尋ねている"} if args.inline
               else {"judge": {"rubric": "confirms-reservation-details"}})
        answers = [f"明日19時に{i % 8 + 1}名様ですね。お名前をお伺いしてもよろしいですか？（{i}）" for i in range(args.answers)]
        with tempfile.TemporaryDirectory() as tmp:
            cache_url = f"sqlite:///{Path(tmp) / 'judge-cache.db'}"
            first_wall, first = await judge_run(spec, cache_url, raw, answers)
            first_calls = server_calls(url)
            again_wall, again = await judge_run(spec, cache_url, raw, answers)
            again_calls = server_calls(url) - first_calls
        floor = await http_floor(url, args.answers, args.concurrency)
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    ideal = max(1e-9, args.answers * args.latency_ms / 1000 / args.concurrency)
    n = args.answers
    print(f"judge benchmark: {n} answers, {args.latency_ms:g} ms judge latency, concurrency {args.concurrency}, "
          f"{'inline criteria' if args.inline else 'rubric with steps'}")
    print(f"  deepeval import (once per process): {import_s:.2f} s")
    print(f"  first run:  {first_calls} judge calls = {first_calls / n:.3f} per judged answer (target 1.0); "
          f"wall {first_wall:.3f} s vs ideal {ideal:.3f} s = {first_wall / ideal:.2f}x")
    print(f"  rerun:      {again_calls} judge calls = {again_calls / n:.3f} per judged answer (target 0); "
          f"wall {again_wall:.3f} s; {again['cached']} verdicts from the cache")
    print(f"  bare HTTP floor (same server and client, no judge stack): {floor:.3f} s = {floor / ideal:.2f}x ideal")
    print(f"  judge tokens (first run): {first['tokens_in']} in, {first['tokens_out']} out")


if __name__ == "__main__":
    asyncio.run(main())
