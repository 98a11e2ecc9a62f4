"""Issue 16, findings 5-7: every resource a hostile server or an odd file could take is bounded.

Through the real CLI against local hostile servers (tests/hostile_server.py). Memory is
measured in bench/bench_hostile.py, not here: these assert the run ends, in one line, soon.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from conftest import Project
from hostile_server import MB, HostileServer


def _suite(project: Project, target: str) -> None:
    project.write("golden/q.yaml", """
        topic: question
        cases:
          - id: q
            prompt: hello
            expect: [{contains: a}]
    """)
    project.write("suites/s.yaml", f"""
        name: hostile
        golden: ["golden/**/*.yaml"]
        target: {target}
    """)


@pytest.mark.parametrize("mode,stream", [("huge", False), ("huge", True), ("endless_sse", True),
                                         ("gzip_bomb", False)])
def test_an_answer_larger_than_the_bound_is_an_error_not_gigabytes(project: Project, mode: str, stream: bool) -> None:
    with HostileServer(mode, size=200 * MB) as srv:
        _suite(project, f'{{kind: openai, base_url: "{srv.url}", model: m, stream: {str(stream).lower()}, '
                        'limits: {timeout_s: 20, retries: 0}}')
        started = time.monotonic()
        out = project.harness("run", "suites/s.yaml", "--store", project.store_url, "--no-progress",
                              "--json", "r.json", timeout=120)
        took = time.monotonic() - started
        sent = srv.bytes_sent
    text = out.stdout + out.stderr
    assert "Traceback" not in text and out.returncode == 3, text[-3000:]
    result = json.loads((project.root / "r.json").read_text())["results"][0]
    assert result["status"] == "error" and "larger than 1 MB" in result["error"], result
    assert took < 60 and (mode == "gzip_bomb" or sent < 100 * MB), (took, sent)


def test_the_http_target_answer_is_bounded_too_and_the_bound_is_configurable(project: Project) -> None:
    with HostileServer("huge", size=20 * MB) as srv:
        _suite(project, f'{{kind: http, url: "{srv.url}/chat/completions", reply_path: "$.choices[0].message.content", '
                        'limits: {retries: 0}}')
        out = project.harness("run", "suites/s.yaml", "--store", project.store_url, "--no-progress",
                              "--json", "r.json", env={"HARNESS_MAX_ANSWER_BYTES": "64k"})
    text = out.stdout + out.stderr
    assert "Traceback" not in text and out.returncode == 3, text[-3000:]
    result = json.loads((project.root / "r.json").read_text())["results"][0]
    assert "larger than 64 KB" in result["error"], result


def test_a_long_answer_is_stored_cut_with_a_marker_saying_how_much(project: Project) -> None:
    with HostileServer("text", answer="a" * 300_000) as srv:
        _suite(project, f'{{kind: openai, base_url: "{srv.url}", model: m}}')
        out = project.harness("run", "suites/s.yaml", "--store", project.store_url, "--no-progress",
                              "--json", "r.json")
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    from harness.store import Store

    with Store.open(project.store_url) as store:
        stored = store.results(store.get_run("latest").run_id)[0].transcript.turns[-1].reply.text
    assert stored.endswith("… [cut: 200,000 more characters]") and len(stored) < 100_100
    report = (project.root / "r.json").read_text()
    assert len(report) < 400_000 and "[cut: 200,000 more characters]" in report


def test_looping_directory_symlinks_under_golden_end_and_count_each_case_once(project: Project) -> None:
    project.write("golden/a/q.yaml", """
        topic: question
        cases:
          - id: q
            prompt: What are your opening hours?
            expect: [{contains: "11"}]
    """)
    os.symlink("..", project.root / "golden" / "a" / "up")  # a loop: golden/a/up/a/up/…
    os.symlink(".", project.root / "golden" / "self")  # a self-symlink
    os.symlink("../a", project.root / "golden" / "a" / "again")
    project.write("suites/s.yaml", """
        name: loops
        golden: ["golden/**/*.yaml"]
        target: {kind: sim}
    """)
    started = time.monotonic()
    val = project.harness("validate", "golden", "suites/s.yaml", timeout=60)
    run = project.harness("run", "suites/s.yaml", "--store", project.store_url, "--no-progress", "-q", timeout=60)
    assert time.monotonic() - started < 60
    assert val.returncode == 0 and "duplicate" not in val.stdout + val.stderr, val.stdout + val.stderr
    assert run.returncode == 0 and "1 passed" in run.stdout and "duplicate" not in run.stderr, run.stdout + run.stderr


def test_validate_dev_zero_ends_with_one_line(project: Project) -> None:
    out = project.harness("validate", "/dev/zero", timeout=60)
    assert out.returncode == 2 and "larger than" in out.stderr and "Traceback" not in out.stderr, out.stderr


@pytest.mark.parametrize("field", ["timeout_s", "case_timeout_s"])
def test_an_infinite_timeout_is_refused_at_its_position(project: Project, field: str) -> None:
    _suite(project, f"{{kind: sim, limits: {{{field}: .inf}}}}")
    out = project.harness("validate", "suites/s.yaml")
    assert out.returncode == 2 and "suites/s.yaml:3:" in out.stderr and field in out.stderr, out.stderr


def test_repeat_on_the_command_line_is_bounded_like_repeat_in_a_suite(project: Project) -> None:
    _suite(project, "{kind: sim}")
    out = project.harness("run", "suites/s.yaml", "--store", project.store_url, "-n", "100000000")
    assert out.returncode == 2 and "1000" in out.stderr, out.stderr


def test_sighup_stops_a_run_like_sigterm_and_an_interrupted_run_exits_130(project: Project) -> None:
    import signal
    import subprocess
    import sys

    cases = "\n".join(f"  - id: q-{i:03d}\n    prompt: What are your hours?\n    expect: [{{contains: '11'}}]"
                      for i in range(300))
    project.write("golden/q.yaml", "topic: question\ncases:\n" + cases + "\n")
    project.write("suites/s.yaml", """
        name: hup
        golden: ["golden/**/*.yaml"]
        target: {kind: sim, latency_ms: 100, limits: {concurrency: 4}}
    """)
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", "suites/s.yaml", "--store", project.store_url,
                             "--no-progress", "-q"], cwd=project.root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    from harness.store import Store

    with Store.open(project.store_url) as store:
        run = store.get_run("latest")
        assert run.status == "incomplete" and run.ended is not None


def test_validate_sees_a_case_id_used_twice_like_run(project: Project) -> None:
    project.write("golden/a.yaml", """
        topic: question
        cases:
          - id: same
            prompt: hello
            expect: [{contains: a}]
          - id: same
            prompt: hello again
            expect: [{contains: a}]
    """)
    project.write("golden/b.yaml", """
        topic: question
        cases:
          - id: same
            prompt: hello
            expect: [{contains: a}]
    """)
    out = project.harness("validate", "golden")
    assert out.returncode == 2, out.stdout + out.stderr
    lines = [line for line in out.stderr.splitlines() if "duplicate case id 'same'" in line]
    assert len(lines) == 2 and "golden/a.yaml:6:5" in lines[0] and "golden/b.yaml:3:5" in lines[1], out.stderr
