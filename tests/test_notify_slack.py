"""Slack notifications through the real slack-sdk against a local fake Slack.

Covers the Block Kit shape and limits, a 5,000-case run, threads in bot mode, 429 with
Retry-After, the `when` filter, de-duplication over several simulated days, and
redaction of what is posted.
"""

from __future__ import annotations

import json
import time

from fake_slack import FakeSlack, block_problems
from notify_fixtures import slack, store, stored_run  # noqa: F401  (fixtures)

from harness.notify import deliver
from harness.records import AgentReply, CaseResult, CheckResult, Transcript, Turn
from harness.spec import NotifySpec

DAY = 86400.0


def result(case_id: str, status: str, *, topic: str = "reservation", reason: str = "expected 19時",
           repeat: int = 0) -> CaseResult:
    passed = status == "passed"
    return CaseResult(
        case_id=case_id, topic=topic, tags=[], repeat_index=repeat, status=status,
        checks=[CheckResult(name="contains", passed=passed, reason="" if passed else reason, turn=1)],
        transcript=Transcript(turns=[Turn(index=1, caller="明日19時に4名", reply=AgentReply(text="承知しました",
                                                                                       total_ms=420.0))]),
        error="timeout: no answer in 30s" if status == "error" else None,
        started=time.time(),
    )


def webhook_spec(slack: FakeSlack, **extra) -> NotifySpec:
    return NotifySpec.model_validate({"slack": {"webhook_url": slack.webhook_url, **extra},
                                      "report_url": "https://reports.example.com/harness/"})


def bot_spec(slack: FakeSlack, **extra) -> NotifySpec:
    return NotifySpec.model_validate({"slack": {"token": slack.token, "channel": "#phone-ai", "api_url": slack.api_url,
                                                **extra}, "report_url": "https://reports.example.com/harness"})


def all_text(message: dict) -> str:
    return json.dumps(message, ensure_ascii=False)


def test_webhook_summary_has_the_verdict_topics_cases_and_report_link(store, slack):
    verdict = {"class": "regression", "headline": "reservation pass rate fell 20 points after commit abc",
               "evidence": [{"kind": "pass_rate", "detail": "reservation 80% vs 100%"}],
               "topics": {"reservation": {"pass_rate": 0.5, "baseline_pass_rate": 1.0, "delta": -0.5, "p_value": 0.01}},
               "changed_cases": [{"case_id": "rsv-1", "topic": "reservation", "change": "now fails", "before": "ok",
                                  "after": "<!channel> 空きがありません"}],
               "baseline_run": "base-1"}
    results = [result("rsv-1", "failed", reason="<!channel> please"), result("rsv-2", "passed")]
    run = stored_run(store, "run-1", results, verdict=verdict)
    warnings = deliver(run, results, webhook_spec(slack), store, backoff_s=0.01)
    assert warnings == []
    assert slack.problems == []
    [message] = slack.messages
    blocks = message["blocks"]
    assert blocks[0]["type"] == "header"
    assert blocks[0]["text"]["text"] == ":red_circle: daily: regression"
    text = all_text(message)
    assert "reservation pass rate fell 20 points" in message["text"]
    assert "`reservation` 50.0% (−50.0 pts vs baseline)" in text
    assert "rsv-1" in text and "Changed against the baseline" in text
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text  # untrusted text cannot ping anyone
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert buttons[0]["url"] == "https://reports.example.com/harness/daily-run-1.html"
    assert "cannot post a thread" in text  # webhook mode says where the details are
    assert block_problems(blocks) == []


def test_bot_mode_posts_details_in_a_thread_under_the_summary(store, slack):
    results = [result(f"rsv-{i}", "failed" if i < 3 else "passed") for i in range(6)]
    run = stored_run(store, "run-1", results)
    assert deliver(run, results, bot_spec(slack), store, backoff_s=0.01) == []
    summary, reply = slack.messages
    assert summary["via"] == "bot" and summary["channel"] == "#phone-ai" and "thread_ts" not in summary
    assert reply["thread_ts"] == summary["ts"]
    assert "in the thread" in all_text(summary)
    assert all(f"rsv-{i}" in all_text(reply) for i in range(3))
    assert [r["path"] for r in slack.requests] == ["/api/chat.postMessage"] * 2


def test_a_5000_case_run_fits_slack_limits(store, slack):
    results = [result(f"case-{i:05d}-" + "x" * 40, "failed" if i % 2 else "passed", topic=f"topic{i % 60}",
                      reason="reason " * 80) for i in range(5000)]
    verdict = {"class": "regression", "headline": "h" * 500,
               "evidence": [{"kind": "k", "detail": "d" * 400}] * 200,
               "changed_cases": [{"case_id": f"c{i}", "topic": "t", "change": "c" * 300, "before": "b" * 900,
                                  "after": "a" * 900} for i in range(3000)]}
    run = stored_run(store, "run-big", results, verdict=verdict)
    for spec in (bot_spec(slack), webhook_spec(slack)):
        assert deliver(run, results, spec, store, backoff_s=0.01, resend=False) == []
    assert slack.problems == []
    assert len(slack.messages) == 3  # bot summary + thread reply, webhook summary
    for message in slack.messages:
        assert len(message["blocks"]) <= 50
        assert len(message["text"]) <= 4000
        for b in message["blocks"]:
            if b["type"] == "section":
                assert len(b["text"]["text"]) <= 3000
            if b["type"] == "header":
                assert len(b["text"]["text"]) <= 150
    assert "… and" in all_text(slack.messages[0]) and "… and" in all_text(slack.messages[1])


def test_rate_limit_with_retry_after_is_retried_then_posts(store, slack):
    results = [result("rsv-1", "failed")]
    run = stored_run(store, "run-1", results)
    slack.fail(429, times=1, retry_after=0)
    assert deliver(run, results, webhook_spec(slack), store, backoff_s=0.01) == []
    assert [r["status"] for r in slack.requests] == [429, 200]
    assert len(slack.messages) == 1


def test_rate_limit_on_the_web_api_is_retried_too(store, slack):
    results = [result("rsv-1", "failed")]
    run = stored_run(store, "run-1", results)
    slack.fail(429, times=1, retry_after=0)
    assert deliver(run, results, bot_spec(slack), store, backoff_s=0.01) == []
    assert [r["status"] for r in slack.requests] == [429, 200, 200]
    assert len(slack.messages) == 2


def test_when_filter_skips_an_ok_run_unless_always(store, slack):
    results = [result("rsv-1", "passed")]
    run = stored_run(store, "run-1", results)
    assert deliver(run, results, webhook_spec(slack), store, backoff_s=0.01) == []
    assert slack.messages == []
    assert deliver(run, results, webhook_spec(slack, when=["always"]), store, backoff_s=0.01) == []
    assert len(slack.messages) == 1
    assert slack.messages[0]["blocks"][0]["text"]["text"].startswith(":white_check_mark:")


def test_only_listed_verdict_classes_are_sent(store, slack):
    results = [result("rsv-1", "failed")]
    drift = stored_run(store, "run-1", results, verdict={"class": "drift", "headline": "wording changed"})
    deliver(drift, results, webhook_spec(slack, when=["regression"]), store, backoff_s=0.01)
    assert slack.messages == []
    deliver(drift, results, webhook_spec(slack, when=["drift"]), store, backoff_s=0.01)
    assert len(slack.messages) == 1


def test_dedup_over_several_days(store, slack):
    """Day by day: new failure, silence, still failing (day 3), recovery once, all clear."""
    spec = webhook_spec(slack, when=["failed", "change"])
    start = time.time() - 6 * DAY
    days = [
        {"A": "failed", "B": "passed", "C": "passed"},  # 1: A is new
        {"A": "failed", "B": "passed", "C": "passed"},  # 2: nothing new → not sent
        {"A": "failed", "B": "failed", "C": "passed"},  # 3: B new, A still failing (day 3)
        {"A": "passed", "B": "failed", "C": "passed"},  # 4: A recovered, B day 2
        {"A": "passed", "B": "failed", "C": "passed"},  # 5: same as day 4 → not sent
        {"A": "passed", "B": "passed", "C": "passed"},  # 6: B recovered, verdict back to ok
    ]
    sent_per_day = []
    for day, statuses in enumerate(days, start=1):
        results = [result(c, s) for c, s in statuses.items()]
        run = stored_run(store, f"day-{day}", results, started=start + day * DAY)
        before = len(slack.messages)
        assert deliver(run, results, spec, store, backoff_s=0.01) == []
        sent_per_day.append(slack.messages[before:])
    texts = [[all_text(m) for m in msgs] for msgs in sent_per_day]
    assert [len(t) for t in texts] == [1, 0, 1, 1, 0, 1]
    assert "*Failing* (1)" in texts[0][0] and "`A`" in texts[0][0]
    assert "*New failures* (1)" in texts[2][0] and "`B`" in texts[2][0]
    assert "`A` (reservation) — still failing (day 3)" in texts[2][0]
    assert "recovered: `A`" in texts[3][0]
    assert "`B` (reservation) — still failing (day 2)" in texts[3][0]
    assert "recovered: `B`" in texts[5][0] and "recovered: `A`" not in texts[5][0]
    assert texts[5][0].count("white_check_mark") >= 1


def test_redaction_of_phone_numbers_emails_and_custom_patterns(store, slack):
    spec = NotifySpec.model_validate({"slack": {"webhook_url": slack.webhook_url},
                                      "redact": [r"RSV-\d{6}", "山田"]})
    reason = ("折り返しは090-1234-5678か+81 3-1234-5678、(555) 123-4567、taro.yamada@example.co.jp まで。"
              "予約番号 RSV-123456、山田様")
    results = [result("rsv-1", "failed", reason=reason)]
    run = stored_run(store, "run-1", results, verdict={"class": "regression", "headline": "call 03-1234-5678"})
    assert deliver(run, results, spec, store, backoff_s=0.01) == []
    body = "\n".join(slack.raw)
    for secret in ("090-1234-5678", "3-1234-5678", "123-4567", "taro.yamada@example.co.jp", "RSV-123456", "山田"):
        assert secret not in body
    assert "[phone]" in body and "[email]" in body and "[redacted]" in body
    # the store keeps the raw text for the team's own debugging
    assert "090-1234-5678" in store.results("run-1")[0].checks[0].reason


def test_a_case_failing_in_only_one_repeat_counts_as_failing(store, slack):
    results = [result("A", "passed", repeat=0), result("A", "failed", repeat=1)]
    run = stored_run(store, "run-1", results)
    deliver(run, results, webhook_spec(slack, when=["failed"]), store, backoff_s=0.01)
    assert "`A`" in all_text(slack.messages[0])


def test_a_repeated_regression_is_not_reposted_when_history_has_no_stored_verdicts(store, slack):
    """The analysis verdict lives in memory only; yesterday's class is derived from counts,
    so today's is compared the same way instead of reading as a daily "change"."""
    spec = webhook_spec(slack, when=["regression", "change"])
    verdict = {"class": "regression", "headline": "rsv-1 broke"}
    start = time.time() - 3 * DAY
    sent = []
    for day in (1, 2):
        results = [result("rsv-1", "failed"), result("rsv-2", "passed")]
        run = stored_run(store, f"day-{day}", results, started=start + day * DAY, verdict=verdict)
        before = len(slack.messages)
        deliver(run, results, spec, store, backoff_s=0.01)
        sent.append(len(slack.messages) - before)
    assert sent == [1, 0]
