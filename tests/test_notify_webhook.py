"""The generic JSON webhook notifier against a real local HTTP receiver that verifies the
HMAC signature; the notifier registry (settings errors with positions, a notifier added from
a test with no other edit)."""

from __future__ import annotations

import json
import logging
import re
from contextlib import contextmanager
from typing import Any

import pytest
from fake_webhook import FakeWebhook
from notify_fixtures import store, stored_run  # noqa: F401  (fixture)
from pydantic import Field

from harness.notify import Notifier, NotifierConfig, deliver, list_pending, register, resend_pending
from harness.notify.errors import DeliveryError
from harness.records import AgentReply, CaseResult, CheckResult, Transcript, Turn
from harness.spec import NotifySpec

from conftest import Project

SECRET = "hook-SECRET-abcdef0123456789"


def result(case_id: str, status: str, *, topic: str = "reservation", reason: str = "expected 19時") -> CaseResult:
    passed = status == "passed"
    return CaseResult(case_id=case_id, topic=topic, tags=[], repeat_index=0, status=status,
                      checks=[CheckResult(name="contains", passed=passed, reason="" if passed else reason, turn=1)],
                      transcript=Transcript(turns=[Turn(1, "予約したい", AgentReply("承知しました", total_ms=300.0))]),
                      error="HTTP 500 from the gateway" if status == "error" else None,
                      error_kind="server_error" if status == "error" else None)


def spec(hook: FakeWebhook, **extra: Any) -> NotifySpec:
    entry = {"url": hook.url, "secret": SECRET, "when": ["always"], **extra}
    return NotifySpec.model_validate({"webhook": entry, "report_url": "https://ci.example.com/r/"})


@pytest.fixture
def hook():
    with FakeWebhook(secret=SECRET) as fake:
        yield fake


def test_posts_the_run_summary_signed_and_verified_by_the_receiver(store, hook):
    results = [result("a", "passed"), result("b", "passed"), result("c", "failed"), result("d", "error")]
    run = stored_run(store, "run-1", results, verdict={"class": "regression", "headline": "c broke"})
    assert deliver(run, results, spec(hook, headers={"X-Team": "phone-ai"}), store, backoff_s=0.01) == []
    assert hook.bad_signatures == []
    [body] = hook.deliveries
    assert body["schema"] == "harness.run.v1"
    assert body["run"]["run_id"] == "run-1" and body["run"]["report_url"] == "https://ci.example.com/r/daily-run-1.html"
    assert body["verdict"]["class"] == "regression" and body["verdict"]["headline"] == "c broke"
    assert body["summary"]["pass_rate"] == pytest.approx(2 / 3)  # the infra error is beside it
    assert body["summary"]["infra_error_rate"] == pytest.approx(1 / 4)
    assert body["summary"]["counts"] == {"passed": 2, "failed": 1, "error": 1, "not_run": 0}
    assert [c["case_id"] for c in body["summary"]["failing_cases"]] == ["c"]
    assert body["history"]["new_failures"] == ["c"]
    [headers] = hook.headers
    assert headers["X-Team"] == "phone-ai"
    assert headers["X-Harness-Signature"].startswith("sha256=") and headers["X-Harness-Timestamp"].isdigit()


def test_a_wrong_secret_is_refused_by_the_receiver_and_kept_pending(store, hook):
    results = [result("a", "failed")]
    run = stored_run(store, "run-1", results)
    [warning] = deliver(run, results, spec(hook, secret="not-the-receivers-secret"), store, retries=1, backoff_s=0.01)
    assert hook.bad_signatures == ["signature mismatch"] and hook.deliveries == []
    assert "webhook: delivery failed after 1 attempt (webhook answered HTTP 401)" in warning
    assert [p.destination for p in list_pending(store)] == ["webhook"]
    # with the right secret again, the kept payload goes out, signed afresh
    assert resend_pending(store, spec(hook), backoff_s=0.01) == (1, 0)
    assert len(hook.deliveries) == 1 and list_pending(store) == []


def test_server_errors_are_retried_then_kept_and_resent_once(store, hook):
    results = [result("a", "failed")]
    run = stored_run(store, "run-1", results)
    hook.fail(503, times=1)
    assert deliver(run, results, spec(hook), store, backoff_s=0.01) == []  # the retry got through
    assert len(hook.deliveries) == 1
    hook.fail_always(500)
    [warning] = deliver(run, results, spec(hook), store, retries=2, backoff_s=0.01)
    assert "after 3 attempts (webhook answered HTTP 500)" in warning and "pending delivery #" in warning
    delivery_ids = {h["X-Harness-Delivery"] for h in hook.headers[-3:]}
    assert len(delivery_ids) == 1  # one payload, one id, on every attempt
    hook.heal()
    assert resend_pending(store, spec(hook), backoff_s=0.01) == (1, 0)
    assert hook.headers[-1]["X-Harness-Delivery"] in delivery_ids  # the receiver can drop duplicates
    assert resend_pending(store, spec(hook), backoff_s=0.01) == (0, 0)


def test_url_secret_and_header_values_never_leak(store, hook, caplog):
    caplog.set_level(logging.DEBUG)
    token = "Bearer tok-HEADER-9876543210"
    results = [result("a", "failed", reason=f"the agent said {hook.url} and {SECRET} and 090-1234-5678")]
    run = stored_run(store, "run-1", results)
    s = spec(hook, headers={"Authorization": token})
    assert deliver(run, results, s, store, backoff_s=0.01) == []
    hook.fail_always(500)
    warnings = deliver(run, results, s, store, retries=1, backoff_s=0.01)
    assert warnings
    body = json.dumps(hook.deliveries, ensure_ascii=False)
    assert "[phone]" in body and "***" in body
    with store.engine.connect() as conn:
        rows = " ".join(str(r) for r in conn.exec_driver_sql("SELECT * FROM pending_deliveries").all())
    seen = "\n".join([body, rows, *warnings, *(r.getMessage() for r in caplog.records)])
    for secret in (hook.url, hook.path, SECRET, token, "tok-HEADER-9876543210"):
        assert secret not in seen


def test_an_unreachable_receiver_is_one_warning(store):
    results = [result("a", "failed")]
    run = stored_run(store, "run-1", results)
    s = NotifySpec.model_validate({"webhook": {"url": "http://127.0.0.1:9/hook/SECRETPATH-123456", "when": ["always"]}})
    [warning] = deliver(run, results, s, store, retries=1, backoff_s=0.01, timeout_s=2)
    assert warning.startswith("webhook: delivery failed after 2 attempts (") and "SECRETPATH" not in warning


def test_when_and_dedup_are_shared(store, hook):
    """The webhook's `when:` works like Slack's: an unchanged failure is not sent twice."""
    results = [result("a", "failed")]
    s = NotifySpec.model_validate({"webhook": {"url": hook.url, "secret": SECRET, "when": ["failed"]}})
    first = stored_run(store, "run-1", results, started=1_000_000.0)
    assert deliver(first, results, s, store, backoff_s=0.01) == []
    second = stored_run(store, "run-2", results, started=1_000_100.0)
    assert deliver(second, results, s, store, backoff_s=0.01) == []
    assert [d["run"]["run_id"] for d in hook.deliveries] == ["run-1"]
    ok = [result("a", "passed")]
    third = stored_run(store, "run-3", ok, started=1_000_200.0)
    assert deliver(third, ok, s, store, backoff_s=0.01) == []
    assert [d["run"]["run_id"] for d in hook.deliveries] == ["run-1", "run-3"]  # the recovery
    assert hook.deliveries[-1]["history"]["recovered"] == ["a"]


# ---------------------------------------------------------------- the registry


class Collected(NotifierConfig):
    label: str = Field(min_length=1)


SENT: list[dict[str, Any]] = []


@register
class CollectingNotifier(Notifier):
    """A destination defined in a test: one class, registered; nothing else changes."""

    name = "test_collect"
    config_model = Collected

    def payload(self, pub):
        return {"label": self.config.label, "pass_rate": pub.summary.pass_rate, "class": pub.summary.verdict_class}

    async def send(self, payload, redactor, *, retries, backoff_s, timeout_s):
        if payload["label"] == "down":
            return [DeliveryError(self.name, "receiver down", remaining=payload)]
        SENT.append(payload)
        return []


def test_a_notifier_registered_from_a_test_is_delivered_kept_and_resent(store):
    SENT.clear()
    results = [result("a", "passed"), result("b", "error")]
    run = stored_run(store, "run-1", results)
    s = NotifySpec.model_validate({"test_collect": {"label": "team", "when": ["always"]}})
    assert deliver(run, results, s, store) == []
    assert SENT == [{"label": "team", "pass_rate": 1.0, "class": "infra"}]
    down = NotifySpec.model_validate({"test_collect": {"label": "down", "when": ["always"]}})
    [warning] = deliver(run, results, down, store)
    assert warning.startswith("test_collect: delivery failed") and list_pending(store)
    assert resend_pending(store, s) == (0, 1)  # the kept payload still says "down"


def test_notifier_settings_errors_carry_the_suite_position(project: Project):
    project.write("golden/q.yaml", "topic: question\ncases:\n  - id: q1\n    prompt: hi\n    expect: [{contains: hi}]\n")
    project.write("suites/s.yaml", """
        name: s
        golden: ["golden/*.yaml"]
        target: {kind: sim}
        notify:
          webhook:
            url: "ftp://example.com/hook"
            when: [sometimes]
          slak: {webhook_url: "https://hooks.example.com/x"}
    """)
    out = project.harness("run", "suites/s.yaml", "--store", project.store_url, "--no-progress")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert any(re.search(r"s\.yaml:6:\d+: .*expected an http:// or https:// URL", ln) for ln in lines), lines
    assert any(re.search(r"s\.yaml:7:\d+: .*sometimes", ln) for ln in lines), lines
    assert any(re.search(r"s\.yaml:8:\d+: .*'slak'.*did you mean 'slack'", ln) for ln in lines), lines
    assert "ftp://example.com/hook" not in out.stderr  # a URL is a credential, never quoted
    with project_store(project) as st:
        assert st.list_runs(limit=5) == []  # nothing ran


def test_a_webhook_with_its_variable_unset_is_off(project: Project):
    project.write("golden/q.yaml", "topic: question\ncases:\n  - id: q1\n    prompt: hi\n    expect: [{contains: hi}]\n")
    project.write("suites/s.yaml", """
        name: s
        golden: ["golden/*.yaml"]
        target: {kind: sim}
        notify:
          webhook: {url: "${HARNESS_TEST_HOOK_URL:-}", when: [always]}
    """)
    out = project.harness("run", "suites/s.yaml", "--store", project.store_url, "--no-progress", "-q")
    assert "warning" not in out.stderr, out.stderr
    assert out.returncode in (0, 1), out.stdout + out.stderr


@contextmanager
def project_store(project: Project):
    from harness.store import Store

    st = Store.open(project.store_url)
    try:
        yield st
    finally:
        st.close()
