"""Issue 16, findings 12 and 13: odd command lines and odd environments end in one clear line
and the documented exit code, never a traceback.

- `harness report --since 99999999d` (a duration further back than any date): exit 2.
- standard output on a full device (`> /dev/full`): one line on stderr, exit 3; the run's
  results are stored all the same.
- Ctrl-C while the harness is still importing its libraries: one line, exit 130.
- no file descriptors left (ulimit -n small): said to be a local limit, not "target unreachable".
- bidi and control characters in an answer are neutralised on the terminal, kept in the store.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hostile_server import HostileServer

from conftest import Project


def _sim_suite(project: Project) -> None:
    project.write("golden/q.yaml", """
        topic: question
        cases:
          - id: q
            prompt: What are your opening hours?
            expect: [{contains: open}]
    """)
    project.write("suites/s.yaml", """
        name: cli
        golden: ["golden/**/*.yaml"]
        target: {kind: sim}
    """)


def test_report_since_further_back_than_any_date_is_one_line(project: Project) -> None:
    _sim_suite(project)
    assert project.harness("run", "suites/s.yaml", "--store", project.store_url, "--no-progress").returncode == 0
    out = project.harness("report", "--since", "99999999d", "--store", project.store_url)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and "ValueError" not in out.stderr
    [line] = [x for x in out.stderr.splitlines() if x.strip()]
    assert "--since '99999999d'" in line and "'all'" in line, line


def test_stdout_on_a_full_device_is_one_line_and_the_results_are_stored(project: Project) -> None:
    _sim_suite(project)
    with open("/dev/full", "w") as full:
        out = subprocess.run([sys.executable, "-m", "harness", "run", "suites/s.yaml", "--store", project.store_url,
                              "--no-progress"], cwd=project.root, stdout=full, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "NO_COLOR": "1"}, timeout=120)
    assert out.returncode == 3, out.stderr
    assert "Traceback" not in out.stderr and "Exception ignored" not in out.stderr, out.stderr
    assert out.stderr.strip() == "error: could not write the output: No space left on device", out.stderr
    with sqlite3.connect(project.root / "history.db") as db:
        assert db.execute("SELECT count(*) FROM results").fetchone()[0] == 1


def _loaded(pid: int, marker: str) -> bool:
    try:
        return marker in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.parametrize("when", ["while importing", "0.1 s"])
def test_ctrl_c_in_the_first_moments_is_one_line_and_130(project: Project, when: str) -> None:
    _sim_suite(project)
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", "suites/s.yaml", "--store", project.store_url,
                             "--no-progress"], cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "NO_COLOR": "1"})
    if when == "while importing":
        # past the interpreter's own start-up, in the middle of the harness's imports (the command
        # line library loads the compiled _uuid module): the moment a Ctrl-C used to end in a traceback
        deadline = time.monotonic() + 30
        while not _loaded(proc.pid, "/_uuid.") and time.monotonic() < deadline:
            time.sleep(0.001)
    else:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    # 130, or ended by the SIGINT itself (-2 here), which a shell reports as 130 too (128 + 2)
    assert proc.returncode in (130, -signal.SIGINT), (when, out, err)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert len([x for x in err.splitlines() if x.strip()]) <= 1, err


def test_running_out_of_file_descriptors_is_a_local_limit_not_an_unreachable_target(project: Project) -> None:
    import resource

    project.write("golden/q.yaml", "topic: q\ncases:\n" + "".join(
        f"  - id: q{i}\n    prompt: hi {i}\n    expect: [{{contains: ok}}]\n" for i in range(60)))
    with HostileServer("text", answer="ok") as srv:
        project.write("suites/s.yaml", f"""
            name: fd
            golden: ["golden/*.yaml"]
            target: {{kind: openai, base_url: "{srv.url}", model: m, api_key: k, stream: false,
                      limits: {{concurrency: 60, retries: 0}}}}
        """)

        def few_descriptors() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))

        out = subprocess.run([sys.executable, "-m", "harness", "run", "suites/s.yaml", "--store", project.store_url,
                              "--no-progress"], cwd=project.root, capture_output=True, text=True, timeout=120,
                             preexec_fn=few_descriptors, env={**os.environ, "NO_COLOR": "1", "COLUMNS": "250"})
    text = out.stdout + out.stderr
    assert "Traceback" not in text, text[-3000:]
    assert "local resource limit, not the target: no file descriptors left in this process" in text, text[-3000:]
    assert "ulimit -n" in text
    assert "unreachable" not in text.lower() and "connection:" not in text, text[-3000:]


def test_bidi_and_control_characters_from_a_model_are_neutralised_on_the_terminal_only(project: Project) -> None:
    answer = "Open at 9 \u202eexe.txt\u202c and \u2066isolated\u2069 \x1b[2J\x1b]0;owned\x07 done"
    project.write("golden/q.yaml", """
        topic: question
        cases:
          - id: spoof
            prompt: When do you open?
            expect: [{contains: "zzz-not-said"}, {equals: "something else"}]
    """)
    with HostileServer("text", answer=answer) as srv:
        project.write("suites/s.yaml", f"""
            name: bidi
            golden: ["golden/*.yaml"]
            target: {{kind: openai, base_url: "{srv.url}", model: m, api_key: k, stream: false}}
        """)
        out = project.harness("run", "suites/s.yaml", "--store", project.store_url, "--no-progress")
    assert out.returncode == 1, out.stdout + out.stderr
    terminal = out.stdout + out.stderr
    assert "exe.txt" in terminal, terminal  # the answer is shown …
    for raw in ("\u202e", "\u202c", "\u2066", "\u2069", "\x1b", "\x07"):
        assert raw not in terminal, repr(raw)  # … with nothing that can reorder or repaint the terminal
    assert "\\u202e" in terminal and "\\x1b" in terminal
    with sqlite3.connect(project.root / "history.db") as db:
        stored = db.execute("SELECT transcript FROM results").fetchone()[0]
    assert answer in json.loads(stored)["turns"][-1]["reply"]["text"]  # the store keeps what the model said
