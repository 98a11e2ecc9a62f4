"""The openai target end to end: runner → target → shared HTTP client → local mock server."""

from __future__ import annotations

import json
import socket
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ConfigError
from harness.httpclient import SSEDecoder, parse_retry_after, safe_endpoint
from harness.loading import load_golden_file
from harness.records import CaseResult
from harness.runner import Runner, RunStats, compile_case, plan_items
from harness.targets import create

sys.path.insert(0, str(Path(__file__).parent))
from mock_openai import MockOpenAI  # noqa: E402

KEY = "sk-test-Zq8SECRETkey0001"
FAST = {"backoff_s": 0.01, "backoff_max_s": 2.0, "timeout_s": 5.0}


def golden(tmp_path: Path, body: str) -> list:
    path = tmp_path / "cases.yaml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return load_golden_file(path, compile_checks=False).cases


ONE_PROMPT = """\
    topic: question
    tags: [faq]
    cases:
      - id: faq-hours
        prompt: 営業時間を教えてください
"""

THREE_TURNS = """\
    topic: reservation
    cases:
      - id: rsv-001
        turns:
          - caller: 明日の19時に4名で予約したいです
          - silence: 2
          - dtmf: "123"
"""


def target_for(mock: MockOpenAI, **over: Any):
    spec: dict[str, Any] = {"kind": "openai", "base_url": mock.base_url, "model": "primary", "api_key": KEY,
                            "limits": dict(FAST)}
    limits = over.pop("limits", {})
    spec.update(over)
    spec["limits"].update(limits)
    return create(spec)


async def run(target, cases: list, repeat: int = 1) -> tuple[list[CaseResult], RunStats]:
    results: list[CaseResult] = []
    items = plan_items(compile_case(c, repeat) for c in cases)
    try:
        stats = await Runner(target, on_result=results.append, seed=1).run(items)
    finally:
        await target.aclose()
    return results, stats


async def test_streaming_records_first_token_model_fingerprint_usage_and_cost(tmp_path):
    prices = {"mock-model-2024-01-01": {"input_per_mtok": 2.5, "output_per_mtok": 10.0}}
    with MockOpenAI(chunk_delay_ms=30, fingerprint="fp_abc") as mock:
        target = target_for(mock, prices=prices, temperature=0, seed=7)
        [result], stats = await run(target, golden(tmp_path, ONE_PROMPT))
        body = mock.last_body
    assert result.status == "passed", result.error
    reply = result.transcript.turns[0].reply
    assert reply.text == "You said: 営業時間を教えてください"
    assert reply.first_token_ms is not None and reply.total_ms is not None
    assert reply.first_token_ms < reply.total_ms  # the rest of the stream came 30 ms later
    assert reply.model == "mock-model-2024-01-01" and reply.fingerprint == "fp_abc"
    assert reply.route == "primary" and reply.attempts == 1
    assert reply.tokens_in and reply.tokens_out
    assert reply.cost == pytest.approx((reply.tokens_in * 2.5 + reply.tokens_out * 10.0) / 1e6)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["model"] == "primary" and body["temperature"] == 0 and body["seed"] == 7
    assert stats.requests.requests == 1


async def test_non_streaming_has_no_first_token_but_usage_and_model(tmp_path):
    with MockOpenAI(model="gpt-x-0601") as mock:
        target = target_for(mock, stream=False, max_tokens=64)
        [result], _ = await run(target, golden(tmp_path, ONE_PROMPT))
        body = mock.last_body
    reply = result.transcript.turns[0].reply
    assert result.status == "passed"
    assert reply.first_token_ms is None and reply.total_ms is not None and reply.total_ms > 0
    assert reply.model == "gpt-x-0601" and reply.fingerprint == "fp_mock_1"
    assert reply.tokens_in and reply.tokens_out and reply.cost is None  # no price given
    assert body["stream"] is False and "stream_options" not in body and body["max_tokens"] == 64


async def test_history_is_carried_across_turns_with_system_prompt_file(tmp_path):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "restaurant.md").write_text("あなたはレストランの電話受付です。", encoding="utf-8")
    with MockOpenAI() as mock:
        target = target_for(mock, system_prompt_file="prompts/restaurant.md")
        target.root = str(tmp_path)
        [result], _ = await run(target, golden(tmp_path, THREE_TURNS))
        bodies = list(mock.bodies)
    assert result.status == "passed", result.error
    assert [t.kind for t in result.transcript.turns] == ["say", "silence", "dtmf"]
    assert [m["role"] for m in bodies[-1]["messages"]] == ["system", "user", "assistant", "user", "assistant", "user"]
    msgs = bodies[-1]["messages"]
    assert msgs[0]["content"] == "あなたはレストランの電話受付です。"
    assert msgs[1]["content"] == "明日の19時に4名で予約したいです"
    assert msgs[2]["content"] == "You said: 明日の19時に4名で予約したいです"
    assert msgs[3]["content"] == "(silence)" and msgs[5]["content"] == "(keypad: 123)"
    assert len(bodies[0]["messages"]) == 2  # the first request carried only system + user


async def test_missing_system_prompt_file_is_a_config_error_when_the_root_is_set(tmp_path):
    with MockOpenAI() as mock:
        target = target_for(mock, system_prompt_file="prompts/nope.md")
        with pytest.raises(ConfigError, match="system_prompt_file: file not found: prompts/nope.md"):
            target.root = str(tmp_path)


async def test_json_envelope_becomes_text_state_and_outcome(tmp_path):
    def agent(messages: list[dict[str, Any]]) -> str:
        if len(messages) < 3:
            return '```json\n{"reply": "4名様、19時ですね。", "intent": "reservation", "slots": {"party_size": 4}}\n```'
        return json.dumps({"reply": "担当者におつなぎします。", "slots": {"time": "19:00"}, "transferred": True,
                           "transfer_reason": "caller asked"}, ensure_ascii=False)

    body = """\
        topic: reservation
        cases:
          - id: rsv-transfer
            turns:
              - caller: 4名で19時
              - caller: 人と話したい
              - caller: もしもし？
    """
    with MockOpenAI(reply=agent) as mock:
        [result], _ = await run(target_for(mock), golden(tmp_path, body))
        requests = mock.requests
    turns = result.transcript.turns
    assert [t.reply.text for t in turns] == ["4名様、19時ですね。", "担当者におつなぎします。"]
    assert turns[0].reply.state == {"intent": "reservation", "slots": {"party_size": 4}}
    assert turns[1].reply.ended is True and requests == 2  # the third turn never happened
    out = result.transcript.outcome
    assert out.intent == "reservation" and out.slots == {"party_size": 4, "time": "19:00"}
    assert out.transferred is True and out.transfer_reason == "caller asked" and out.ended_by == "agent"


@pytest.mark.parametrize(("stream", "said"), [
    # the mock streams the answer in three pieces, here splitting the emoji's UTF-16 pair
    # between two events: each half arrives alone and is not a character on its own
    (True, "a\ufffd\ufffdb x\ufffd"),
    (False, "a😀b x\ufffd"),
])
async def test_lone_utf16_surrogates_from_a_gateway_never_make_a_result_unstorable(tmp_path, stream, said):
    from harness.records import RunInfo
    from harness.store import Store

    with MockOpenAI(reply=lambda messages: "a\ud83d\ude00b x\ud800") as mock:
        [result], _ = await run(target_for(mock, stream=stream), golden(tmp_path, ONE_PROMPT))
    assert result.status == "passed", result.error
    assert result.transcript.turns[0].reply.text == said
    with Store.open(f"sqlite:///{tmp_path}/h.db") as store:
        store.start_run(RunInfo(run_id="r1", suite="s"))
        store.add_results("r1", [result])
        assert store.results("r1")[0].transcript.turns[0].reply.text == said


async def test_429_is_retried_after_retry_after(tmp_path):
    with MockOpenAI(retry_after=0.3) as mock:
        mock.script = ["429", "ok"]
        t0 = time.monotonic()
        [result], stats = await run(target_for(mock), golden(tmp_path, ONE_PROMPT))
        elapsed = time.monotonic() - t0
        assert mock.requests == 2
    assert result.status == "passed"
    assert result.transcript.turns[0].reply.attempts == 2
    assert stats.requests.retries == 1 and stats.requests.by_kind == {"rate_limited": 1}
    assert elapsed >= 0.3  # waited at least what Retry-After asked (backoff_s alone is 0.01)


@pytest.mark.parametrize("fault", ["500", "503", "malformed_json", "truncated_stream", "close"])
async def test_transient_faults_are_retried_then_succeed(tmp_path, fault):
    with MockOpenAI(retry_after=0) as mock:
        mock.script = [fault, "ok"]
        [result], stats = await run(target_for(mock), golden(tmp_path, ONE_PROMPT))
        assert mock.requests == 2 and list(mock.behaviours) == [fault, "ok"]
    assert result.status == "passed", result.error
    assert result.transcript.turns[0].reply.attempts == 2 and stats.requests.retries == 1


@pytest.mark.parametrize(
    ("fault", "stream", "kind", "words"),
    [
        ("500", True, "server_error", "HTTP 500 Internal Server Error"),
        ("malformed_json", False, "protocol", "not valid JSON"),
        ("malformed_json", True, "protocol", "stream event is not valid JSON"),
        ("truncated_stream", True, "protocol", "broke off"),
    ],
)
async def test_persistent_faults_end_as_error_results(tmp_path, fault, stream, kind, words):
    with MockOpenAI(default=fault) as mock:
        target = target_for(mock, stream=stream, limits={"retries": 2})
        [result], stats = await run(target, golden(tmp_path, ONE_PROMPT))
        assert mock.requests == 3  # the first try and two retries
    assert result.status == "error" and result.error_kind == kind
    assert words in result.error and "/v1/chat/completions" in result.error
    assert stats.aborted is None


async def test_a_hang_becomes_a_timeout_error(tmp_path):
    with MockOpenAI(default="hang", hang_s=10) as mock:
        target = target_for(mock, limits={"timeout_s": 0.3, "retries": 0})
        t0 = time.monotonic()
        [result], _ = await run(target, golden(tmp_path, ONE_PROMPT))
        assert time.monotonic() - t0 < 5
    assert result.status == "error" and result.error_kind == "timeout"


async def test_rejected_key_is_not_retried_and_never_printed(tmp_path):
    with MockOpenAI(default="401") as mock:
        target = target_for(mock)
        [result], _ = await run(target, golden(tmp_path, ONE_PROMPT))
        assert mock.requests == 1
    assert result.error_kind == "protocol" and "rejected" in result.error
    assert KEY not in json.dumps(result.to_dict(), ensure_ascii=False)


async def test_wrong_base_url_gets_a_hint(tmp_path):
    with MockOpenAI() as mock:
        target = target_for(mock, base_url=mock.base_url.removesuffix("/v1"))
        [result], _ = await run(target, golden(tmp_path, ONE_PROMPT))
        assert mock.requests == 0  # the mock only serves /v1/...
    assert result.error_kind == "protocol" and "HTTP 404" in result.error and "/v1" in result.error


async def test_key_reaches_the_server_but_not_describe_or_results(tmp_path):
    with MockOpenAI() as mock:
        target = target_for(mock, headers={"X-Team": "phone-ai"})
        described = target.describe()
        [result], _ = await run(target, golden(tmp_path, ONE_PROMPT))
        headers = mock.last_headers
    assert headers["authorization"] == f"Bearer {KEY}" and headers["x-team"] == "phone-ai"
    assert described == {"kind": "openai", "base_url": mock.base_url, "model": "primary", "stream": True}
    assert KEY not in json.dumps(described) and KEY not in json.dumps(result.to_dict(), ensure_ascii=False)
    assert KEY not in repr(target.config)


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_connection_refused_opens_the_breaker_and_the_rest_is_not_run(tmp_path):
    url = f"http://127.0.0.1:{_dead_port()}/v1"
    body = "topic: question\ncases:\n" + "".join(f"  - id: q{i}\n    prompt: hello {i}\n" for i in range(10))
    target = create({"kind": "openai", "base_url": url, "model": "m",
                     "limits": {"concurrency": 1, "retries": 0, "breaker_threshold": 5}})
    results, stats = await run(target, golden(tmp_path, body))
    statuses = [r.status for r in results]
    assert statuses == ["error"] * 5 + ["not_run"] * 5
    assert results[0].error == f"connection: connection refused ({url}/chat/completions)"
    assert stats.aborted is not None and "5 consecutive failures" in stats.aborted
    assert "connection refused" in stats.aborted
    assert all(r.error_kind == "unreachable" for r in results[5:])


# --- the shared client's pieces -------------------------------------------------------------


def test_sse_decoder_handles_split_reads_comments_and_multi_line_data():
    stream = b'data: {"a":1}\n\n: keep-alive\r\n\r\nevent: x\ndata: one\ndata: two\n\ndata: [DONE]\n\ndata: tail'
    for size in (1, 7, len(stream)):
        decoder = SSEDecoder()
        out = []
        for i in range(0, len(stream), size):
            out += decoder.feed(stream[i:i + size])
        out += decoder.flush()
        assert out == [b'{"a":1}', b"one\ntwo", b"[DONE]", b"tail"], size


def test_retry_after_accepts_seconds_and_http_dates():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412500.0) == pytest.approx(10.0)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412500.0) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_safe_endpoint_drops_credentials_and_query():
    assert safe_endpoint("https://user:pw@hooks.example.com:8443/a/b?token=xyz#f") == "https://hooks.example.com:8443/a/b"


def test_mock_runs_as_a_subprocess_and_prints_its_url():
    import subprocess

    import httpx

    proc = subprocess.Popen([sys.executable, str(Path(__file__).parent / "mock_openai.py"), "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        r = httpx.post(f"{url}/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        assert r.json()["choices"][0]["message"]["content"] == "You said: hi"
    finally:
        proc.terminate()
        proc.wait(10)
