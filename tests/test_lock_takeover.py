"""A run whose suite lock was taken over stops writing and says so (through the real CLI).

A holder that only looked dead (a paused VM, a stalled network) loses its lock to another
run of the suite. Here the holder beats every half second (`--lock-stale 2s`) and the
taker is impatient (`--lock-stale 0.1s`): to it, a heartbeat older than 0.1 s means a dead
holder, so it takes the lock over while the holder is still running.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

from harness.locks import holder
from harness.store import Store

from conftest import Project

CASES = 60


def _wait(what, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_run_whose_lock_is_taken_over_stops_and_says_so(project: Project) -> None:
    project.write("golden/question/faq.yaml", "topic: question\ncases:\n" + "".join(
        f"  - id: q-{i:02d}\n    prompt: What are your opening hours?\n" for i in range(CASES)))
    project.write("suites/s.yaml", "name: nightly\ngolden: [golden/**/*.yaml]\n"
                                   "target: {kind: sim, latency_ms: 200, limits: {concurrency: 1}}\n")
    env = {**os.environ, "NO_COLOR": "1"}
    run = [sys.executable, "-m", "harness", "run", "suites/s.yaml", "--store", project.store_url, "--no-reports", "-q"]
    first = subprocess.Popen([*run, "--lock-stale", "2s"], cwd=project.root, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        store = Store.open(project.store_url)
        mine = _wait(lambda: holder(store, "nightly")).run_id
        _wait(lambda: len(store.results(mine)) >= 3)  # it is under way, results in the store

        for _ in range(30):  # the taker wins as soon as it finds the heartbeat older than 0.1 s
            second = subprocess.run([*run, "--id", "q-0*", "--lock-stale", "0.1s"], cwd=project.root, env=env,
                                    capture_output=True, text=True, timeout=120)
            if second.returncode == 0:
                break
            assert "is already running" in second.stderr, second.stderr
        assert second.returncode == 0, second.stdout + second.stderr
        out, err = first.communicate(timeout=120)
    finally:
        first.kill()
        first.wait()

    runs = {r.run_id: r for r in store.list_runs("nightly")}
    (theirs,) = [r for r in runs.values() if r.run_id != mine]
    lost = runs[mine]
    # the holder ends with one clear line and exit code 3
    assert first.returncode == 3, out + err
    assert "Traceback" not in err
    m = re.search(r"lock on suite 'nightly' taken over by run (\S+) \(.*\) at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC; "
                  r"stopped after (\d+) of (\d+) cases", err)
    assert m, err
    assert m[1] == theirs.run_id and int(m[4]) == CASES
    done = int(m[3])
    assert 3 <= done < CASES
    # its run row says so, and holds exactly what finished
    assert lost.status == "incomplete" and lost.exit_code == 3 and lost.message == m[0]
    kept = store.results(mine)
    assert len(kept) == done and all(r.status == "passed" for r in kept)
    # it started no case once it had noticed (it beats every 0.5 s; 200 ms per case)
    assert max(r.started for r in kept) < theirs.started + 3.0
    # the new holder's run is whole and untouched, and gave the lock back
    assert theirs.status == "complete" and theirs.counts["passed"] == 10
    assert len(store.results(theirs.run_id)) == 10
    assert holder(store, "nightly") is None
    store.close()
