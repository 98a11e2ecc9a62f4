"""Issue 16, findings 8, 9 and 11: what the notifiers send and keep.

- A canary key that a target, the judge or a notifier's own server echoes back reaches no
  Slack, Datadog or webhook payload, no pending delivery and no warning line (8).
- Datadog keys never follow a redirect to another origin (9).
- A Slack Web API answering a non-JSON error page is a delivery failure, not a traceback:
  the run's exit code is kept, Datadog is still sent, the payload is kept pending (11).

All through `python -m harness` against local servers.
"""

from __future__ import annotations

import json
import sqlite3

import pytest
from fake_datadog import FakeDatadog
from fake_slack import FakeSlack
from fake_webhook import FakeWebhook
from hostile_server import HostileServer

from conftest import Project

CANARY = "sk-canary-7f3a9c1e5b2d4680"
TOKEN = "tok-canary-0b1c2d3e4f5a6978"
JUDGE_KEY = "jk-canary-5566778899aabbcc"
SLACK_TOKEN = "slack-canary-3c4d5e6f708192a3"
DD_KEY = "dd-canary-api-0123456789abcdef"
DD_APP = "dd-canary-app-fedcba9876543210"
HOOK_SECRET = "hook-canary-SECRET-0123456789"
CANARIES = (CANARY, TOKEN, JUDGE_KEY, SLACK_TOKEN, DD_KEY, DD_APP, HOOK_SECRET)


def _everything(project: Project, out) -> str:
    text = out.stdout + out.stderr
    for path in project.root.rglob("*"):
        if path.is_file() and path.suffix != ".yaml":
            text += path.read_bytes().decode("utf-8", "replace")
    return text


def _leaks(text: str) -> list[str]:
    return [c for c in CANARIES if c in text]


TARGETS = {
    "openai": '{{kind: openai, base_url: "{url}", model: m, stream: false, api_key: "${{KEY}}", '
              'headers: {{X-Token: "${{TOKEN}}"}}, limits: {{retries: 0}}}}',
    "http": '{{kind: http, url: "{url}/chat/completions", reply_path: "$.choices[0].message.content", '
            'headers: {{Authorization: "Bearer ${{KEY}}", X-Token: "${{TOKEN}}"}}, limits: {{retries: 0}}}}',
    "sim": '{{kind: sim, brain: llm, base_url: "{url}", model: m, api_key: "${{KEY}}", '
           'headers: {{X-Token: "${{TOKEN}}"}}}}',
}


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("mode", ["echo_answer", "echo_500"])
def test_a_canary_echoed_by_target_and_judge_reaches_no_notifier_payload(project: Project, target: str,
                                                                         mode: str) -> None:
    with HostileServer(mode) as srv, HostileServer("echo_500") as judge, FakeSlack() as slack, \
            FakeDatadog(api_key=DD_KEY) as dd, FakeWebhook(secret=HOOK_SECRET) as hook:
        project.write("golden/q.yaml", """
            topic: question
            cases:
              - id: q
                prompt: hello
                expect: [{contains: zzz}, {judge: {criteria: The answer is polite.}}]
        """)
        project.write("suites/s.yaml", f"""
            name: canary-notify
            golden: ["golden/**/*.yaml"]
            target: {TARGETS[target].format(url=srv.url)}
            judge: {{base_url: "{judge.url}", model: judge-model, api_key: "${{JUDGE_KEY}}", when: always}}
            output: {{dir: reports/}}
            notify:
              slack: {{webhook_url: "${{SLACK_URL}}", when: [always]}}
              datadog: {{api_key: "${{DD_KEY}}", host: "${{DD_HOST}}", when: [always]}}
              webhook: {{url: "${{HOOK_URL}}", secret: "${{HOOK_SECRET}}", headers: {{X-Token: "${{TOKEN}}"}},
                         when: [always]}}
        """)
        env = {"KEY": CANARY, "TOKEN": TOKEN, "JUDGE_KEY": JUDGE_KEY, "SLACK_URL": slack.webhook_url,
               "DD_KEY": DD_KEY, "DD_HOST": dd.host, "HOOK_URL": hook.url, "HOOK_SECRET": HOOK_SECRET}
        out = project.harness("run", "suites/s.yaml", "--store", project.store_url, "--no-progress", env=env)
        assert "Traceback" not in out.stderr, out.stderr[-3000:]
        assert any(CANARY in str(h) for h in srv.seen_headers)  # the target did get (and echo) it
        # every notifier was sent to
        assert slack.messages and dd.series and hook.deliveries, out.stdout + out.stderr
        sent = "\n".join(slack.raw + dd.raw + hook.raw)
        assert _leaks(sent) == [], sent[:3000]
    assert _leaks(_everything(project, out)) == []


def _notify_suite(project: Project, *, slack: str, datadog: str, webhook: str) -> None:
    project.write("golden/q.yaml", """
        topic: question
        cases:
          - id: q
            prompt: What are your opening hours?
            expect: [{contains: "open"}]
    """)
    project.write("suites/s.yaml", f"""
        name: canary-pending
        golden: ["golden/**/*.yaml"]
        target: {{kind: sim}}
        output: {{dir: reports/}}
        notify:
          slack: {slack}
          datadog: {datadog}
          webhook: {webhook}
    """)


def test_a_notifier_server_echoing_its_credentials_leaks_them_nowhere(project: Project) -> None:
    """Slack, Datadog and the webhook answer 500 with the request's headers in the body: the
    warning lines and the pending deliveries (and everything else) mask them."""
    with HostileServer("echo_500") as slack, HostileServer("echo_500") as dd, HostileServer("echo_500") as hook:
        _notify_suite(project,
                      slack=f'{{token: "${{SLACK_TOKEN}}", channel: "#c", api_url: "{slack.base_url}/api/", '
                            'when: [always]}',
                      datadog='{api_key: "${DD_KEY}", app_key: "${DD_APP}", host: "${DD_HOST}", when: [always]}',
                      webhook='{url: "${HOOK_URL}", secret: "${HOOK_SECRET}", headers: {X-Token: "${TOKEN}"}, '
                              'when: [always]}')
        env = {"SLACK_TOKEN": SLACK_TOKEN, "DD_KEY": DD_KEY, "DD_APP": DD_APP, "DD_HOST": dd.base_url,
               "HOOK_URL": hook.url + "/hook/canary-path-00112233", "HOOK_SECRET": HOOK_SECRET, "TOKEN": TOKEN,
               "HARNESS_NOTIFY_RETRIES": "0"}
        out = project.harness("run", "suites/s.yaml", "--store", project.store_url, "--no-progress", env=env)
        assert any(SLACK_TOKEN in str(h) for h in slack.seen_headers), out.stdout + out.stderr
        assert any(DD_KEY in str(h) for h in dd.seen_headers), out.stdout + out.stderr
        assert any(TOKEN in str(h) for h in hook.seen_headers)
    assert out.returncode == 0, out.stdout + out.stderr  # a delivery failure does not fail the run
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    with sqlite3.connect(project.root / "history.db") as db:
        rows = db.execute("SELECT destination, payload, last_error FROM pending_deliveries").fetchall()
    assert {r[0].split()[0] for r in rows} >= {"slack", "datadog", "webhook"}, rows
    kept = json.dumps(rows)
    assert "upstream failed" in kept or "upstream failed" in out.stderr  # the echo itself got through
    assert _leaks(kept) == [] and _leaks(out.stderr) == [], (kept + out.stderr)[:4000]
    assert _leaks(_everything(project, out)) == []


def test_datadog_keys_do_not_follow_a_redirect_to_another_origin(project: Project) -> None:
    """Finding 9: the Datadog `host:` answers 307 to a second server; the keys never reach it,
    the delivery fails with one line and is kept pending."""
    with HostileServer("text") as elsewhere, HostileServer("redirect", redirect_to=elsewhere.base_url) as dd:
        _notify_suite(project, slack="{webhook_url: \"${SLACK_URL:-}\"}",
                      datadog='{api_key: "${DD_KEY}", app_key: "${DD_APP}", host: "${DD_HOST}", when: [always]}',
                      webhook="{url: \"${HOOK_URL:-}\"}")
        out = project.harness("run", "suites/s.yaml", "--store", project.store_url, "--no-progress",
                              env={"DD_KEY": DD_KEY, "DD_APP": DD_APP, "DD_HOST": dd.base_url})
        assert dd.seen_headers, out.stdout + out.stderr  # Datadog's host was asked
        followed = [h for h in elsewhere.seen_headers]
    assert not any(DD_KEY in str(h) or DD_APP in str(h) for h in followed), followed
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert "datadog metrics: delivery failed" in out.stderr and "307" in out.stderr, out.stderr
    with sqlite3.connect(project.root / "history.db") as db:
        kept = [r[0] for r in db.execute("SELECT destination FROM pending_deliveries")]
    assert "datadog metrics" in kept


@pytest.mark.parametrize("status,content_type", [(403, "text/plain"), (502, "text/plain"), (500, "text/html")])
def test_a_slack_api_answering_an_error_page_is_a_delivery_failure(project: Project, status: int,
                                                                   content_type: str) -> None:
    """Finding 11: a non-JSON 4xx/5xx from the Slack Web API (a proxy's error page) is one warning;
    the run keeps its exit code, Datadog is still sent and the Slack payload is kept pending."""
    page = "<html><body>Bad gateway</body></html>" if content_type == "text/html" else "upstream connect error"
    with HostileServer("page", status=status, content_type=content_type, answer=page) as slack, \
            FakeDatadog(api_key=DD_KEY) as dd:
        _notify_suite(project,
                      slack=f'{{token: "${{SLACK_TOKEN}}", channel: "#c", api_url: "{slack.base_url}/api/", '
                            'when: [always]}',
                      datadog='{api_key: "${DD_KEY}", host: "${DD_HOST}", when: [always]}',
                      webhook="{url: \"${HOOK_URL:-}\"}")
        out = project.harness("run", "suites/s.yaml", "--store", project.store_url, "--no-progress",
                              env={"SLACK_TOKEN": SLACK_TOKEN, "DD_KEY": DD_KEY, "DD_HOST": dd.host})
        assert slack.seen_headers and dd.series, out.stdout + out.stderr  # Datadog was still sent
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and "AttributeError" not in out.stderr, out.stderr
    warning = [line for line in out.stderr.splitlines() if "slack" in line and "delivery failed" in line]
    assert len(warning) == 1 and f"HTTP {status}" in warning[0], out.stderr
    with sqlite3.connect(project.root / "history.db") as db:
        kept = [r[0] for r in db.execute("SELECT destination FROM pending_deliveries")]
    assert kept == ["slack"]
    assert "verdict: ok" in out.stdout
