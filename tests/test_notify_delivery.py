"""Delivery never loses a notification and never leaks a secret.

A destination that stays down leaves a pending row (redacted payload, no credentials) and
one warning line; the next run or `resend_pending` sends it later. Secrets are searched
for in everything the fakes received, in the store's tables, in warnings and in logs.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from functools import partial

import notify_fixtures
import pytest
from fake_datadog import FakeDatadog
from fake_slack import FakeSlack
from notify_fixtures import slack, store  # noqa: F401  (fixtures)
from sqlalchemy import inspect, text

from harness.notify import deliver, list_pending, resend_pending
from harness.records import AgentReply, CaseResult, CheckResult, Transcript, Turn
from harness.spec import NotifySpec


def result(case_id: str, status: str, reason: str = "expected 19時 (caller 090-1234-5678)") -> CaseResult:
    return CaseResult(
        case_id=case_id, topic="reservation", tags=[], repeat_index=0, status=status,
        checks=[CheckResult(name="contains", passed=status == "passed", reason="" if status == "passed" else reason)],
        transcript=Transcript(turns=[Turn(index=1, caller="予約", reply=AgentReply(text="はい", total_ms=300))]),
        started=time.time(),
    )


# this file's runs: a post-merge suite whose run failed
stored_run = partial(notify_fixtures.stored_run, suite="post-merge", model="m", seconds=10, exit_code=1)


@pytest.fixture
def dd():
    with FakeDatadog() as fake:
        yield fake


def webhook_spec(slack: FakeSlack) -> NotifySpec:
    return NotifySpec.model_validate({"slack": {"webhook_url": slack.webhook_url, "when": ["failed"]}})


def test_slack_down_keeps_a_pending_delivery_and_resend_sends_it_later(store, slack):
    results = [result("rsv-1", "failed")]
    run = stored_run(store, "run-1", results)
    slack.fail_always(500)
    warnings = deliver(run, results, webhook_spec(slack), store, retries=2, backoff_s=0.01)
    assert len(warnings) == 1
    assert warnings[0].startswith("slack: delivery failed after 3 attempts (webhook answered HTTP 500)")
    assert "kept as pending delivery #1" in warnings[0]
    assert len(slack.requests) == 3 and slack.messages == []
    [row] = list_pending(store)
    assert row.run_id == "run-1" and row.destination == "slack" and row.attempts == 3
    assert "[phone]" in json.dumps(row.payload, ensure_ascii=False)  # kept redacted

    assert resend_pending(store, webhook_spec(slack), retries=0, backoff_s=0.01) == (0, 1)
    assert list_pending(store)[0].attempts == 4

    slack.fail_always(None)
    assert resend_pending(store, webhook_spec(slack), backoff_s=0.01) == (1, 0)
    assert list_pending(store) == []
    [message] = slack.messages
    assert "rsv-1" in json.dumps(message) and "Delayed delivery" in json.dumps(message)


def test_the_next_run_resends_what_is_pending(store, slack):
    spec = webhook_spec(slack)
    first = [result("rsv-1", "failed")]
    run1 = stored_run(store, "run-1", first, started=time.time() - 7200)
    slack.fail_always(503)
    assert len(deliver(run1, first, spec, store, retries=1, backoff_s=0.01)) == 1
    slack.fail_always(None)
    second = [result("rsv-1", "failed"), result("rsv-2", "failed")]
    run2 = stored_run(store, "run-2", second)
    assert deliver(run2, second, spec, store, backoff_s=0.01) == []
    assert len(slack.messages) == 2  # yesterday's message, late, then today's
    assert "Delayed delivery" in json.dumps(slack.messages[0])
    assert "rsv-2" in json.dumps(slack.messages[1])
    assert list_pending(store) == []


def test_unreachable_slack_is_a_warning_not_an_exception(store):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = NotifySpec.model_validate({"slack": {"webhook_url": f"http://127.0.0.1:{port}/services/T/B/SECRETPATH123",
                                                "when": ["always"]}})
    results = [result("rsv-1", "passed")]
    run = stored_run(store, "run-1", results)
    [warning] = deliver(run, results, spec, store, retries=1, backoff_s=0.01)
    assert warning.startswith("slack: delivery failed") and "SECRETPATH123" not in warning
    assert len(list_pending(store)) == 1


def test_a_failed_thread_reply_is_resent_alone(store, slack):
    spec = NotifySpec.model_validate({"slack": {"token": slack.token, "channel": "#c", "api_url": slack.api_url,
                                                "when": ["failed"]}})
    results = [result("rsv-1", "failed")]
    run = stored_run(store, "run-1", results)
    slack.fail(500, times=10, after=1)  # the summary goes through, the thread reply does not
    [warning] = deliver(run, results, spec, store, retries=1, backoff_s=0.01)
    assert "thread reply" in warning
    assert len(slack.messages) == 1
    [row] = list_pending(store)
    assert row.payload["messages"] == [] and row.payload["thread_ts"] == slack.messages[0]["ts"]
    slack.heal()
    assert resend_pending(store, spec, backoff_s=0.01) == (1, 0)
    summary, reply = slack.messages
    assert reply["thread_ts"] == summary["ts"]


def test_an_invalid_redact_pattern_is_rejected_when_the_suite_loads(store, slack):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="not a valid regular expression"):
        NotifySpec.model_validate({"slack": {"webhook_url": slack.webhook_url, "when": ["always"]},
                                   "redact": ["(unclosed"]})
    # a spec built without validation still sends nothing unredacted
    spec = NotifySpec.model_construct(**{**NotifySpec.model_validate(
        {"slack": {"webhook_url": slack.webhook_url, "when": ["always"]}}).__dict__, "redact": ["(unclosed"]})
    results = [result("rsv-1", "failed")]
    run = stored_run(store, "run-1", results)
    [warning] = deliver(run, results, spec, store, backoff_s=0.01)
    assert "notify.redact[0]" in warning and "nothing was sent" in warning
    assert slack.requests == []


def test_secrets_never_reach_a_payload_the_store_a_warning_or_a_log(store, slack, dd, caplog):
    caplog.set_level(logging.DEBUG)
    spec = NotifySpec.model_validate({
        "slack": {"webhook_url": slack.webhook_url, "when": ["always"]},
        "datadog": {"api_key": dd.api_key, "app_key": "dd-app-KEY-abcdef0123456789", "host": dd.host},
    })
    bot = NotifySpec.model_validate({"slack": {"token": slack.token, "channel": "#c", "api_url": slack.api_url,
                                               "when": ["always"]},
                                     "datadog": spec.destinations["datadog"]})
    secrets = [slack.webhook_url, slack.webhook_secret, slack.token, dd.api_key, "dd-app-KEY-abcdef0123456789"]
    # an answer that echoes a secret must not carry it out either
    results = [result("rsv-1", "failed", reason=f"leaked {slack.token} and {dd.api_key}")]
    run = stored_run(store, "run-1", results)
    warnings = []
    warnings += deliver(run, results, spec, store, backoff_s=0.01)  # delivered
    warnings += deliver(run, results, bot, store, backoff_s=0.01)
    slack.fail_always(500)
    dd.fail_always(500)
    warnings += deliver(run, results, spec, store, retries=1, backoff_s=0.01)  # pending
    warnings += deliver(run, results, bot, store, retries=1, backoff_s=0.01)
    assert len(warnings) >= 3 and list_pending(store)
    recorded = "\n".join(slack.raw + dd.raw + warnings + [r.getMessage() for r in caplog.records])
    with store.engine.connect() as conn:
        # `results` holds the agent's raw text, which this test made echo the secrets; what
        # the notifier writes (pending deliveries) and the run rows must not hold them
        for table in set(inspect(conn).get_table_names()) - {"results"}:
            rows = conn.execute(text(f'SELECT * FROM "{table}"')).all()
            recorded += "\n" + json.dumps([list(map(str, r)) for r in rows], ensure_ascii=False)
    assert slack.raw and dd.raw
    for secret in secrets:
        assert secret not in recorded, secret
    assert "***" in "\n".join(slack.raw)  # the echoed token was masked, not just absent
