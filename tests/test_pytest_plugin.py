"""The pytest plugin, as a user runs it: `pytest golden/` in a real project, in a real process."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib.metadata import entry_points

from harness.store import Store

from conftest import Project

GOLDEN = """
topic: question
tags: [en, faq]
cases:
  - id: faq-hours
    title: Opening hours
    prompt: What are your opening hours?
    expect:
      - contains: "11"

  - id: faq-wrong
    prompt: What are your opening hours?
    expect:
      - contains: "midnight"
      - max_length: 500
    repeat: 2
  # the next case
  - id: faq-cards
    prompt: Do you take credit cards?
    expect:
      - contains: Visa
"""

RESERVATION = """
topic: reservation
tags: [en]
cases:
  - id: rsv-en-001
    prompt: I'd like to book a table for 2 tomorrow at 7 pm
    expect:
      - intent: reservation
"""


# Other installed plugins are not under test and some take seconds to load (deepeval ~5 s).
QUIET_PLUGINS = [f"-p no:{name}" for name in ("cacheprovider", "deepeval", "hypothesispytest", "benchmark", "xdist",
                                               "anyio", "rerunfailures", "repeat")]
QUIET_PLUGINS = [part for option in QUIET_PLUGINS for part in option.split(" ")]


def pytest_run(project: Project, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run([sys.executable, "-m", "pytest", *QUIET_PLUGINS, *args], cwd=project.root,
                          env=env, capture_output=True, text=True, timeout=180)


def write_cases(project: Project) -> None:
    project.write("golden/question/faq.yaml", GOLDEN)
    project.write("golden/reservation/en.yaml", RESERVATION)


def test_the_plugin_is_installed_as_an_entry_point() -> None:
    assert any(ep.value == "harness.pytest_plugin" for ep in entry_points(group="pytest11"))


def test_golden_cases_become_items_with_one_run_in_the_store(project: Project) -> None:
    write_cases(project)
    out = pytest_run(project, "golden/", "--junitxml=junit.xml", "--strict-markers")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "1 failed, 3 passed" in out.stdout
    cases = {c.get("name"): c for c in ET.parse(project.root / "junit.xml").iter("testcase")}
    assert set(cases) == {"faq-hours", "faq-wrong", "faq-cards", "rsv-en-001"}
    assert cases["faq-wrong"].find("failure") is not None and cases["faq-hours"].find("failure") is None
    store = Store.open(f"sqlite:///{project.root}/.harness/history.db")
    (run,) = store.list_runs()
    assert run.status == "complete" and run.counts == {"passed": 3, "failed": 2, "error": 0, "not_run": 0}
    props = {p.get("name"): p.get("value") for p in cases["faq-hours"].iter("property")}
    assert props["harness_run_id"] == run.run_id and props["source"].endswith("faq.yaml:4:5")
    store.close()


def test_a_failure_prints_the_failing_checks_and_quotes_the_case(project: Project) -> None:
    write_cases(project)
    out = pytest_run(project, "golden/", "-k", "wrong")
    assert out.returncode == 1
    text = out.stdout
    assert "faq-wrong (golden/question/faq.yaml:10:5): 2 of 2 run(s) did not pass" in text
    assert 'turn 1: contains: expected to contain "midnight"' in text
    assert "golden/question/faq.yaml:10-15:" in text
    assert '  13 |       - contains: "midnight"' in text and "15 |     repeat: 2" in text
    assert "the next case" not in text and "Traceback" not in text


def test_markers_and_keywords_select_cases(project: Project) -> None:
    write_cases(project)
    out = pytest_run(project, "golden/", "-m", "faq", "--collect-only", "-q")
    assert "golden/question/faq.yaml::faq-hours" in out.stdout and "rsv-en-001" not in out.stdout
    assert not (project.root / ".harness").exists()  # collecting runs nothing
    out = pytest_run(project, "golden/", "-m", "reservation", "--strict-markers", "-q")
    assert out.returncode == 0 and "1 passed, 3 deselected" in out.stdout, out.stdout
    out = pytest_run(project, "golden/", "-k", "faq- and not wrong", "-q")
    assert out.returncode == 0 and "2 passed, 2 deselected" in out.stdout, out.stdout


def test_a_suite_brings_its_target_selection_and_store(project: Project) -> None:
    write_cases(project)
    project.write("suites/pm.yaml", f"""
        name: post-merge
        golden: ["golden/**/*.yaml"]
        select: {{ids: ["faq-hours", "rsv-*"]}}
        target: {{kind: sim}}
        repeat: 2
        store: {{url: "sqlite:///{project.root}/shared.db"}}
    """)
    out = pytest_run(project, "--harness-suite", "suites/pm.yaml", "-v")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "suites/pm.yaml::faq-hours PASSED" in out.stdout and "suites/pm.yaml::rsv-en-001 PASSED" in out.stdout
    assert "faq-wrong" not in out.stdout
    store = Store.open(f"sqlite:///{project.root}/shared.db")
    (run,) = store.list_runs()
    assert (run.suite, run.planned, run.counts["passed"]) == ("post-merge", 4, 4)  # repeat 2 from the suite
    store.close()


def test_a_broken_golden_file_is_one_line(project: Project) -> None:
    project.write("golden/question/bad.yaml", "topic: question\ncases:\n  - id: q1\n    promt: hi\n")
    out = pytest_run(project, "golden/")
    assert out.returncode == 2  # an error during collection
    assert "golden/question/bad.yaml:4:5: " in out.stdout and "promt" in out.stdout
    assert "Traceback" not in out.stdout


def test_the_plugin_stays_out_of_ordinary_test_runs(project: Project) -> None:
    write_cases(project)
    project.write("tests/data/cases.yaml", "topic: question\ncases: [{id: x, prompt: hi}]\n")
    project.write("tests/test_plain.py", "def test_ok():\n    assert True\n")
    out = pytest_run(project, "tests/", "-q")
    assert out.returncode == 0 and "1 passed" in out.stdout, out.stdout
    assert not (project.root / ".harness").exists()


def test_the_session_ends_with_the_runs_figures(project: Project) -> None:
    """The plugin reads the run's RunSummary, as every report does: 2 of 3 judged cases
    passed (faq-wrong fails twice); pass rate = passed ÷ (passed + failed)."""
    write_cases(project)
    out = pytest_run(project, "golden/question/")
    assert out.returncode == 1, out.stdout + out.stderr
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("harness run "))
    assert ": 2/4 judged passed (50.0%) · 2 failed" in line
