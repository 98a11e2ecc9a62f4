"""Offline call throughput of the post-merge suite, and the harness's own cost per turn.

    python bench/bench_calls.py                 # 2 cores, 20 rounds of the suite, concurrency 16
    python bench/bench_calls.py --cores 0 --rounds 50 --cli

Two figures, both against the embedded sim agent (no network):

1. **Calls per second.** Every case of `suites/post-merge.yaml` (scripted and goal-driven
   calls, checks included; the chaos cases, which inject latency on purpose, left out) played `--rounds` times through the real `Runner` with the
   agent's latency set to zero, pinned to `--cores` CPUs (Linux `sched_setaffinity`; 0 = no
   pinning). Zero latency makes this the harness's ceiling: in a real run the agent's own
   latency, divided by the concurrency, sets the pace.
2. **Overhead per turn.** The same calls, one at a time, with the agent answering each turn
   in a fixed `--latency-ms`: the wall time of each call minus the time the agent itself
   reported for its turns, divided by the caller turns. That is what the harness (driving
   the caller, its brain, checks, the guard) adds on top of the agent's latency.

With `--cli` it also times the whole `harness run` (process start, loading, store writes,
reports) once, for the end-to-end figure a CI job sees.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.calls import compile_call  # noqa: E402
from harness.loading import load_cases, load_suite, suite_target_raw  # noqa: E402
from harness.runner import Runner, WorkItem  # noqa: E402
from harness.targets.base import create  # noqa: E402

SUITE = ROOT / "suites" / "post-merge.yaml"


def pin(cores: int) -> str:
    if cores <= 0 or not hasattr(os, "sched_setaffinity"):
        return f"all {os.cpu_count()} cores"
    available = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, set(available[:cores]))
    return f"{min(cores, len(available))} cores"


def build(latency_ms: float, concurrency: int):
    """The suite's target with the agent's latency fixed, and its cases minus the chaos ones.

    Chaos cases inject their own latency and outages on purpose; they would measure the
    faults, not the harness.
    """
    suite = load_suite(str(SUITE))
    cases = [c for c in load_cases(suite) if not c.faults]
    raw = dict(suite_target_raw(suite))
    raw.update(latency_ms=latency_ms, jitter_ms=0)
    raw["limits"] = {**dict(raw.get("limits") or {}), "concurrency": concurrency}
    target = create(raw)
    compiled = [compile_call(c) for c in cases]
    return target, compiled


def run(target, items: list[WorkItem], concurrency: int):
    results = []
    limits = target.limits.model_copy(update={"concurrency": concurrency})
    runner = Runner(target, limits=limits, on_result=results.append, seed=1)
    t0, c0 = time.perf_counter(), time.process_time()
    asyncio.run(runner.run(items))
    return results, time.perf_counter() - t0, time.process_time() - c0


def throughput(rounds: int, concurrency: int) -> None:
    target, compiled = build(0.0, concurrency)
    items = [WorkItem(c, r) for r in range(rounds) for c in compiled]
    results, wall, cpu = run(target, items, concurrency)
    turns = sum(len([t for t in r.transcript.turns if t.index >= 1]) for r in results if r.transcript)
    bad = [r.case_id for r in results if r.status != "passed"]
    print(f"throughput: {len(results)} calls ({len(compiled)} cases × {rounds}), {turns} caller turns "
          f"in {wall:.2f} s → {len(results) / wall:.0f} calls/s, {turns / wall:.0f} turns/s; "
          f"CPU {cpu / len(results) * 1000:.2f} ms per call" + (f"; NOT PASSED: {sorted(set(bad))}" if bad else ""))


def overhead(latency_ms: float, rounds: int) -> None:
    target, compiled = build(latency_ms, 1)
    items = [WorkItem(c, r) for r in range(rounds) for c in compiled]
    results, wall, _ = run(target, items, 1)
    per_turn = []
    for r in results:
        if r.transcript is None:
            continue
        turns = [t for t in r.transcript.turns if t.index >= 1]
        agent = sum(t.reply.total_ms or 0.0 for t in r.transcript.turns)
        if turns:
            per_turn.append((r.duration_ms - agent) / len(turns))
    per_turn.sort()
    print(f"overhead: agent latency {latency_ms:g} ms per turn, {len(results)} calls one at a time: the harness adds "
          f"{statistics.median(per_turn):.2f} ms per turn (median; p95 {per_turn[int(0.95 * (len(per_turn) - 1))]:.2f} ms)")


def cli() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "harness", "run", str(SUITE), "--store", f"sqlite:///{tmp}/h.db",
               "--no-reports", "--no-progress", "-q"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    print(f"cli: harness run suites/post-merge.yaml (sim latency as the suite sets it) took {wall:.2f} s, "
          f"exit {proc.returncode}: {proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-200:]}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cores", type=int, default=2, help="pin to this many CPUs (0: no pinning)")
    p.add_argument("--rounds", type=int, default=20, help="how many times the whole suite is played")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--latency-ms", type=float, default=20.0, help="agent latency for the overhead figure")
    p.add_argument("--cli", action="store_true", help="also time the whole `harness run` once")
    args = p.parse_args()
    print(f"post-merge suite, offline, {pin(args.cores)}")
    throughput(args.rounds, args.concurrency)
    overhead(args.latency_ms, 1)
    if args.cli:
        cli()


if __name__ == "__main__":
    main()
