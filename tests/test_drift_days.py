"""Simulated days of a small suite against the embedded agent, through the real pipeline.

Each "day" is one `run_suite` with a tmp SQLite store; the sim's fault knobs make the bad
days, HARNESS_GIT_SHA says which code ran, and the seed (with jitter) is the agent's normal
day-to-day variation (booking numbers, latency, which calls a fault hits).
"""

from __future__ import annotations

import textwrap

import pytest

from harness.errors import ExitCode
from harness.pipeline import RunOptions, run_suite

RESERVATION = """\
topic: reservation
cases:
  - id: rsv-sat-4
    turns:
      - caller: 土曜日の19時に4名で予約したいです
        expect: [{contains: 満席}]
  - id: rsv-fri-2
    turns:
      - caller: 金曜日の19時に2名で予約したいです
        expect: [{contains: 満席}]
  - id: rsv-sat-6
    turns:
      - caller: 土曜日の19時に6名で予約をお願いします
        expect: [{contains: 満席}]
  - id: rsv-book
    turns:
      - caller: 明日の18時に2名で予約したいです
      - caller: 佐藤です
      - caller: はい
        expect: [{regex: "予約番号はB[0-9]{4}"}]
"""

QUESTION = """\
topic: question
cases:
  - id: faq-hours
    prompt: 営業時間を教えてください
    expect: [{contains: 11時}]
  - id: faq-address
    prompt: 住所を教えてください
    expect: [{contains: 渋谷}]
"""

SUITE = """\
name: days
golden: ["golden/**/*.yaml"]
target: {kind: sim, seed: "${SIM_SEED}", jitter_ms: 2, limits: {concurrency: 8}}
repeat: 6
output: {html: false, json: false, junit: false}
"""


@pytest.fixture
def day(tmp_path, monkeypatch):
    (tmp_path / "golden" / "reservation").mkdir(parents=True)
    (tmp_path / "golden" / "question").mkdir(parents=True)
    (tmp_path / "golden" / "reservation" / "rsv.yaml").write_text(RESERVATION, encoding="utf-8")
    (tmp_path / "golden" / "question" / "faq.yaml").write_text(QUESTION, encoding="utf-8")
    suite = tmp_path / "suite.yaml"
    suite.write_text(textwrap.dedent(SUITE), encoding="utf-8")
    store = f"sqlite:///{tmp_path / 'history.db'}"

    def run(*faults: str, seed: int = 1, sha: str = "a1", accept: bool = False):
        monkeypatch.setenv("HARNESS_GIT_SHA", sha)
        options = RunOptions(target_options={"--sim-fault": faults}, env={"SIM_SEED": str(seed)}, store_url=store,
                             write_reports=False, progress=False, accept_baseline=accept)
        return run_suite(str(suite), options)

    return run


def _good_days(day, n: int, first_seed: int = 1, sha: str = "a1") -> None:
    first = day(seed=first_seed, sha=sha, accept=True)
    assert first.run.extra.get("baseline_accepted"), first.warnings
    for seed in range(first_seed + 1, first_seed + n):
        verdict = day(seed=seed, sha=sha).run.extra["verdict"]
        assert verdict["class"] in ("ok", "noise"), verdict["headline"]


def test_silent_model_update_is_drift_naming_the_changed_cases(day):
    _good_days(day, 3)
    out = day("model_update", seed=9)
    v = out.run.extra["verdict"]
    assert v["class"] == "drift", v["headline"]
    assert out.exit_code == ExitCode.FAILED
    kinds = {e["kind"] for e in v["evidence"]}
    assert "fingerprint" in kinds
    changed = {c["case_id"] for c in v["changed_cases"] if c["change"] == "answer"}
    assert {"faq-hours", "faq-address", "rsv-sat-4"} <= changed
    assert "faq-hours" in v["headline"]
    assert v["baseline_run"] is not None


def test_hallucination_after_a_code_change_is_a_regression_naming_topic_and_cases(day):
    _good_days(day, 4, sha="a1")
    out = day("hallucination:0.2", seed=4, sha="b2")
    v = out.run.extra["verdict"]
    assert v["class"] == "regression", v["headline"]
    assert out.exit_code == ExitCode.FAILED
    topic = v["topics"]["reservation"]
    assert topic["p_value"] < 0.05 and topic["delta"] < 0
    assert v["topics"]["question"]["delta"] == 0
    assert "reservation" in v["headline"]
    failing = {r.case_id for r in out.results if r.status == "failed"}
    assert failing and failing <= {"rsv-sat-4", "rsv-fri-2", "rsv-sat-6"}
    flipped = {c["case_id"] for c in v["changed_cases"] if c["change"] == "verdict"}
    assert flipped == failing
    named = " ".join(e["detail"] for e in v["evidence"])
    assert all(case in named for case in failing)
    # the agent's own fault is a change of our inputs: the git sha going back does not make it the model's
    same_sha = day("hallucination:0.2", seed=4, sha="a1").run.extra["verdict"]
    assert same_sha["class"] == "regression", same_sha["headline"]
    assert "our inputs changed" in same_sha["headline"]


def test_provider_outage_is_infra_not_regression(day):
    _good_days(day, 2, sha="a1")
    out = day("full_outage", seed=5, sha="c3")  # a code change on the same day must not be blamed
    v = out.run.extra["verdict"]
    assert v["class"] == "infra", v["headline"]
    assert out.exit_code == ExitCode.UNREACHABLE
    assert any(e["kind"] == "infra" and e["outage"] for e in v["evidence"])
    # the outage day is not normal variance: the next good day still compares with healthy history
    after = day(seed=6, sha="c3").run.extra["verdict"]
    assert after["class"] in ("ok", "noise"), after["headline"]


def test_primary_outage_served_by_the_fallback_is_infra(day):
    _good_days(day, 2)
    v = day("primary_outage", seed=4).run.extra["verdict"]
    assert v["class"] == "infra", v["headline"]
    assert any(e["kind"] == "route" and e["route"] == "fallback" for e in v["evidence"])


def test_thirty_fault_free_days_raise_no_false_alarm(day):
    classes = []
    first = day(seed=100, accept=True)
    classes.append(first.run.extra["verdict"]["class"])
    for seed in range(101, 130):
        out = day(seed=seed)
        classes.append(out.run.extra["verdict"]["class"])
        assert out.exit_code == ExitCode.OK, out.run.extra["verdict"]["headline"]
    assert len(classes) == 30
    assert set(classes) <= {"ok", "noise"}, classes
