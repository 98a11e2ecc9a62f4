"""The `harness` command end to end, as a user runs it: real processes, real files, real store."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.store import Store

from conftest import REPO, Project

GOLDEN = """
topic: question
tags: [restaurant, en]
cases:
  - id: q-hours
    prompt: What are your opening hours?
    expect:
      - contains: "11"
  - id: q-parking
    prompt: Do you have parking?
    expect:
      - contains_any: [parking, park]
"""


def sim_suite(project: Project, *, latency_ms: int = 0, extra: str = "") -> Path:
    return project.write("suites/s.yaml", f"""
        name: smoke
        golden: ["golden/**/*.yaml"]
        target: {{kind: sim, latency_ms: {latency_ms}, limits: {{concurrency: 4}}}}
        {extra}
    """)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_help_lists_commands(project: Project) -> None:
    out = project.harness("--help")
    assert out.returncode == 0
    for cmd in ("run", "validate", "list", "schema"):
        assert cmd in out.stdout


def test_run_help_lists_a_target_option_two_targets_share_once_naming_both(project: Project) -> None:
    p = project.harness("run", "--help")
    assert p.returncode == 0, p.stderr
    options = p.stdout.split("Target options", 1)[1]
    assert options.count("--sim-fault") == 1, options
    assert "[sim target]" in options and "[voice target]" in options


def test_shipped_post_merge_suite_passes_offline_and_writes_reports(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/h.db"
    out = subprocess.run(
        [sys.executable, "-m", "harness", "run", str(REPO / "suites" / "post-merge.yaml"), "--store", store,
         "-o", str(tmp_path / "reports"), "--no-progress"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    reports = {p.suffix for p in (tmp_path / "reports").iterdir()}
    assert {".html", ".json", ".xml"} <= reports
    data = json.loads(next((tmp_path / "reports").glob("*.json")).read_text())
    assert data["run"]["counts"]["passed"] >= 30 and data["run"]["counts"]["failed"] == 0
    with Store.open(store) as s:
        run = s.get_run("latest")
        assert run.status == "complete" and run.counts["passed"] == data["run"]["counts"]["passed"]
        assert len(s.results(run.run_id)) == run.planned


def test_failed_check_exits_1_and_junit_counts_match(project: Project) -> None:
    project.write("golden/question/q.yaml", GOLDEN + """
  - id: q-wrong
    prompt: What are your opening hours?
    expect:
      - contains: "open 24 hours"
""")
    suite = sim_suite(project)
    out = project.harness("run", str(suite), "--store", project.store_url, "--junit", "j.xml", "--no-progress")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "q-wrong" in out.stdout
    root = ET.parse(project.root / "j.xml").getroot()
    assert sum(int(s.get("tests")) for s in root.iter("testsuite")) == 3
    assert sum(int(s.get("failures")) for s in root.iter("testsuite")) == 1
    failure = next(root.iter("failure"))
    assert "open 24 hours" in (failure.text or "") + failure.get("message", "")


def test_bad_yaml_is_one_line_with_position_and_exit_2(project: Project) -> None:
    project.write("golden/question/q.yaml", """
        topic: question
        cases:
          - id: q-1
            prompt: hello
            expect:
              - contians: "x"
    """)
    suite = sim_suite(project)
    out = project.harness("run", str(suite), "--store", project.store_url)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, out.stderr
    assert "golden/question/q.yaml:6:9: unknown check 'contians'" in lines[0]
    assert "did you mean 'contains'?" in lines[0]
    v = project.harness("validate", "golden")
    assert v.returncode == 2 and "q.yaml:6:9" in v.stderr


def test_missing_environment_variable_is_named(project: Project) -> None:
    project.write("golden/question/q.yaml", GOLDEN)
    suite = project.write("suites/o.yaml", """
        name: live
        golden: ["golden/**/*.yaml"]
        target: {kind: openai, base_url: "${HARNESS_TEST_UNSET_URL}", model: m}
    """)
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_TEST_UNSET_URL"}
    out = subprocess.run([sys.executable, "-m", "harness", "run", str(suite)], cwd=project.root, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "HARNESS_TEST_UNSET_URL" in out.stderr and "o.yaml:3:" in out.stderr
    assert "Traceback" not in out.stderr


def test_unreachable_target_stops_early_with_exit_3(project: Project) -> None:
    cases = "\n".join(f"  - id: q-{i}\n    prompt: hello {i}\n    expect: [{{contains: x}}]" for i in range(200))
    project.write("golden/question/q.yaml", "topic: question\ncases:\n" + cases + "\n")
    suite = project.write("suites/o.yaml", f"""
        name: down
        golden: ["golden/**/*.yaml"]
        target:
          kind: openai
          base_url: "http://127.0.0.1:{free_port()}/v1"
          model: m
          limits: {{concurrency: 4, retries: 1, backoff_s: 0.01, timeout_s: 2}}
    """)
    t0 = time.monotonic()
    out = project.harness("run", str(suite), "--store", project.store_url, "--no-progress")
    assert out.returncode == 3, out.stdout + out.stderr
    assert "target unreachable" in out.stderr and "connection" in out.stderr
    assert time.monotonic() - t0 < 60  # not 200 timeouts
    with Store.open(project.store_url) as s:
        run = s.get_run("latest")
        assert run.status == "aborted"
        assert run.counts["not_run"] > 150
        assert len(s.results(run.run_id)) == 200  # every planned item is accounted for


def _count_results(store_url: str) -> int:
    with Store.open(store_url) as s:
        run = s.get_run("latest")
        return len(s.results(run.run_id)) if run else 0


def _start_slow_run(project: Project) -> subprocess.Popen:
    cases = "\n".join(f"  - id: q-{i:03d}\n    prompt: What are your hours?\n    expect: [{{contains: '11'}}]"
                      for i in range(300))
    project.write("golden/question/q.yaml", "topic: question\ncases:\n" + cases + "\n")
    suite = sim_suite(project, latency_ms=100)
    return subprocess.Popen([sys.executable, "-m", "harness", "run", str(suite), "--store", project.store_url,
                             "--no-progress", "-q"], cwd=project.root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_results(project: Project, n: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if Path(project.root / "history.db").exists() and _count_results(project.store_url) >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError("no results written")


def test_killed_run_keeps_finished_results_and_shows_incomplete(project: Project) -> None:
    proc = _start_slow_run(project)
    try:
        _wait_for_results(project, 20, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    with Store.open(project.store_url) as s:
        run = s.get_run("latest")
        results = s.results(run.run_id)
        assert run.status == "incomplete"
        assert 20 <= len(results) < 300
        assert all(r.status == "passed" and r.transcript and r.transcript.turns for r in results)


def test_sigterm_flushes_and_marks_incomplete(project: Project) -> None:
    proc = _start_slow_run(project)
    _wait_for_results(project, 10, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err  # interrupted: the shell's 128 + SIGINT (issue 16)
    assert "Traceback" not in err
    with Store.open(project.store_url) as s:
        run = s.get_run("latest")
        assert run.status == "incomplete" and run.ended is not None
        assert run.counts["passed"] == len(s.results(run.run_id)) >= 10
