"""The daily drift job end to end, as cron would run it: the real CLI in its own process, the
agent on a local OpenAI-compatible server, the judge on another, Slack and Datadog on local
fakes. Checks the pieces meet: judge calls (and none on an unchanged rerun), the verdict,
the notifications, and that no secret leaks into anything written or sent."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from fake_datadog import FakeDatadog
from fake_slack import FakeSlack
from mock_judge import MockJudge
from mock_openai import MockOpenAI

from conftest import REPO

pytestmark = pytest.mark.slow

AGENT_KEY = "sk-agent-SECRET-0123456789"
JUDGE_KEY = "sk-judge-SECRET-9876543210"
CANARIES = 4  # in rubrics/canaries/judge.yaml

SUITE = """
name: drift-e2e
golden: ["golden/**/*.yaml"]
select: {topics: [question, reservation]}
target:
  kind: openai
  base_url: "${LLM_GATEWAY_URL}"
  model: primary
  api_key: "${LLM_GATEWAY_KEY}"
  system_prompt_file: prompts/restaurant.md
  limits: {concurrency: 8, timeout_s: 10, retries: 1, backoff_s: 0.01}
judge:
  base_url: "${JUDGE_URL}"
  model: judge-model
  api_key: "${JUDGE_API_KEY}"
  when: always
  canaries: [rubrics/canaries/judge.yaml]
notify:
  report_url: https://ci.example.com/reports/
  slack: {webhook_url: "${SLACK_WEBHOOK_URL}", when: [always]}
  datadog: {api_key: "${DD_API_KEY}", host: "${DD_HOST}", tags: ["service:phone-ai"]}
"""


def agent_reply(messages: list[dict]) -> str:
    asked = messages[-1]["content"]
    if "hours" in asked or "営業時間" in asked:
        return "We are open from 11 am to 10 pm, closed on Tuesdays. 営業時間は11時から22時です。"
    if "park" in asked.lower():
        return "We have no parking lot, but there are coin parkings nearby."
    return "Certainly. May I have your name, please? お名前をお伺いできますか。"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for folder in ("golden", "prompts", "rubrics"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "drift.yaml").write_text(SUITE, encoding="utf-8")
    return tmp_path


async def run_cli(project: Path, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "harness", "run", "suites/drift.yaml", "--no-progress", "-o", "reports",
        cwd=project, env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=240)
    return proc.returncode, out.decode(), err.decode()


async def test_daily_drift_runs_judges_notifies_and_reruns_from_the_cache(project: Path) -> None:
    with MockOpenAI(reply=agent_reply, model="primary-2026-11", fingerprint="fp_agent_1") as agent, \
            FakeSlack() as slack, FakeDatadog() as dd:
        async with MockJudge(rules=[("11 am", 9), ("お名前", 8), ("coin parking", 8)], default_score=3) as judge:
            env = {"LLM_GATEWAY_URL": agent.base_url, "LLM_GATEWAY_KEY": AGENT_KEY, "JUDGE_URL": judge.url,
                   "JUDGE_API_KEY": JUDGE_KEY, "SLACK_WEBHOOK_URL": slack.webhook_url, "DD_API_KEY": dd.api_key,
                   "DD_HOST": dd.host}
            code, out, err = await run_cli(project, env)
            assert code == 1, out[-3000:] + err[-3000:]  # the generic mock agent fails some exact checks
            assert "Traceback" not in err
            first_calls = judge.eval_calls
            assert first_calls >= CANARIES + 3  # the four canaries and at least the three judged cases

            # every request to the agent carried the key; nothing else did
            assert agent.headers and all(h.get("authorization") == f"Bearer {AGENT_KEY}" for h in agent.headers)

            code2, out2, err2 = await run_cli(project, env)
            assert code2 == 1, out2[-3000:] + err2[-3000:]
            # canaries are judged afresh every run (that is how a changed judge shows); every
            # unchanged agent answer comes from the verdict cache
            assert judge.eval_calls == first_calls + CANARIES

    data = json.loads(sorted((project / "reports").glob("drift-e2e-*.json"))[-1].read_text())
    assert data["verdict"]["class"] in {"ok", "noise", "failing", "regression", "drift"}
    judged = [c for r in data["results"] for c in r["checks"] if c["name"] == "judge"]
    assert judged and all(c["reason"] for c in judged if not c["skipped"])
    assert slack.messages, slack.problems
    assert dd.series and any("suite:drift-e2e" in s.get("tags", []) for s in dd.series), dd.problems

    secrets = [AGENT_KEY, JUDGE_KEY, slack.webhook_secret, dd.api_key]
    written = [p.read_text(errors="replace") for p in (project / "reports").iterdir()]
    written += [p.read_bytes().decode("latin-1") for p in (project / ".harness").glob("*.db")]
    sent = slack.raw + dd.raw + [out, err, out2, err2]
    for secret in secrets:
        for blob in written + sent:
            assert secret not in blob


JUDGED_GOLDEN = """
topic: question
tags: [judged]
cases:
  - id: jdg-hours
    language: en
    prompt: What are your opening hours?
    expect:
      - contains: "11"
      - judge: {rubric: correct-faq-answer}
"""

SIM_JUDGED_SUITE = """
name: judged-sim
golden: ["golden/**/*.yaml"]
target: {kind: sim}
judge: {base_url: "${JUDGE_URL}", model: judge-model, when: always, canaries: [rubrics/canaries/judge.yaml]}
"""


async def test_a_judge_that_flips_its_canaries_is_judge_drift_not_an_agent_failure(tmp_path: Path) -> None:
    shutil.copytree(REPO / "rubrics", tmp_path / "rubrics")
    (tmp_path / "golden" / "question").mkdir(parents=True)
    (tmp_path / "golden" / "question" / "j.yaml").write_text(JUDGED_GOLDEN, encoding="utf-8")
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "drift.yaml").write_text(SIM_JUDGED_SUITE, encoding="utf-8")
    # a sensible judge: good answers (the canaries' and the agent's) score high, bad ones low
    rules = [("明日19時に4名様ですね", 9), ("11 am to 10 pm every day", 9), ("20時に5名様", 1), ("reserved a free parking", 1),
             ("11", 9)]
    async with MockJudge(rules=rules, default_score=2) as judge:
        env = {"JUDGE_URL": judge.url}
        code, out, err = await run_cli(tmp_path, env)
        assert code == 0, out[-3000:] + err[-3000:]
        judge.flip = True  # the judge model changed under us: every score turns around
        code, out, err = await run_cli(tmp_path, env)
    assert code == 1, out[-3000:] + err[-3000:]
    assert "judge_drift" in out
    data = json.loads(sorted((tmp_path / "reports").glob("judged-sim-*.json"))[-1].read_text())
    assert data["verdict"]["class"] == "judge_drift"
    assert data["run"]["extra"]["judge"]["canaries"]["disagreed"] == 4
