"""`harness slo status` over a long history: 90 days of daily runs of 10,000 results.

    python bench/bench_slo.py                    # 90 days × 10,000 results, six objectives
    python bench/bench_slo.py --days 30 --results 2000

The history is written through the Store API into a fresh SQLite file (each result one call
of three caller turns, a `json` and a `contains` check and a judged rubric; a share of
errors, failures and slow turns). Then `harness slo status --json` runs in a fresh process,
three times:

- **cold**: runs stored before the suite had objectives: each run is counted once from its
  stored rows (900,000 results read) and its tally kept in the run's row;
- **warm**: every run already has its tally (what `harness run` leaves): 90 small mappings read;
- **warm again**, to show the figure is stable.

Each prints wall time and the process's peak memory (max RSS). The figures are a benchmark,
not a timed test: the machines here are shared.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SUITE = """
name: bench-slo
golden: ["golden/*.yaml"]
target: {kind: sim}
store: {url: "sqlite:///history.db"}
objectives:
  - {name: first-token, indicator: first_token_ms, stat: p50, target: "< 150", window: 28d}
  - {name: answer-time, indicator: turn_ms, stat: p99, target: "< 5000", window: 28d}
  - {name: availability, indicator: infra_error_rate, target: "< 0.1%", window: 28d}
  - {name: format, indicator: check_fail_rate, check: json, target: "< 0.01%"}
  - {name: hallucination, indicator: judge_fail_rate, rubric: r1, target: "< 5%"}
  - {name: reservations, indicator: pass_rate, topic: reservation, target: ">= 95%", window: 90d}
budget_policy: {slow_down: 25%, freeze: 50%, post_mortem: 100%}
"""

GOLDEN = """
topic: question
cases:
  - id: q
    prompt: hello
    expect: [{contains: hello}]
"""

RUBRIC = "name: r1\nversion: 1\ncriteria: Answers the question.\n"


def seed(folder: Path, days: int, n: int) -> float:
    from harness.records import AgentReply, CaseResult, CheckResult, Outcome, RunInfo, Transcript, Turn
    from harness.store import Store

    (folder / "golden").mkdir()
    (folder / "suites").mkdir()
    (folder / "rubrics").mkdir()
    (folder / "golden" / "q.yaml").write_text(GOLDEN)
    (folder / "rubrics" / "r1.yaml").write_text(RUBRIC)
    (folder / "suites" / "bench.yaml").write_text(SUITE)
    rng = random.Random(7)
    t0 = time.perf_counter()
    store = Store.open(f"sqlite:///{folder / 'history.db'}")
    now = time.time()
    topics = ("reservation", "question", "cancellation")
    for day in range(days, 0, -1):
        started = now - day * 86400 + 3600
        run_id = f"run-{day:03d}"
        store.start_run(RunInfo(run_id=run_id, suite="bench-slo", target={"kind": "sim"}, started=started, planned=n))
        batch: list[CaseResult] = []
        counts = {"passed": 0, "failed": 0, "error": 0, "not_run": 0}
        for i in range(n):
            topic = topics[i % 3]
            if rng.random() < 0.0008:
                r = CaseResult(f"c{i}", topic, [], 0, "error", error="server_error: 503", error_kind="server_error",
                               started=started, duration_ms=3.0)
            else:
                turns = [Turn(0, None, AgentReply("hello", total_ms=40.0), kind="greeting")]
                for k in range(1, 4):
                    ms = rng.lognormvariate(5.0, 0.5) + (6000 if rng.random() < 0.004 else 0)
                    turns.append(Turn(k, "caller says something", AgentReply(
                        "agent answers with a sentence of some length", first_token_ms=ms / 4, total_ms=ms,
                        model="sim-1", tokens_in=300, tokens_out=30)))
                judged = rng.random() > 0.04
                json_ok = rng.random() > 0.0002
                status = "passed" if judged and json_ok else "failed"
                checks = [CheckResult("json", json_ok, turn=1), CheckResult("contains", True, turn=1),
                          CheckResult("judge", judged, args={"rubric": "r1"}, turn=3)]
                r = CaseResult(f"c{i}", topic, ["bench"], 0, status, checks=checks,
                               transcript=Transcript(turns, Outcome()), started=started, duration_ms=600.0)
            counts[r.status] += 1
            batch.append(r)
            if len(batch) == 2000:
                store.add_results(run_id, batch)
                batch = []
        store.add_results(run_id, batch)
        store.finish_run(run_id, status="complete", ended=started + 600, exit_code=0, counts=counts)
    store.close()
    return time.perf_counter() - t0


def status(folder: Path) -> tuple[float, float, dict]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    code = ("import resource, runpy, sys; sys.argv = ['harness', 'slo', 'status', 'suites/bench.yaml', '--json']\n"
            "try:\n    runpy.run_module('harness', run_name='__main__')\nexcept SystemExit as e:\n    code = e.code\n"
            "else:\n    code = 0\n"
            "print('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\nsys.exit(code)")
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], cwd=folder, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    rss = next(int(ln.split()[1]) for ln in done.stderr.splitlines() if ln.startswith("MAXRSS"))
    return wall, rss / 1024, json.loads(done.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--results", type=int, default=10_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        secs = seed(folder, args.days, args.results)
        size = (folder / "history.db").stat().st_size / 1e6
        print(f"history: {args.days} daily runs × {args.results:,} results = {args.days * args.results:,} results "
              f"({size:,.0f} MB SQLite), written in {secs:.0f} s")
        for label in ("cold (counts every run from its rows, keeps the tallies)", "warm (tallies kept)", "warm again"):
            wall, rss, doc = status(folder)
            print(f"harness slo status, {label}: {wall:.2f} s, peak memory {rss:,.0f} MB")
        from harness.objectives.lines import pct

        for o in doc["suites"][0]["objectives"]:
            print(f"  {o['name']:<14} {o['word']:<16} budget left {pct(o['budget_left']):>7}  "
                  f"({o['runs']} runs, {o['events']:,} {o['unit']})")


if __name__ == "__main__":
    main()
