"""A store keeps its history across versions: verdicts written by an older version, or ones
this version cannot read, must not break `history`, `report` or the next `run`."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN = """\
topic: question
cases:
  - id: faq-hours
    prompt: 営業時間を教えてください
    expect: [{contains: 11時}]
"""

SUITE = """\
name: kept
golden: ["golden/*.yaml"]
target: {kind: sim}
output: {html: false, json: false, junit: false}
"""


def harness(cwd, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def written(res: subprocess.CompletedProcess) -> Path:
    """The page `harness report` says it wrote."""
    line = next(x for x in res.stdout.splitlines() if x.startswith("html: "))
    return Path(line.removeprefix("html: "))


def run_ids(db) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r for (r,) in conn.execute("select run_id from runs order by started")]


def stored_verdict(db, run_id: str):
    with sqlite3.connect(db) as conn:
        (extra,) = conn.execute("select extra from runs where run_id = ?", (run_id,)).fetchone()
    return json.loads(extra)["verdict"]


def set_verdict(db, run_id: str, verdict) -> None:
    """Write a run's stored verdict as another (older or newer) version of the tool would have."""
    with sqlite3.connect(db) as conn:
        (extra,) = conn.execute("select extra from runs where run_id = ?", (run_id,)).fetchone()
        extra = json.loads(extra) if extra else {}
        extra["verdict"] = verdict
        conn.execute("update runs set extra = ? where run_id = ?", (json.dumps(extra), run_id))


@pytest.fixture
def project(tmp_path):
    (tmp_path / "golden").mkdir()
    (tmp_path / "golden" / "faq.yaml").write_text(GOLDEN, encoding="utf-8")
    (tmp_path / "suite.yaml").write_text(SUITE, encoding="utf-8")
    db = tmp_path / "h.db"
    url = f"sqlite:///{db}"
    for _ in range(2):
        res = harness(tmp_path, "run", "suite.yaml", "--store", url, "--no-reports", "--no-progress", "--no-notify")
        assert res.returncode == 0, res.stderr
    return tmp_path, db, url, run_ids(db)


def test_a_malformed_stored_verdict_reads_as_unknown_everywhere(project):
    root, db, url, (first, second) = project
    set_verdict(db, first, ["not", "a", "verdict"])
    set_verdict(db, second, {"class": "from_the_future", "headline": "a class this version does not know",
                             "evidence": 3})

    res = harness(root, "history", "faq-hours", "--store", url)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    assert "unknown" in res.stdout and "from_the_future" in res.stdout

    res = harness(root, "report", "--store", url, "--output", str(root / "reports"), "--since", "all")
    assert res.returncode == 0, res.stderr
    html = written(res).read_text(encoding="utf-8")
    # the newest run is on top: its class as stored, and why it reads as unknown
    assert "from_the_future" in html and "unknown verdict class &#39;from_the_future&#39;" in html

    # the next run compares with a window whose verdicts it cannot read: it still classifies
    res = harness(root, "run", "suite.yaml", "--store", url, "--no-reports", "--no-progress", "--no-notify")
    assert res.returncode == 0, res.stderr
    third = run_ids(db)[-1]
    assert third not in (first, second)
    assert stored_verdict(db, third)["class"] == "ok"


def test_a_verdict_stored_by_an_older_version_still_shows(project):
    root, db, url, (first, second) = project
    set_verdict(db, second, {"kind": "drift", "evidence": ["wording changed"], "baseline_run": {"run_id": first}})
    res = harness(root, "history", "faq-hours", "--store", url)
    assert res.returncode == 0, res.stderr
    assert "drift" in res.stdout
    res = harness(root, "report", "--store", url, "--output", str(root / "reports"), "--since", "all",
                  "--run", second)
    assert res.returncode == 0, res.stderr
    html = written(res).read_text(encoding="utf-8")
    assert "wording changed" in html and "DRIFT" in html
