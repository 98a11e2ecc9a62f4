"""Store write throughput under two concurrent shards, and the scheduler daemon's idle cost.

    python bench/bench_store.py                       # everything: SQLite, PostgreSQL, daemon
    python bench/bench_store.py --only sqlite --results 20000
    python bench/bench_store.py --only postgres       # uses $HARNESS_BENCH_POSTGRES_URL, else
                                                      # starts one with scripts/postgres.sh
    python bench/bench_store.py --only daemon --seconds 20

Throughput: two processes ("shards") start at the same instant and each writes N realistic
case results (a three-turn transcript, three checks) through `ResultWriter`, the path a
real run takes, into its own run of one run group in the same store. Reported: results per
second over both (from the common start to the last commit), and per process alone first
for comparison.

Daemon: `harness schedule` on a suite that fires once a year, sampled from /proc for N
seconds after it is ready: CPU share (user+system ticks) and resident memory.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WRITER = r"""
import sys, time
sys.path.insert(0, {root!r})
from bench.bench_store import make_result
from harness.records import RunInfo
from harness.store import ResultWriter, Store
url, run_id, n, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
store = Store.open(url)
store.start_run(RunInfo(run_id=run_id, suite="bench", started=time.time(), planned=n, group="bench-group"))
results = [make_result(i) for i in range(n)]
while time.time() < start_at:
    time.sleep(0.001)
t0 = time.time()
with ResultWriter(store, run_id) as writer:
    for r in results:
        writer.add(r)
t1 = time.time()
store.finish_run(run_id, status="complete", ended=t1, exit_code=0, counts={{"passed": n}})
print(t0, t1, flush=True)
"""


def make_result(i: int):
    """One realistic result: three turns of a Japanese reservation call, three checks."""
    from harness.records import AgentReply, CaseResult, CheckResult, Outcome, Transcript, Turn

    turns = [
        Turn(n, caller, AgentReply(text=answer, first_token_ms=180.0 + n, total_ms=640.0 + n, model="primary",
                                   fingerprint="fp_abc123", route="primary", tokens_in=420, tokens_out=38, cost=0.0004,
                                   state={"intent": "reservation", "slots": {"party_size": 4}}))
        for n, (caller, answer) in enumerate([
            ("明日の19時に4名で予約したいです", "明日19時に4名様ですね。お名前をお伺いできますか？"),
            ("山田です", "山田様、ありがとうございます。ご予約を確定してもよろしいでしょうか？"),
            ("はい、お願いします", "ご予約を承りました。明日19時、4名様、山田様でお待ちしております。"),
        ], start=1)
    ]
    checks = [
        CheckResult(name="contains_any", passed=True, reason="found 19時", args={"values": ["19時", "19:00"]}, turn=1),
        CheckResult(name="regex", passed=True, reason="matched", args={"pattern": "山田.*様"}, turn=2),
        CheckResult(name="slots", passed=True, reason="party_size=4", args={"party_size": 4}),
    ]
    return CaseResult(case_id=f"rsv-ja-{i:06d}", topic="reservation", tags=["restaurant", "ja"], repeat_index=0,
                      status="passed", checks=checks,
                      transcript=Transcript(turns=turns, outcome=Outcome(intent="reservation", slots={"party_size": 4})),
                      started=time.time(), duration_ms=1900.0, source="golden/reservation/ja.yaml:4")


def write_concurrently(url: str, n: int, processes: int) -> tuple[float, float]:
    """Return (results per second over all processes, wall seconds)."""
    from harness.store import Store

    Store.open(url).close()  # create the tables before the race, as the first run would
    start_at = time.time() + 2.5  # after every process has imported and built its results
    code = WRITER.format(root=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", code, url, f"bench-{uuid.uuid4().hex[:8]}", str(n), str(start_at)],
                              stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    spans = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"writer failed with exit status {p.returncode}")
        t0, t1 = map(float, out.split())
        spans.append((t0, t1))
    wall = max(t1 for _, t1 in spans) - min(t0 for t0, _ in spans)
    return n * processes / wall, wall


def bench_store(label: str, url_factory, n: int) -> None:
    for processes in (1, 2):
        url = url_factory()
        rate, wall = write_concurrently(url, n, processes)
        print(f"{label:10s} {processes} shard(s) x {n} results: {rate:8.0f} results/s ({wall:.2f} s)", flush=True)
    getattr(url_factory, "cleanup", lambda: None)()


def sqlite_urls():
    import shutil

    folder = Path(tempfile.mkdtemp(prefix="harness-bench-"))

    def fresh() -> str:
        return f"sqlite:///{folder}/{uuid.uuid4().hex[:8]}.db"

    fresh.cleanup = lambda: shutil.rmtree(folder, ignore_errors=True)  # type: ignore[attr-defined]
    return fresh


def postgres_urls():
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    server = os.environ.get("HARNESS_BENCH_POSTGRES_URL") or os.environ.get("HARNESS_TEST_POSTGRES_URL")
    if not server:
        server = subprocess.run(["bash", str(ROOT / "scripts" / "postgres.sh")], check=True, capture_output=True,
                                text=True).stdout.strip().splitlines()[-1]
    admin = create_engine(server, isolation_level="AUTOCOMMIT")

    created: list[str] = []

    def fresh() -> str:
        name = f"harness_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return make_url(server).set(database=name).render_as_string(hide_password=False)

    def cleanup() -> None:
        with admin.connect() as conn:
            for name in created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    fresh.cleanup = cleanup  # type: ignore[attr-defined]
    return fresh


def bench_daemon(seconds: float) -> None:
    folder = Path(tempfile.mkdtemp(prefix="harness-bench-daemon-"))
    (folder / "golden" / "question").mkdir(parents=True)
    (folder / "suites").mkdir()
    (folder / "golden" / "question" / "q.yaml").write_text(
        "topic: question\ncases:\n  - id: q1\n    prompt: hours?\n", encoding="utf-8")
    (folder / "suites" / "yearly.yaml").write_text(
        "name: yearly\ngolden: [golden/**/*.yaml]\ntarget: {kind: sim}\nschedule: \"0 0 1 1 *\"\ntimezone: UTC\n",
        encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "harness", "schedule", "suites/"], cwd=folder,
                            stdout=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if json.loads(line).get("event") == "ready":
                break
        time.sleep(1.0)  # let start-up work settle
        ticks = os.sysconf("SC_CLK_TCK")
        cpu0, rss = _cpu_ticks(proc.pid), []
        t0 = time.time()
        while time.time() - t0 < seconds:
            rss.append(_rss_kib(proc.pid))
            time.sleep(0.5)
        cpu1, elapsed = _cpu_ticks(proc.pid), time.time() - t0
        share = (cpu1 - cpu0) / ticks / elapsed * 100
        print(f"daemon idle over {elapsed:.0f} s: CPU {share:.3f} % ({(cpu1 - cpu0) / ticks * 1000:.0f} ms), "
              f"RSS {sum(rss) / len(rss) / 1024:.1f} MiB average, {max(rss) / 1024:.1f} MiB peak", flush=True)
    finally:
        proc.terminate()
        proc.wait(30)


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("sqlite", "postgres", "daemon"), action="append")
    parser.add_argument("--results", type=int, default=10_000, help="results written by each shard")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to sample the idle daemon")
    args = parser.parse_args()
    only = set(args.only or ("sqlite", "postgres", "daemon"))
    if "sqlite" in only:
        bench_store("sqlite", sqlite_urls(), args.results)
    if "postgres" in only:
        bench_store("postgres", postgres_urls(), args.results)
    if "daemon" in only:
        bench_daemon(args.seconds)


if __name__ == "__main__":
    main()
