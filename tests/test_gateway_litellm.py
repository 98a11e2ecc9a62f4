"""Behind a real LiteLLM proxy: what the gateway says about routing, deployments, limits and
errors is read, recorded per turn and classified, through the `harness` CLI as a user runs it.

One proxy serves the whole test run (it takes seconds to boot); each test sets its upstreams'
behaviour and runs suites against it. See tests/litellm_gateway.py for the aliases.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from conftest import Project
from litellm_gateway import MASTER_KEY, UPSTREAM_KEY, LiteLLMGateway, litellm_binary

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def gateway(tmp_path_factory):
    binary = litellm_binary()
    if binary is None:
        msg = "no litellm proxy: bash .ci/run installs it in .venv-gateway (see tests/gateway-requirements.txt)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    with LiteLLMGateway(tmp_path_factory.mktemp("litellm"), binary) as gw:
        yield gw


@pytest.fixture
def gw(gateway: LiteLLMGateway) -> LiteLLMGateway:
    gateway.reset()
    return gateway


def golden(project: Project, n: int, *, route_check: bool = False) -> None:
    extra = "\n      - route: primary" if route_check else ""
    cases = "\n".join(f"  - id: q-{i:02d}\n    prompt: hello {i}\n    expect:\n      - contains: hello{extra}"
                      for i in range(n))
    project.write("golden/question/q.yaml", "topic: question\ncases:\n" + cases + "\n")


def suite(project: Project, gw: LiteLLMGateway, *, model: str = "primary", stream: bool = True,
          limits: str = "", headers: str = "", name: str = "gw", key: str = "${GATEWAY_KEY}") -> Path:
    return project.write(f"suites/{name}.yaml", f"""
        name: {name}
        golden: ["golden/**/*.yaml"]
        target:
          kind: openai
          base_url: "{gw.base_url}"
          model: {model}
          api_key: "{key}"
          stream: {str(stream).lower()}
          limits: {{concurrency: 1, timeout_s: 20, retries: 2, backoff_s: 0.01, backoff_max_s: 5{limits}}}
          {headers}
    """)


def run(project: Project, suite_path: Path, *args: str, key: str = MASTER_KEY):
    out_json = project.root / f"out-{time.monotonic_ns()}.json"
    out = project.harness("run", str(suite_path), "--store", project.store_url, "--no-progress", "--no-notify",
                          "--json", str(out_json), *args, env={"GATEWAY_KEY": key}, timeout=240)
    doc = json.loads(out_json.read_text()) if out_json.exists() else None
    return out, doc


def replies(doc: dict) -> list[dict]:
    return [t["reply"] for r in doc["results"] for t in (r["transcript"] or {}).get("turns", [])
            if t["kind"] != "greeting"]


# ------------------------------------------------------------ 1, 2, 7: route and deployment


def test_a_fallback_turn_is_recorded_as_such_and_the_run_says_the_primary_was_down(project, gw):
    golden(project, 10, route_check=True)
    gw.a.script = ["500", "ok", "ok"] * 4  # the primary fails a third of the time
    out, doc = run(project, suite(project, gw), "--html", str(project.root / "r.html"))
    served = replies(doc)
    fallback = [r for r in served if r["route"] == "fallback"]
    primary = [r for r in served if r["route"] == "primary"]
    b_host, a_host = gw.b.base_url.split("/")[2], gw.a.base_url.split("/")[2]
    assert len(fallback) == 4 and len(primary) == 6, served
    assert {r["deployment"] for r in fallback} == {f"openai/model-b@{b_host}"}
    assert {r["deployment"] for r in primary} == {f"openai/model-a@{a_host}"}
    assert {r["model"] for r in fallback} == {"openai/model-b"}
    assert all(r["upstream_attempts"] == 2 for r in fallback)  # the primary's failure, then the fallback
    assert all(r["upstream_attempts"] == 1 for r in primary)
    # the route check fails on exactly the turns the fallback served
    failed = {r["case_id"] for r in doc["results"] if r["status"] == "failed"}
    assert len(failed) == 4 and out.returncode == 1, out.stdout + out.stderr
    verdict = doc["verdict"]
    assert verdict["class"] == "fallback", verdict["headline"]
    assert "primary route was down" in verdict["headline"] and "40%" in verdict["headline"]
    assert "stayed up" in verdict["headline"]
    assert any(e["kind"] == "fallback" and "4 of 10 replies" in e["detail"] for e in verdict["evidence"])
    html = (project.root / "r.html").read_text()
    assert f"openai/model-b@{b_host}" in html and "route <strong>fallback</strong>" in html
    # never a key in anything written
    for text in (out.stdout, out.stderr, json.dumps(doc), html):
        assert UPSTREAM_KEY not in text and MASTER_KEY not in text


def test_a_primary_outage_covered_by_the_fallback_is_not_drift(project, gw):
    golden(project, 6)
    first, _ = run(project, suite(project, gw), "--accept-baseline")
    assert first.returncode == 0, first.stdout + first.stderr
    gw.a.default = "500"  # the primary provider is down; the gateway fails over
    out, doc = run(project, suite(project, gw))
    assert {r["route"] for r in replies(doc)} == {"fallback"}
    assert doc["verdict"]["class"] == "fallback", doc["verdict"]["headline"]
    assert "100%" in doc["verdict"]["headline"]
    assert out.returncode == 0, out.stdout + out.stderr  # every check passed: the service stayed up
    gw.a.default = "ok"  # the primary is back: the same deployment as before, nothing to report
    back, doc = run(project, suite(project, gw))
    # nothing about the model or its route to report; on a loaded machine the gateway's own
    # latency may move enough to be noted (noise), never more
    assert doc["verdict"]["class"] in ("ok", "noise"), doc["verdict"]["headline"]
    kinds = {e["kind"] for e in doc["verdict"]["evidence"]}
    assert not kinds & {"fingerprint", "route", "fallback", "answers", "pass_rate"}, doc["verdict"]["evidence"]
    assert back.returncode == 0, back.stdout + back.stderr


def test_the_stored_model_is_the_deployment_streamed_or_not(project, gw):
    golden(project, 3)
    streamed, doc_s = run(project, suite(project, gw, stream=True), "--accept-baseline")
    whole, doc_w = run(project, suite(project, gw, stream=False))
    assert streamed.returncode == 0 and whole.returncode == 0, whole.stdout + whole.stderr
    a_host = gw.a.base_url.split("/")[2]
    for doc in (doc_s, doc_w):
        assert {(r["model"], r["deployment"], r["route"]) for r in replies(doc)} == \
            {("openai/model-a", f"openai/model-a@{a_host}", "primary")}
    verdict = doc_w["verdict"]  # not a "new model" (a stream's latency differs: noise at most)
    assert verdict["class"] in ("ok", "noise") and not any(e["kind"] == "fingerprint" for e in verdict["evidence"])
    # the gateway's own cost (its price for the deployment; `prices:` not set): in the headers of
    # a whole answer; a stream's headers leave before its cost is known
    assert all(r["cost"] == pytest.approx(1e-6 * r["tokens_in"] + 2e-6 * r["tokens_out"]) for r in replies(doc_w))


# ------------------------------------------------------------ 3: a re-pointed alias


def test_an_alias_re_pointed_to_another_deployment_is_drift_naming_both(project, gw):
    golden(project, 4)
    v1 = suite(project, gw, model="agent", headers="headers: {x-litellm-tags: v1}")
    first, _ = run(project, v1, "--accept-baseline")
    assert first.returncode == 0, first.stdout + first.stderr
    v2 = suite(project, gw, model="agent", headers="headers: {x-litellm-tags: v2}")  # the operator re-points
    out, doc = run(project, v2)
    assert gw.c.requests == 4
    a_host, c_host = gw.a.base_url.split("/")[2], gw.c.base_url.split("/")[2]
    headline = doc["verdict"]["headline"]
    assert doc["verdict"]["class"] == "drift", headline
    assert f"openai/model-c@{c_host}" in headline and f"openai/model-a@{a_host}" in headline
    assert out.returncode == 1


# ------------------------------------------------------------ 4: limits as the gateway states them


def test_the_gateways_retry_after_is_waited_for(project, gw):
    golden(project, 1)
    gw.d.retry_after = 2
    gw.d.script = ["429"]
    out, doc = run(project, suite(project, gw, model="limited"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert gw.d.requests == 2 and gw.d.times[1] - gw.d.times[0] >= 1.9  # llm_provider-retry-after: 2


def test_a_wait_longer_than_the_backoff_cap_is_not_spent_on_early_retries(project, gw):
    golden(project, 1)
    gw.d.retry_after = 60
    gw.d.default = "429"
    t0 = time.monotonic()
    out, doc = run(project, suite(project, gw, model="limited"))
    assert gw.d.requests == 1 and time.monotonic() - t0 < 30
    assert out.returncode == 3 and "retry after 60s" in doc["results"][0]["error"]


def test_a_used_up_rate_limit_slows_the_next_request_down_before_the_429(project, gw):
    golden(project, 3)
    gw.d.extra_headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1.5s"}
    out, doc = run(project, suite(project, gw, model="limited"))
    assert out.returncode == 0, out.stdout + out.stderr
    gaps = [b - a for a, b in zip(gw.d.times, gw.d.times[1:])]
    assert len(gaps) == 2 and min(gaps) >= 1.4, gaps


# ------------------------------------------------------------ 5: the breaker behind a gateway


def test_the_breaker_opens_when_the_gateway_reports_every_upstream_down(project, gw):
    golden(project, 15)
    gw.e.default = "500"
    out, doc = run(project, suite(project, gw, model="doomed", limits=", breaker_threshold: 5"))
    assert out.returncode == 3, out.stdout + out.stderr
    assert gw.e.requests <= 5, gw.e.requests  # not 15 calls × 3 tries
    assert "target unreachable" in out.stderr and "InternalServerError" in out.stderr
    assert doc["run"]["status"] == "aborted"


# ------------------------------------------------------------ 6: our mistakes are exit 2


def test_an_unknown_model_alias_is_a_configuration_error(project, gw):
    golden(project, 5)
    out, _ = run(project, suite(project, gw, model="primray"))
    assert out.returncode == 2, out.stdout + out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "'primray'" in lines[0] and "check the model name or key" in lines[0]
    assert f"{gw.base_url}/chat/completions" in lines[0] and "Traceback" not in out.stderr
    assert gw.a.requests == 0 and gw.b.requests == 0


def test_a_wrong_key_is_a_configuration_error_and_never_printed(project, gw):
    golden(project, 5)
    out, _ = run(project, suite(project, gw), key="sk-wrong-key-7777")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "check the model name or key" in out.stderr and gw.base_url in out.stderr
    assert "sk-wrong-key-7777" not in out.stdout + out.stderr
    assert gw.a.requests == 0


def test_an_empty_key_is_a_configuration_error_before_anything_is_sent(project, gw):
    golden(project, 1)
    out, _ = run(project, suite(project, gw), key="")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "api_key" in out.stderr and "empty" in out.stderr and "Traceback" not in out.stderr
    assert gw.a.requests == 0



# ------------------------------------------------------------ the console: -q and --accept-baseline


def test_quiet_mode_says_why_a_run_was_an_outage(project, gw):
    golden(project, 4)
    gw.e.default = "500"  # every upstream behind the alias is down
    out, doc = run(project, suite(project, gw, model="doomed", limits=", breaker_threshold: 50"), "-q")
    assert out.returncode == 3 and doc["verdict"]["class"] == "infra", out.stdout + out.stderr
    (line,) = out.stdout.splitlines()
    assert line.startswith("complete: 0 passed, 0 failed, 4 error") and "verdict: infra — " in line, line
    assert doc["verdict"]["headline"] in line
    # the breaker opens: the one line still names the outage, the breaker's message follows on stderr
    aborted, doc = run(project, suite(project, gw, model="doomed", limits=", breaker_threshold: 2"), "-q")
    assert aborted.returncode == 3 and doc["run"]["status"] == "aborted"
    (line,) = aborted.stdout.splitlines()
    assert line.startswith("aborted: ") and f"verdict: infra — {doc['verdict']['headline']}" in line, line
    assert "target unreachable: 2 consecutive failures" in aborted.stderr
    for text in (out.stdout, aborted.stdout, aborted.stderr):
        assert UPSTREAM_KEY not in text and MASTER_KEY not in text


def test_the_run_that_accepts_the_baseline_does_not_say_there_is_none(project, gw):
    golden(project, 3)
    first, _ = run(project, suite(project, gw))
    accepting, doc = run(project, suite(project, gw), "--accept-baseline")
    assert accepting.returncode == 0, accepting.stdout + accepting.stderr
    assert "baseline: accepted run" in accepting.stdout
    assert "no accepted baseline yet" not in accepting.stdout + json.dumps(doc), accepting.stdout
    assert doc["verdict"]["reference"] == "previous run (this run becomes the accepted baseline)"
    _, after = run(project, suite(project, gw))
    assert after["verdict"]["reference"] == "accepted baseline"


# ------------------------------------------------------------ the daily-drift suite behind the proxy


def test_the_daily_drift_suite_with_a_flaky_primary_names_the_fallback_share(project, gw):
    for topic in ("reservation", "cancellation", "question"):
        project.write(f"golden/{topic}/g.yaml", f"topic: {topic}\ncases:\n" + "".join(
            f"  - id: {topic}-{i}\n    prompt: hello {topic} {i}\n    expect:\n      - contains: hello\n"
            for i in range(2)))
    project.write("golden/chaos/c.yaml", "topic: question\ncases:\n  - id: chaos-1\n    tags: [chaos]\n"
                  "    prompt: hello chaos\n    expect:\n      - contains: hello\n")
    project.write("prompts/restaurant.md", "You answer the phone for a restaurant.\n")
    daily = project.write("suites/daily-drift.yaml", """
        name: daily-drift
        golden: ["golden/**/*.yaml"]
        select: {topics: [reservation, cancellation, question], exclude_tags: [chaos]}
        target:
          kind: openai
          base_url: "${LLM_GATEWAY_URL}"
          model: "${LLM_MODEL:-primary}"
          api_key: "${LLM_GATEWAY_KEY}"
          system_prompt_file: prompts/restaurant.md
          temperature: 0
          stream: true
          limits: {concurrency: 4, rpm: 6000, timeout_s: 30, retries: 3, backoff_s: 0.01}
        repeat: 3
        analysis: {baseline: accepted, window: 14, alpha: 0.05}
    """)
    gw.a.script = ["500", "ok", "ok"] * 6  # every third request to the primary fails: 30 %
    out_json = project.root / "daily.json"
    out = project.harness("run", str(daily), "--store", project.store_url, "--no-progress", "--no-notify",
                          "--json", str(out_json), timeout=240,
                          env={"LLM_GATEWAY_URL": gw.base_url, "LLM_GATEWAY_KEY": MASTER_KEY})
    doc = json.loads(out_json.read_text())
    served = replies(doc)
    assert len(served) == 18 and gw.a.requests == 18, (len(served), gw.a.requests)  # 3 topics × 2 cases × 3
    assert sum(r["route"] == "fallback" for r in served) == 6 and gw.b.requests == 6
    verdict = doc["verdict"]
    assert verdict["class"] == "fallback", verdict["headline"]
    assert "primary route was down" in verdict["headline"] and "33%" in verdict["headline"], verdict["headline"]
    assert any(e["kind"] == "fallback" and "6 of 18 replies" in e["detail"] for e in verdict["evidence"])
    assert out.returncode == 0, out.stdout + out.stderr  # every check passed: the service stayed up
    assert "33%" in out.stdout and MASTER_KEY not in out.stdout + out.stderr
