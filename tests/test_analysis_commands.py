"""`harness baseline accept|show`, `harness diff`, `harness history` on a real store."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.pipeline import RunOptions, run_suite

GOLDEN = """\
topic: question
cases:
  - id: faq-hours
    prompt: 営業時間を教えてください
    expect: [{contains: 11時}]
    repeat: 2
    reducer: majority
"""

SUITE = """\
name: cmd
golden: ["golden/*.yaml"]
target: {kind: sim}
output: {html: false, json: false, junit: false}
"""


@pytest.fixture
def store(tmp_path):
    (tmp_path / "golden").mkdir()
    (tmp_path / "golden" / "faq.yaml").write_text(GOLDEN, encoding="utf-8")
    (tmp_path / "suite.yaml").write_text(SUITE, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'h.db'}"
    ids = []
    for faults in ((), ("model_update",)):
        out = run_suite(str(tmp_path / "suite.yaml"),
                        RunOptions(target_options={"--sim-fault": faults}, store_url=url, write_reports=False, progress=False))
        ids.append(out.run.run_id)
    return url, ids


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})


def test_baseline_accept_then_show(store):
    url, (first, _) = store
    res = invoke("baseline", "show", "--store", url)
    assert res.exit_code == 0 and "no accepted baselines" in res.output
    res = invoke("baseline", "accept", first, "--store", url, "--note", "day one")
    assert res.exit_code == 0, res.output
    assert f"accepted run {first} as the baseline of suite cmd (1 cases, 0 of them failing)" in res.output
    res = invoke("baseline", "show", "--store", url, "--suite", "cmd")
    assert res.exit_code == 0 and first in res.output and "day one" in res.output


def test_baseline_accept_of_an_unknown_run_is_one_line(store):
    url, _ = store
    res = invoke("baseline", "accept", "no-such-run", "--store", url)
    assert res.exit_code == 2
    assert "no run 'no-such-run'" in res.output and "Traceback" not in res.output


def test_diff_shows_the_changed_answer(store):
    url, (first, second) = store
    res = invoke("diff", first, second, "--store", url)
    assert res.exit_code == 0, res.output
    assert "faq-hours" in res.output and "answer" in res.output
    assert "1 of 1 cases differ" in res.output


def test_history_lists_the_case_per_run_with_its_verdict(store):
    url, (first, second) = store
    res = invoke("history", "faq-hours", "--store", url, "--limit", "5")
    assert res.exit_code == 0, res.output
    assert first in res.output and second in res.output
    assert "drift" in res.output  # the second run's verdict: the model changed
    missing = invoke("history", "nope", "--store", url)
    assert missing.exit_code == 2  # bad input, not a failed check
    assert "error: case nope is in no stored run" in missing.output


def test_verdict_of_a_run_is_stored_with_its_consistency(store):
    from harness.store import Store

    url, (_, second) = store
    with Store.open(url) as st:
        verdict = st.get_run(second).extra["verdict"]
    assert verdict["class"] == "drift"
    entry = verdict["consistency"]["faq-hours"]
    assert entry["agreement"] == 1.0 and entry["reducer"] == "majority" and entry["distinct"][0][1] == 2
