"""Notifiers are a registry like checks and targets: `harness validate` checks their entries
at file:line:col, `harness schema suite` describes them, `harness list notifiers` names them,
and a notifier registered from a test shows up in all three with no other edit."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
from pydantic import Field
from typer.testing import CliRunner

from harness.cli import app
from harness.notify import Notifier, NotifierConfig, register, unregister

from conftest import Project

GOLDEN = "topic: question\ncases:\n  - id: q1\n    prompt: hi\n    expect: [{contains: hi}]\n"

BAD = """
    name: s
    golden: ["golden/*.yaml"]
    target: {kind: sim}
    notify:
      report_url: https://ci.example.com/r/
      webhook:
        url: "ftp://example.com/hook-SECRETPATH"
        when: [sometimes]
      slak: {webhook_url: "https://hooks.example.com/x"}
      datadog: {api_key: "${HARNESS_TEST_UNSET_DD_KEY:-}"}
"""


def test_validate_checks_every_notifier_entry_at_its_position(project: Project):
    project.write("golden/q.yaml", GOLDEN)
    project.write("suites/s.yaml", BAD)
    out = project.harness("validate", "suites/s.yaml", "golden")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert re.fullmatch(r"suites/s\.yaml:7:\d+: .*expected an http:// or https:// URL.*", lines[0]), lines
    assert re.fullmatch(r"suites/s\.yaml:8:\d+: .*'sometimes'.*", lines[1]), lines
    assert re.fullmatch(r"suites/s\.yaml:9:3: .*'slak'.*did you mean 'slack'\?\)", lines[2]), lines
    assert lines[3:] == ["3 problem(s) in 2 file(s)"]  # datadog with its key unset is off, not a mistake
    assert "SECRETPATH" not in out.stderr  # a URL is a credential, never quoted


def test_validate_passes_a_suite_whose_notifiers_are_right(project: Project):
    project.write("golden/q.yaml", GOLDEN)
    project.write("suites/s.yaml", """
        name: s
        golden: ["golden/*.yaml"]
        target: {kind: sim}
        notify:
          slack: {webhook_url: "https://hooks.example.com/services/T/B/x", when: [regression]}
          webhook: {url: "https://hooks.example.com/run", secret: s3cret}
    """)
    out = project.harness("validate", "suites/s.yaml")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == "ok: 1 file(s) valid"


def test_list_notifiers_names_every_built_in_one_with_its_settings(project: Project):
    out = project.harness("list", "notifiers")
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line for line in out.stdout.splitlines() if line.strip()}
    assert {"slack", "datadog", "webhook"} <= set(rows)
    assert "webhook_url" in rows["slack"] and "api_key" in rows["datadog"]
    assert "url, secret, headers" in rows["webhook"] and "HMAC" in rows["webhook"]
    assert "notifiers" in project.harness("list", "--help").stdout


def test_the_suite_schema_describes_every_notifier_entry(project: Project):
    out = project.harness("schema", "suite")
    assert out.returncode == 0, out.stderr
    schema = json.loads(out.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    notify = schema["$defs"]["NotifySpec"]["properties"]
    assert {"report_url", "redact", "fail_on_error", "slack", "datadog", "webhook"} <= set(notify)
    assert notify["webhook"]["required"] == ["url"] and "secret" in notify["webhook"]["properties"]
    validator = jsonschema.Draft202012Validator(schema)
    good = {"name": "s", "golden": ["golden/*.yaml"], "target": {"kind": "sim"},
            "notify": {"webhook": {"url": "https://x.example.com/h", "when": ["always"]},
                       "slack": {"webhook_url": "${SLACK_WEBHOOK_URL}"}}}
    assert list(validator.iter_errors(good)) == []
    for wrong in ({"webhook": {"url": "https://x.example.com/h", "sign": True}},  # an unknown setting
                  {"webhook": {"url": "https://x.example.com/h", "when": ["sometimes"]}},
                  {"webhook": {}},  # the URL is required
                  {"slak": {"webhook_url": "https://x.example.com/h"}}):  # no such notifier
        assert list(validator.iter_errors({**good, "notify": wrong})), wrong


class PagerConfig(NotifierConfig):
    routing_key: str = Field(min_length=8, description="the service's integration key")


class PagerNotifier(Notifier):
    """Pages whoever is on call (a test-only notifier)."""

    name = "test_pager"
    config_model = PagerConfig

    def payload(self, pub):
        return {"summary": pub.summary.verdict_class}

    async def send(self, payload, redactor, *, retries, backoff_s, timeout_s):
        return []


@pytest.fixture
def pager():
    register(PagerNotifier)  # the one line a new notifier needs
    yield
    unregister("test_pager")


def test_a_registered_notifier_is_validated_described_and_listed(project: Project, pager, monkeypatch):
    project.write("golden/q.yaml", GOLDEN)
    suite = project.write("suites/s.yaml", """
        name: s
        golden: ["golden/*.yaml"]
        target: {kind: sim}
        notify:
          test_pager: {routing_key: short, urgency: high}
    """)
    monkeypatch.chdir(project.root)
    runner = CliRunner()
    out = runner.invoke(app, ["validate", str(suite)])
    assert out.exit_code == 2
    lines = out.stderr.strip().splitlines()
    assert lines[0] == "suites/s.yaml:5:29: routing_key is too short (expected at least 8 characters)", lines
    assert lines[1] == "suites/s.yaml:5:36: unknown key 'urgency' (expected one of: when, routing_key)", lines

    listed = runner.invoke(app, ["list", "notifiers"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0
    row = next(line for line in listed.stdout.splitlines() if line.strip().startswith("test_pager"))
    assert "when, routing_key" in row and "Pages whoever is on call" in row

    described = json.loads(runner.invoke(app, ["schema", "suite"]).stdout)
    pager_schema = described["$defs"]["NotifySpec"]["properties"]["test_pager"]
    assert pager_schema["properties"]["routing_key"]["minLength"] == 8
