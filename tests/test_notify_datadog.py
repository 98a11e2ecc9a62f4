"""Datadog metrics, events and LLM Observability through the real datadog-api-client,
against a local fake intake."""

from __future__ import annotations

import time

import pytest
from fake_datadog import FakeDatadog
from notify_fixtures import store  # noqa: F401  (fixture)

from harness.notify import deliver, list_pending
from harness.notify.datadog import DatadogSpec, configuration
from harness.records import AgentReply, CaseResult, CheckResult, RunInfo, Transcript, Turn
from harness.spec import NotifySpec
from harness.store import Store

GAUGE, COUNT = 3, 1


def result(case_id: str, status: str, *, topic: str = "reservation", reason: str = "expected 19時",
           judge: float | None = None, ms: float = 400.0) -> CaseResult:
    checks = [CheckResult(name="contains", passed=status == "passed", reason="" if status == "passed" else reason)]
    if judge is not None:
        checks.append(CheckResult(name="judge", passed=judge >= 0.5, score=judge))
    reply = AgentReply(text="承知しました", total_ms=ms, tokens_in=100, tokens_out=20, cost=0.002)
    return CaseResult(case_id=case_id, topic=topic, tags=[], repeat_index=0, status=status, checks=checks,
                      transcript=Transcript(turns=[Turn(index=1, caller="予約したい", reply=reply)]),
                      error="rate_limited: 429" if status == "error" else None, started=time.time())


def stored_run(store: Store, run_id: str, results: list[CaseResult], verdict: dict | None = None) -> RunInfo:
    now = time.time()
    run = RunInfo(run_id=run_id, suite="daily-drift", model="gpt-4o-mini", target={"kind": "openai"},
                  started=now - 120, status="running")
    store.start_run(run)
    store.add_results(run_id, results)
    run.ended, run.status = now - 5, "complete"
    if verdict:
        run.extra["verdict"] = verdict
    return run


@pytest.fixture
def dd():
    with FakeDatadog(app_key="dd-app-KEY-abcdef0123456789") as fake:
        yield fake


def spec_for(dd: FakeDatadog, **extra) -> NotifySpec:
    return NotifySpec.model_validate({
        "datadog": {"api_key": dd.api_key, "host": dd.host, "env": "staging", "tags": ["service:phone-ai"], **extra},
        "report_url": "https://reports.example.com",
    })


def mixed_results() -> list[CaseResult]:
    return [
        result("rsv-1", "passed", judge=0.9, ms=300), result("rsv-2", "failed", judge=0.2, ms=500),
        result("faq-1", "passed", topic="question", ms=100), result("faq-2", "error", topic="question", ms=900),
    ]


def by_name(series: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for s in series:
        out.setdefault(s["metric"], []).append(s)
    return out


def test_metrics_have_types_timestamps_and_tags(store, dd):
    results = mixed_results()
    run = stored_run(store, "run-1", results, verdict={"class": "regression", "headline": "rsv fell"})
    assert deliver(run, results, spec_for(dd), store, backoff_s=0.01) == []
    assert dd.problems == []
    m = by_name(dd.series)
    [pass_rate] = m["harness.run.pass_rate"]
    assert pass_rate["type"] == GAUGE
    # passed ÷ (passed + failed): the infra error is beside the rate (error_rate), not in it
    assert pass_rate["points"] == [{"timestamp": int(run.ended), "value": pytest.approx(2 / 3)}]
    assert set(pass_rate["tags"]) >= {"suite:daily-drift", "model:gpt-4o-mini", "target:openai", "env:staging",
                                      "verdict:regression", "service:phone-ai"}
    assert m["harness.run.error_rate"][0]["points"][0]["value"] == pytest.approx(0.25)
    assert m["harness.run.cases"][0]["type"] == COUNT and m["harness.run.cases"][0]["points"][0]["value"] == 4
    assert m["harness.run.failed"][0]["type"] == COUNT and m["harness.run.failed"][0]["points"][0]["value"] == 1
    assert m["harness.run.turn_latency_ms.p50"][0]["type"] == GAUGE
    assert m["harness.run.turn_latency_ms.p50"][0]["points"][0]["value"] == pytest.approx(400)
    assert m["harness.run.turn_latency_ms.p95"][0]["points"][0]["value"] == pytest.approx(840)
    assert m["harness.run.tokens"][0]["points"][0]["value"] == 480
    assert m["harness.run.cost_usd"][0]["points"][0]["value"] == pytest.approx(0.008)
    assert m["harness.run.judge_score"][0]["points"][0]["value"] == pytest.approx(0.55)
    assert m["harness.run.regression"][0]["points"][0]["value"] == 1
    assert m["harness.run.drift"][0]["points"][0]["value"] == 0
    topics = {t for s in m["harness.topic.pass_rate"] for t in s["tags"] if t.startswith("topic:")}
    assert topics == {"topic:reservation", "topic:question"}
    assert all(s["type"] == GAUGE for s in m["harness.topic.pass_rate"])
    assert all(s["points"][0]["timestamp"] == int(run.ended) for s in dd.series)


@pytest.mark.parametrize("cls, alert", [("regression", "error"), ("drift", "warning"), ("infra", "warning"),
                                        ("judge_drift", "warning"), ("noise", "info")])
def test_event_alert_type_follows_the_verdict(store, dd, cls, alert):
    results = mixed_results()
    run = stored_run(store, "run-1", results, verdict={"class": cls, "headline": f"the {cls} headline " + "x" * 150})
    assert deliver(run, results, spec_for(dd), store, backoff_s=0.01) == []
    [event] = dd.events
    assert event["alert_type"] == alert
    assert event["aggregation_key"] == "harness:daily-drift"
    assert len(event["title"]) <= 100 and cls in event["title"]
    assert f"the {cls} headline" in event["text"]
    assert "https://reports.example.com/daily-drift-run-1.html" in event["text"]
    assert event["date_happened"] == int(run.ended)
    assert "verdict:" + cls in event["tags"]


def test_an_ok_run_sends_metrics_but_no_event(store, dd):
    results = [result("rsv-1", "passed")]
    run = stored_run(store, "run-1", results)
    assert deliver(run, results, spec_for(dd), store, backoff_s=0.01) == []
    assert dd.events == [] and dd.series


def test_site_sets_the_server_variable_and_host_overrides_it():
    eu = configuration(DatadogSpec(api_key="k", site="datadoghq.eu"))
    assert eu.server_variables["site"] == "datadoghq.eu"
    assert eu.host == "https://api.datadoghq.eu"
    proxied = configuration(DatadogSpec(api_key="k", site="datadoghq.eu", host="http://127.0.0.1:9/"))
    assert proxied.host == "http://127.0.0.1:9"


def test_rate_limit_then_success(store, dd):
    results = mixed_results()
    run = stored_run(store, "run-1", results)
    dd.fail(429, times=1, retry_after=0)
    assert deliver(run, results, spec_for(dd), store, backoff_s=0.01) == []
    assert [r["status"] for r in dd.requests][:2] == [429, 202]
    assert dd.series and list_pending(store) == []


def test_server_error_forever_keeps_metrics_and_event_pending(store, dd):
    results = mixed_results()
    run = stored_run(store, "run-1", results, verdict={"class": "drift", "headline": "wording changed"})
    dd.fail_always(500)
    warnings = deliver(run, results, spec_for(dd), store, retries=2, backoff_s=0.01)
    assert len(warnings) == 2
    assert warnings[0].startswith("datadog metrics: delivery failed after 3 attempts (HTTP 500")
    assert warnings[1].startswith("datadog event: ")
    assert len(dd.requests) == 6  # 3 attempts each
    rows = list_pending(store)
    assert [r.destination for r in rows] == ["datadog metrics", "datadog event"]
    assert set(rows[0].payload) == {"series"} and set(rows[1].payload) == {"event"}


def test_redaction_in_metrics_tags_and_event_text(store, dd):
    results = [result("rsv-1", "failed", reason="call 090-1234-5678 or mail hanako@example.jp, ticket T-99812")]
    run = stored_run(store, "run-1", results, verdict={"class": "regression", "headline": "caller +1 555 123 4567"})
    spec = spec_for(dd, tags=["owner:ops@example.com"])
    spec.redact = [r"T-\d{5}"]
    assert deliver(run, results, spec, store, backoff_s=0.01) == []
    body = "\n".join(dd.raw)
    for secret in ("090-1234-5678", "hanako@example.jp", "T-99812", "555 123 4567", "ops@example.com"):
        assert secret not in body
    assert "[phone]" in dd.events[0]["text"] and "[email]" in dd.events[0]["text"]
    assert "[redacted]" in dd.events[0]["text"]


def test_llm_observability_experiment(store, dd):
    results = mixed_results()
    run = stored_run(store, "run-1", results, verdict={"class": "noise", "headline": "within variance"})
    spec = spec_for(dd, llm_observability=True, app_key=dd.app_key)
    assert deliver(run, results, spec, store, backoff_s=0.01) == []
    [experiment] = dd.experiments
    assert experiment["name"] == "daily-drift-run-1"
    assert experiment["project_id"] in dd.projects.values()
    [events] = dd.experiment_events[experiment["id"]]
    assert len(events["spans"]) == 4 and len(events["metrics"]) == 4
    assert {m["boolean_value"] for m in events["metrics"]} == {True, False}
    # the second run reuses the project and dataset found by name
    run2 = stored_run(store, "run-2", results)
    deliver(run2, results, spec, store, backoff_s=0.01)
    assert len(dd.projects) == 1 and len(dd.datasets) == 1 and len(dd.experiments) == 2


def test_llm_observability_without_app_key_is_skipped_with_a_warning(store, dd):
    results = mixed_results()
    run = stored_run(store, "run-1", results)
    warnings = deliver(run, results, spec_for(dd, llm_observability=True), store, backoff_s=0.01)
    assert warnings == ["datadog llm observability: skipped, it needs notify.datadog.app_key"]
    assert dd.experiments == [] and dd.series
