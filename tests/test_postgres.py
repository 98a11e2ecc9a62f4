"""The store, the run group and the suite lock on a real PostgreSQL server.

The same SQLAlchemy code as on SQLite; what differs is real concurrency between processes
and connections that can drop. Every test gets its own database (see pg_fixtures).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from harness.errors import HarnessError
from harness.locks import SuiteLock, holder
from harness.records import AgentReply, CaseResult, CheckResult, RunInfo, Transcript, Turn
from harness.sharding import group_results, group_summary
from harness.store import ResultWriter, Store

from conftest import REPO, Project
from pg_fixtures import pg_server, pg_url, terminate_backends  # noqa: F401  (fixtures)


def result(i: int, status: str = "passed") -> CaseResult:
    reply = AgentReply(text=f"営業時間は11時から22時です ({i})", total_ms=12.5, model="sim", tokens_in=3, tokens_out=9)
    return CaseResult(case_id=f"case-{i:05d}", topic="question", tags=["ja"], repeat_index=0, status=status,
                      checks=[CheckResult(name="contains", passed=status == "passed", reason="ok", args={"text": "11時"})],
                      transcript=Transcript(turns=[Turn(1, "営業時間は？", reply)]), started=time.time(),
                      duration_ms=12.5, source="golden/q.yaml:3")


def start(store: Store, run_id: str, group: str | None = None) -> None:
    store.start_run(RunInfo(run_id=run_id, suite="pg", started=time.time(), planned=0, group=group))


def test_store_round_trip(pg_url: str) -> None:
    store = Store.open(pg_url)
    start(store, "run-1")
    store.add_results("run-1", [result(i) for i in range(50)])
    store.add_results("run-1", [result(i, "failed") for i in range(10)])  # a retried batch replaces, never doubles
    got = store.results("run-1")
    assert len(got) == 50
    assert sum(r.status == "failed" for r in got) == 10
    assert got[0].transcript.turns[0].reply.text.startswith("営業時間は11時")
    store.finish_run("run-1", status="complete", ended=time.time(), exit_code=1, counts={"passed": 40, "failed": 10})
    assert store.get_run("run-").status == "complete" and store.list_runs("pg")[0].counts["failed"] == 10
    store.close()


WRITER = """
import sys, time
sys.path.insert(0, {tests!r})
from test_postgres import result, start
from harness.store import ResultWriter, Store
url, run_id, first, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
store = Store.open(url)
start(store, run_id, group="ci-1")
while time.time() < float(sys.argv[5]):  # both shards start writing at the same moment
    time.sleep(0.005)
with ResultWriter(store, run_id, max_batch=50) as writer:
    for i in range(first, first + n):
        writer.add(result(i))
store.finish_run(run_id, status="complete", ended=time.time(), exit_code=0, counts={{"passed": n}})
"""


@pytest.mark.slow
def test_two_shards_write_one_group_at_once(pg_url: str) -> None:
    Store.open(pg_url).close()  # create the tables once, as the first `harness run` would
    code = WRITER.format(tests=str(REPO / "tests"))
    go = str(time.time() + 3)
    procs = [subprocess.Popen([sys.executable, "-c", code, pg_url, f"shard-{k}", str(k * 1500), "1500", go],
                              cwd=REPO, stderr=subprocess.PIPE, text=True) for k in (0, 1)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    store = Store.open(pg_url)
    got = group_results(store, "ci-1")
    ids = [r.case_id for r in got]
    assert len(ids) == len(set(ids)) == 3000  # nothing lost, nothing doubled
    summary = group_summary(store, "ci-1")
    assert summary.counts == {"passed": 3000} and summary.status == "complete"
    store.close()


@pytest.mark.slow
def test_two_cli_shards_of_the_sim_suite_in_parallel(pg_url: str, project: Project) -> None:
    project.write("golden/question/faq.yaml", "topic: question\ncases:\n" + "".join(
        f"  - id: q-{i:02d}\n    prompt: What are your opening hours?\n    expect: [{{contains: \"11\"}}]\n"
        for i in range(30)))
    project.write("suites/s.yaml", "name: pm\ngolden: [golden/**/*.yaml]\ntarget: {kind: sim, latency_ms: 5}\n")
    Store.open(pg_url).close()
    env = {**os.environ, "HARNESS_RUN_GROUP": "gh-77-1", "NO_COLOR": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "harness", "run", "suites/s.yaml", "--shard", f"{k}/2",
                               "--store", pg_url, "--no-reports", "-q"], cwd=project.root, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in (1, 2)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, out + err
    store = Store.open(pg_url)
    got = sorted(r.case_id for r in group_results(store, "gh-77-1"))
    assert got == [f"q-{i:02d}" for i in range(30)]
    store.close()


LOCKER = """
import sys, time
from harness.store import Store
from harness.locks import SuiteLock
store = Store.open(sys.argv[1])
lock = SuiteLock(store, "nightly", run_id=sys.argv[2], stale_after=3600)
while time.time() < float(sys.argv[3]):
    time.sleep(0.002)
won = lock.try_acquire() is None
print("won" if won else "lost", flush=True)
time.sleep(float(sys.argv[4]))
"""


def test_the_suite_lock_across_processes(pg_url: str) -> None:
    store = Store.open(pg_url)
    SuiteLock(store, "warm-up").try_acquire()  # the table exists before the race
    go = str(time.time() + 3)
    procs = [subprocess.Popen([sys.executable, "-c", LOCKER, pg_url, f"run-{k}", go, "30"], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(4)]
    try:
        answers = [p.stdout.readline().strip() for p in procs]
        assert sorted(answers) == ["lost", "lost", "lost", "won"], [p.stderr.read() for p in procs if p.poll()]
        winner = procs[answers.index("won")]
        held = holder(store, "nightly")
        assert held.pid == winner.pid
        mine = SuiteLock(store, "nightly", stale_after=3600)
        assert mine.try_acquire() == held  # a live holder keeps it
        winner.kill()  # the holder dies without letting go
        winner.wait()
        assert mine.try_acquire() is None  # on the same host a dead pid frees it at once
        mine.release()
    finally:
        for p in procs:
            p.kill()
            p.wait()
    store.close()


@pytest.mark.slow
def test_a_second_run_of_a_running_suite_is_refused(pg_url: str, project: Project) -> None:
    project.write("golden/question/faq.yaml", "topic: question\ncases:\n" + "".join(
        f"  - id: q-{i:02d}\n    prompt: What are your opening hours?\n" for i in range(20)))
    project.write("suites/s.yaml", "name: nightly\ngolden: [golden/**/*.yaml]\n"
                                   "target: {kind: sim, latency_ms: 150, limits: {concurrency: 1}}\n")
    env = {**os.environ, "NO_COLOR": "1"}
    cmd = [sys.executable, "-m", "harness", "run", "suites/s.yaml", "--store", pg_url, "--no-reports", "-q"]
    first = subprocess.Popen(cmd, cwd=project.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        store = Store.open(pg_url)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _table_has_lock(store):
            time.sleep(0.05)
        second = subprocess.run(cmd, cwd=project.root, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 3
        assert "suite 'nightly' is already running" in second.stderr and "Traceback" not in second.stderr
        out, err = first.communicate(timeout=120)
        assert first.returncode == 0, out + err
        assert [r.status for r in store.list_runs("nightly")] == ["complete"]
        assert holder(store, "nightly") is None
        store.close()
    finally:
        first.kill()
        first.wait()


def _table_has_lock(store: Store) -> bool:
    try:
        return holder(store, "nightly") is not None
    except Exception:  # the table does not exist until the first run creates it
        return False


def test_a_dropped_connection_between_batches_is_survived(pg_url: str) -> None:
    store = Store.open(pg_url)
    start(store, "run-1")
    writer = ResultWriter(store, "run-1", max_batch=25)
    for i in range(200):
        writer.add(result(i))
    writer.flush()
    assert terminate_backends(pg_url) >= 1  # the pool's connections are now dead
    for i in range(200, 400):
        writer.add(result(i))
    writer.close()
    store.finish_run("run-1", status="complete", ended=time.time(), exit_code=0, counts={"passed": 400})
    assert len(store.results("run-1")) == 400
    assert store.get_run("run-1").status == "complete"
    store.close()


def test_connections_killed_during_writes_lose_nothing_finished(pg_url: str) -> None:
    store = Store.open(pg_url)
    start(store, "run-1")
    writer = ResultWriter(store, "run-1", max_batch=20)
    stop = threading.Event()
    killed = []

    def killer() -> None:
        while not stop.is_set():
            killed.append(terminate_backends(pg_url))
            time.sleep(0.05)

    thread = threading.Thread(target=killer)
    thread.start()
    error: HarnessError | None = None
    try:
        for i in range(800):
            writer.add(result(i))
            if i % 50 == 0:
                time.sleep(0.01)  # let batches and kills interleave
        writer.close()
    except HarnessError as e:
        error = e
    finally:
        stop.set()
        thread.join()
    assert sum(killed) > 0
    rows = store.results("run-1")  # the store reconnects for the read
    ids = [r.case_id for r in rows]
    assert len(ids) == len(set(ids))  # a retried batch never doubles a result
    if error is None:
        assert len(ids) == 800
    else:  # it may give up, but says so in one line naming the store, and keeps what it wrote
        assert "\n" not in error.line() and "store postgresql+psycopg://" in error.line()
        assert len(ids) >= writer.written
    store.close()


JUDGED_SUITE = """
name: judged-pg
golden: ["golden/**/*.yaml"]
target: {kind: sim}
judge: {base_url: "${JUDGE_URL}", model: judge-model, when: always}
"""

JUDGED_GOLDEN = """
topic: question
cases:
  - id: jdg-hours
    language: en
    prompt: What are your opening hours?
    expect:
      - judge: {rubric: correct-faq-answer}
  - id: jdg-parking
    language: en
    prompt: Do you have parking?
    expect:
      - judge: {rubric: correct-faq-answer}
"""


async def test_the_judge_cache_lives_in_the_shared_store(pg_url: str, tmp_path) -> None:
    """A CI runner starts on a fresh machine every day: with the history on PostgreSQL, the
    judge's verdicts are there too, so yesterday's unchanged answers are not judged again."""
    import asyncio
    import shutil

    from mock_judge import MockJudge
    from sqlalchemy import create_engine, inspect

    shutil.copytree(REPO / "rubrics", tmp_path / "rubrics")
    (tmp_path / "golden" / "question").mkdir(parents=True)
    (tmp_path / "golden" / "question" / "j.yaml").write_text(JUDGED_GOLDEN, encoding="utf-8")
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "judged.yaml").write_text(JUDGED_SUITE, encoding="utf-8")

    async def run(env: dict[str, str]) -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "harness", "run", "suites/judged.yaml", "-q", "--no-reports", "--store", pg_url,
            cwd=tmp_path, env={**os.environ, **env}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
        assert proc.returncode == 0, out.decode()[-2000:] + err.decode()[-2000:]

    async with MockJudge(rules=[("11", 9), ("parking", 9)], default_score=9) as judge:
        await run({"JUDGE_URL": judge.url})
        first = judge.eval_calls
        assert first >= 2  # both answers judged
        shutil.rmtree(tmp_path / ".harness", ignore_errors=True)  # the next day's runner starts empty
        await run({"JUDGE_URL": judge.url})
        assert judge.eval_calls == first  # both verdicts came from the shared store
    assert not (tmp_path / ".harness" / "judge-cache.db").exists()
    engine = create_engine(pg_url)
    try:
        assert {"judge_verdicts", "results", "runs"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
