"""Traces: every case and repeat as an OpenTelemetry trace, joined by the service's own spans.

Real parts only: the harness runs as a CLI subprocess with the OpenTelemetry SDK and its
OTLP/HTTP exporter, sending to a local collector that decodes the protobuf
(tests/fake_otlp.py); the service under test is a webhook instrumented with the SDK that
reads `traceparent` and exports its own spans to the same collector, or the local
OpenAI-compatible server, which records the headers it gets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import REPO, Project
from fake_otlp import FakeCollector, Span, TracedAgent
from mock_openai import MockOpenAI

from harness.tracing import case_trace_id

TOKEN = "agent-token-SECRET-123456"
OTEL_ENV_VARS = [k for k in os.environ if k.startswith("OTEL_") or k == "HARNESS_OTEL"]


@pytest.fixture(autouse=True)
def _clean_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runs below get exactly the OTEL_* variables each test gives them."""
    for k in OTEL_ENV_VARS:
        monkeypatch.delenv(k, raising=False)


GOLDEN = """
topic: reservation
tags: [traced]
cases:
  - id: rsv-two-turns
    turns:
      - caller: 予約したいです
        expect:
          - contains: お名前
      - caller: 山田です
        expect:
          - contains: かしこまりました
  - id: rsv-wrong
    prompt: 予約をお願いします
    expect:
      - contains: "営業時間"
"""


def http_suite(project: Project, agent_url: str, tracing: str) -> Path:
    return project.write("suites/traced.yaml", f"""
name: traced
golden: ["golden/**/*.yaml"]
target:
  kind: http
  url: {agent_url}
  headers: {{Authorization: "Bearer ${{AGENT_TOKEN}}"}}
  reply_path: $.reply
  limits: {{concurrency: 4, retries: 0}}
repeat: 2
{tracing}
""")


def by_trace(spans: list[Span]) -> dict[str, list[Span]]:
    out: dict[str, list[Span]] = defaultdict(list)
    for s in spans:
        out[s.trace_id].append(s)
    return out


def run_json(project: Project) -> dict:
    return json.loads(next((project.root / "reports").glob("traced-*.json")).read_text())


def test_a_trace_per_case_with_the_services_spans_under_it(project: Project) -> None:
    project.write("golden/reservation/r.yaml", GOLDEN)
    with FakeCollector() as collector, TracedAgent(collector.traces_url, token=TOKEN) as agent:
        suite = http_suite(project, agent.url, f"""tracing:
  endpoint: {collector.base_url}
  service_name: phone-tests
  trace_url: "https://jaeger.example.com/trace/{{trace_id}}"
""")
        out = project.harness("run", str(suite), "--store", project.store_url, "-o", "reports", "--no-progress",
                              env={"AGENT_TOKEN": TOKEN})
        assert out.returncode == 1, out.stdout + out.stderr  # rsv-wrong fails its check
        assert "warning" not in out.stderr, out.stderr
        run_id = run_json(project)["run"]["run_id"]
        wanted = {case_trace_id(run_id, c, r) for c in ("rsv-two-turns", "rsv-wrong") for r in (0, 1)}
        # the service exports on its own, a moment after answering: wait for its 6 turns × 2 spans
        spans = collector.wait_for(lambda s: sum(x.service == "phone-agent" for x in s) >= 12)

    traces = by_trace(spans)
    runs = [s for s in spans if s.name == "run traced"]
    assert len(runs) == 1 and runs[0].parent_id == "" and runs[0].service == "phone-tests"
    run_span = runs[0]
    assert run_span.attributes["harness.run.id"] == run_id
    assert run_span.attributes["harness.run.failed"] == 2 and run_span.attributes["harness.run.passed"] == 2
    assert run_span.status == "ERROR"
    assert len(traces[run_span.trace_id]) == 1  # the run's trace holds the run alone

    # one trace per case and repeat, with the id the reports show
    assert wanted <= set(traces), (wanted, set(traces))
    for trace_id in wanted:
        tree = traces[trace_id]
        ids = {s.span_id: s for s in tree}
        roots = [s for s in tree if s.parent_id == ""]
        assert len(roots) == 1, [(s.name, s.parent_id) for s in tree]
        case = roots[0]
        assert case.name.startswith("case rsv-") and case.service == "phone-tests"
        assert case.links == [(run_span.trace_id, run_span.span_id)]
        assert case.attributes["harness.suite"] == "traced"
        assert case.attributes["harness.case.topic"] == "reservation"
        assert case.attributes["harness.case.tags"] == ["traced"]
        assert case_trace_id(run_id, case.attributes["harness.case.id"], case.attributes["harness.case.repeat"]) == trace_id
        turns = sorted((s for s in tree if s.parent_id == case.span_id and s.name.startswith("turn ")),
                       key=lambda s: s.attributes["harness.turn.index"])
        expected_turns = 2 if case.attributes["harness.case.id"] == "rsv-two-turns" else 1
        assert [t.attributes["harness.turn.index"] for t in turns] == list(range(1, expected_turns + 1))
        for turn in turns:
            assert turn.attributes["harness.route"] == "primary"
            assert turn.start_ns >= case.start_ns and turn.end_ns <= case.end_ns
            posts = [s for s in tree if s.parent_id == turn.span_id]
            assert len(posts) == 1 and posts[0].kind == "CLIENT" and posts[0].name == "POST"
            post = posts[0]
            assert post.attributes["url.full"] == agent.url and post.attributes["server.address"] == "127.0.0.1"
            # the service's own span is a child of the request that reached it, in the same trace
            served = [s for s in tree if s.parent_id == post.span_id]
            assert len(served) == 1 and served[0].service == "phone-agent" and served[0].kind == "SERVER"
            assert served[0].attributes["agent.case_id"] == case.attributes["harness.case.id"]  # from baggage
            assert [s.name for s in tree if s.parent_id == served[0].span_id] == ["agent llm call"]
            assert ids[served[0].parent_id] is post
        if case.attributes["harness.case.id"] == "rsv-wrong":
            assert case.status == "ERROR" and case.attributes["harness.case.status"] == "failed"
            assert case.attributes["harness.checks.failed"] == ["contains@1"]
            events = [e for name, e in case.events if name == "harness.check"]
            assert events == [{"harness.check.name": "contains", "harness.check.outcome": "failed",
                               "harness.check.score": 0.0, "harness.turn.index": 1}]
        else:
            assert case.status != "ERROR" and case.attributes["harness.checks.passed"] == 2

    # the W3C headers went out on every request; the service saw the case's trace and baggage
    assert len(agent.seen) == 6  # 3 caller turns × 2 repeats
    for headers in agent.seen:
        version, trace_id, parent, flags = headers["traceparent"].split("-")
        assert version == "00" and trace_id in wanted and int(flags, 16) & 1  # sampled
        assert "harness.case_id=rsv-" in headers["baggage"] and f"harness.run_id={run_id}" in headers["baggage"]

    # no message text and no secret left the machine in a span
    raw = b"".join(collector.bodies)
    for said in ("予約したいです".encode(), "山田です".encode(), "お名前".encode(), TOKEN.encode()):
        assert said not in raw

    # each case carries its trace id and link in the JSON, JUnit and HTML reports
    doc = run_json(project)
    for r in doc["results"]:
        trace_id = case_trace_id(run_id, r["case_id"], r["repeat_index"])
        assert r["trace_id"] == trace_id and r["trace_url"] == f"https://jaeger.example.com/trace/{trace_id}"
    junit = ET.parse(next((project.root / "reports").glob("traced-*.junit.xml"))).getroot()
    props = [{p.get("name"): p.get("value") for p in tc.iter("property")} for tc in junit.iter("testcase")]
    assert len(props) == 4 and {p["trace_id"] for p in props} == wanted
    assert all(p["trace_url"] == f"https://jaeger.example.com/trace/{p['trace_id']}" for p in props)
    html = (project.root / "reports" / "traced-latest.html").read_text()
    for trace_id in wanted:
        assert f'href="https://jaeger.example.com/trace/{trace_id}"' in html


def test_openai_requests_are_genai_client_spans_under_the_standard_env_vars(project: Project) -> None:
    project.write("golden/question/q.yaml", """
topic: question
cases:
  - id: q-hours
    prompt: 営業時間は？
    expect:
      - contains: "11時"
""")
    gateway = {"x-litellm-model-name": "gpt-4o-mini-2024-07-18", "x-litellm-model-id": "dep-7",
               "x-litellm-model-api-base": "https://eastus.api.example.com/openai"}
    with FakeCollector() as collector, MockOpenAI(reply=lambda messages: "11時から営業しています", headers=gateway) as mock:
        suite = project.write("suites/traced.yaml", f"""
name: traced
golden: ["golden/**/*.yaml"]
target: {{kind: openai, base_url: "{mock.base_url}", model: primary, api_key: "${{GW_KEY}}", temperature: 0}}
""")
        out = project.harness("run", str(suite), "--store", project.store_url, "-o", "reports", "--no-progress",
                              env={"HARNESS_OTEL": "1", "OTEL_EXPORTER_OTLP_ENDPOINT": collector.base_url,
                                   "OTEL_SERVICE_NAME": "drift-check", "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=ci",
                                   "GW_KEY": "sk-gateway-SECRET-987"})
        assert out.returncode == 0, out.stdout + out.stderr
        spans = collector.wait_for(lambda s: any(x.name.startswith("chat") for x in s))
        sent = mock.last_headers
        raw = b"".join(collector.bodies)
    assert b"sk-gateway-SECRET-987" not in raw
    chat = next(s for s in spans if s.name == "chat primary")
    assert chat.kind == "CLIENT" and chat.service == "drift-check"
    a = chat.attributes
    assert a["gen_ai.system"] == "openai" and a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == "primary" and a["gen_ai.request.temperature"] == 0
    assert a["gen_ai.response.model"] == "mock-model-2024-01-01"
    assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
    assert 0 < a["gen_ai.response.time_to_first_chunk"] < 10 and a["gen_ai.request.stream"] is True
    assert a["harness.deployment.model"] == "gpt-4o-mini-2024-07-18" and a["harness.deployment.id"] == "dep-7"
    assert a["harness.deployment.api_base_host"] == "eastus.api.example.com"
    # the request carried the chat span's context: the model server would join this trace
    _, trace_id, parent, _ = sent["traceparent"].split("-")
    assert (trace_id, parent) == (chat.trace_id, chat.span_id)
    run_id = json.loads(next((project.root / "reports").glob("traced-*.json")).read_text())["run"]["run_id"]
    assert chat.trace_id == case_trace_id(run_id, "q-hours", 0)
    turn = next(s for s in spans if s.span_id == chat.parent_id)
    assert turn.name == "turn 1" and turn.attributes["harness.route"] == "primary"
    assert turn.attributes["harness.turn.first_token_ms"] == pytest.approx(a["gen_ai.response.time_to_first_chunk"] * 1000)
    case = next(s for s in spans if s.span_id == turn.parent_id)
    assert case.name == "case q-hours" and case.parent_id == ""
    run_span = next(s for s in spans if s.name == "run traced")
    assert run_span.attributes["gen_ai.request.model"] == "primary"


def test_record_content_puts_what_was_said_on_the_turn_spans(project: Project) -> None:
    project.write("golden/reservation/r.yaml", GOLDEN)
    with FakeCollector() as collector, TracedAgent(collector.traces_url) as agent:
        suite = http_suite(project, agent.url, f"tracing: {{endpoint: {collector.base_url}, record_content: true}}")
        project.harness("run", str(suite), "--store", project.store_url, "-o", "reports", "--no-progress",
                        env={"AGENT_TOKEN": TOKEN})
        spans = collector.wait_for(lambda s: any(x.name == "run traced" for x in s))
    turn = next(s for s in spans if s.name == "turn 2")
    assert turn.attributes["harness.turn.caller"] == "山田です"
    assert turn.attributes["harness.turn.reply"] == "かしこまりました。"


def test_a_collector_that_is_down_costs_one_warning_line(project: Project) -> None:
    project.write("golden/reservation/r.yaml", GOLDEN)
    with TracedAgent(None) as agent:
        suite = http_suite(project, agent.url, "")
        t0 = time.monotonic()
        out = project.harness("run", str(suite), "--store", project.store_url, "-o", "reports", "--no-progress",
                              env={"AGENT_TOKEN": TOKEN, "HARNESS_OTEL": "1",
                                   "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
        took = time.monotonic() - t0
    assert out.returncode == 1, out.stdout + out.stderr  # the same exit code as without tracing
    assert "Traceback" not in out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("warning: tracing: ") and "were not delivered to http://127.0.0.1:9/v1/traces" in lines[0]
    assert "connection refused" in lines[0]
    assert took < 20
    assert run_json(project)["run"]["counts"] == {"passed": 2, "failed": 2, "error": 0, "not_run": 0}


def test_harness_otel_0_turns_a_suites_tracing_off(project: Project) -> None:
    project.write("golden/reservation/r.yaml", GOLDEN)
    with FakeCollector() as collector, TracedAgent(collector.traces_url) as agent:
        suite = http_suite(project, agent.url, f"tracing: {{endpoint: {collector.base_url}}}")
        out = project.harness("run", str(suite), "--store", project.store_url, "-o", "reports", "--no-progress",
                              env={"AGENT_TOKEN": TOKEN, "HARNESS_OTEL": "0"})
        assert out.returncode == 1, out.stdout + out.stderr
        time.sleep(0.3)
        assert not any(s.service != "phone-agent" for s in collector.spans)
    assert all("traceparent" not in h for h in agent.seen)
    assert all("trace_id" not in r for r in run_json(project)["results"])


def test_with_tracing_off_nothing_from_opentelemetry_is_imported(tmp_path: Path) -> None:
    code = f"""
import sys
from harness.pipeline import RunOptions, run_suite
outcome = run_suite({str(REPO / "suites" / "post-merge.yaml")!r},
                    RunOptions(store_url="sqlite:///{tmp_path}/h.db", report_dir={str(tmp_path)!r}, progress=False))
assert outcome.results, "the run ran"
print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
"""
    env = {k: v for k, v in os.environ.items() if k not in OTEL_ENV_VARS}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_a_bad_tracing_section_is_one_line_with_its_position(project: Project) -> None:
    project.write("golden/reservation/r.yaml", GOLDEN)
    suite = http_suite(project, "http://127.0.0.1:9/turn", "tracing: {trace_url: https://jaeger.example.com/trace/}")
    out = project.harness("run", str(suite), "--store", project.store_url, env={"AGENT_TOKEN": TOKEN})
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "suites/traced.yaml:" in lines[0] and "{trace_id}" in lines[0], out.stderr


async def test_judge_calls_are_spans_in_the_case_trace(project: Project) -> None:
    import asyncio

    from mock_judge import MockJudge

    project.write("golden/question/q.yaml", """
topic: question
cases:
  - id: q-judged
    language: en
    prompt: What are your opening hours?
    expect:
      - judge: "The reply states the opening hours"
""")
    with FakeCollector() as collector, MockOpenAI(reply=lambda m: "We are open from 11 am to 10 pm.") as agent:
        async with MockJudge(rules=[("11 am", 9)], default_score=2) as judge:
            suite = project.write("suites/traced.yaml", f"""
name: traced
golden: ["golden/**/*.yaml"]
target: {{kind: openai, base_url: "{agent.base_url}", model: agent-model}}
judge: {{base_url: "{judge.url}", model: judge-model, when: always}}
tracing: {{endpoint: {collector.base_url}}}
""")
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "harness", "run", str(suite), "--store", project.store_url, "-o", "reports",
                "--no-progress", cwd=project.root, env={**os.environ, "NO_COLOR": "1"},
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), timeout=240)
            assert proc.returncode == 0, out.decode()[-3000:] + err.decode()[-3000:]
        spans = collector.wait_for(lambda s: any(x.name == "run traced" for x in s))
    judged = [s for s in spans if s.name == "judge criteria"]
    assert len(judged) == 1
    j = judged[0]
    assert j.attributes["gen_ai.evaluation.score.label"] == "pass" and j.attributes["gen_ai.evaluation.score.value"] >= 0.5
    case = next(s for s in spans if s.span_id == j.parent_id)
    assert case.name == "case q-judged" and j.trace_id == case.trace_id
    calls = [s for s in spans if s.parent_id == j.span_id]
    assert calls and all(s.kind == "CLIENT" and s.attributes["gen_ai.request.model"] == "judge-model" for s in calls)
