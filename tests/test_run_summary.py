"""One run, one pass rate: console, JSON, JUnit, the HTML run page, the trend page, Slack,
Datadog and the webhook all show the same figures, from one `RunSummary`.

The run: five one-turn cases against an OpenAI-compatible mock; three pass, one fails its
check, one meets a 500 (an infra error). Pass rate = passed ÷ (passed + failed) = 3 ÷ 4 =
75.0 %; the infra error is beside it (1 of 5 = 20.0 %). Before the summary was one, Slack
and Datadog counted the infra error as a failure (3 ÷ 5 = 60 %).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest
from fake_datadog import FakeDatadog
from fake_slack import FakeSlack
from fake_webhook import FakeWebhook
from mock_openai import MockOpenAI

from conftest import Project

GOLDEN = """
topic: question
cases:
""" + "".join(f"""  - id: q-{i}
    prompt: question {i}
    expect: [{{contains: "{'nowhere' if i == 4 else 'answer'}"}}]
""" for i in range(1, 6))


@pytest.fixture
def servers():
    with MockOpenAI(reply=lambda messages: "the answer", retry_after=0) as mock, FakeSlack() as slack, \
            FakeDatadog() as dd, FakeWebhook(secret="hook-SECRET-0123456789") as hook:
        yield mock, slack, dd, hook


def write_suite(project: Project, mock: MockOpenAI) -> None:
    project.write("golden/question/q.yaml", GOLDEN)
    project.write("suites/s.yaml", f"""
        name: figures
        golden: ["golden/**/*.yaml"]
        target:
          kind: openai
          base_url: "{mock.base_url}"
          model: m
          stream: false
          limits: {{concurrency: 1, retries: 0, backoff_s: 0.01, timeout_s: 5}}
        output: {{dir: reports/}}
        analysis: {{infra_error_rate: 0.5}}   # one error in five is not an outage here
        notify:
          report_url: https://ci.example.com/reports/
          slack: {{webhook_url: "${{SLACK_URL}}", when: [always]}}
          datadog: {{api_key: "${{DD_KEY}}", host: "${{DD_HOST}}", when: [always]}}
          webhook:
            url: "${{HOOK_URL}}"
            secret: "${{HOOK_SECRET}}"
            headers: {{X-Team: phone-ai}}
            when: [always]
    """)


def test_one_run_shows_one_pass_rate_on_every_surface(project: Project, servers) -> None:
    mock, slack, dd, hook = servers
    write_suite(project, mock)
    mock.script = ["ok", "ok", "500", "ok", "ok"]  # one call at a time: q-3 meets the 500
    env = {"SLACK_URL": slack.webhook_url, "DD_KEY": dd.api_key, "DD_HOST": dd.host, "HOOK_URL": hook.url,
           "HOOK_SECRET": "hook-SECRET-0123456789"}
    out = project.harness("run", "suites/s.yaml", "--store", project.store_url, "--no-progress", env=env)
    assert out.returncode == 1, out.stdout + out.stderr  # a check failed
    assert "warning" not in out.stderr, out.stderr
    stdout = out.stdout

    # the store says what happened: 3 passed, 1 failed, 1 infra error
    doc = json.loads(next((project.root / "reports").glob("figures-*.json")).read_text())
    counts = doc["summary"]["counts"]
    assert counts == {"passed": 3, "failed": 1, "error": 1, "not_run": 0}, counts

    # JSON
    assert doc["summary"]["pass_rate"] == pytest.approx(0.75)
    assert doc["summary"]["infra_error_rate"] == pytest.approx(0.2)
    assert doc["summary"]["totals"]["pass_rate"] == pytest.approx(0.75)

    # console: the figures line, the table's total row and the status line
    assert "Pass rate 75.0% (3 of 4 judged)" in stdout
    assert "infra errors 1 of 5 (20.0%)" in stdout
    total_row = next(line for line in stdout.splitlines() if line.strip().startswith("Total"))
    assert "75.0%" in total_row.split()
    assert "pass rate 75.0% of 4 judged" in stdout

    # JUnit
    junit = ET.parse(next((project.root / "reports").glob("figures-*.junit.xml")))
    props = {p.get("name"): p.get("value") for p in junit.iter("property")}
    assert props["harness.pass_rate"] == "75.0%" and props["harness.infra_error_rate"] == "20.0%"

    # HTML: the run page and the trend page (the one to open)
    figure = re.compile(r'data-figure="pass_rate">([^<]+)<')
    run_page = next(p for p in (project.root / "reports").glob("figures-*.html") if "trend" not in p.name)
    assert figure.findall(run_page.read_text()) == ["75.0%"]
    assert figure.findall((project.root / "reports" / "figures-latest.html").read_text()) == ["75.0%"]

    # Slack
    [message] = slack.messages
    text = json.dumps(message, ensure_ascii=False)
    assert "3/4 judged passed (75.0%)" in text and "60.0%" not in text
    assert "`question` 75.0%" in text

    # Datadog
    pass_rate = [s for s in dd.series if s["metric"] == "harness.run.pass_rate"]
    assert [p["value"] for s in pass_rate for p in s["points"]] == [pytest.approx(0.75)]
    topic_rate = [s for s in dd.series if s["metric"] == "harness.topic.pass_rate"]
    assert [p["value"] for s in topic_rate for p in s["points"]] == [pytest.approx(0.75)]
    error_rate = [s for s in dd.series if s["metric"] == "harness.run.error_rate"]
    assert [p["value"] for s in error_rate for p in s["points"]] == [pytest.approx(0.2)]

    # the webhook, signed and verified by the receiver
    assert hook.bad_signatures == []
    [delivery] = hook.deliveries
    assert delivery["summary"]["pass_rate"] == pytest.approx(0.75)
    assert delivery["pass_rate_text"] == "75.0%"
    assert delivery["summary"]["counts"] == counts
