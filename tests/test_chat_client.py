"""The one OpenAI-compatible chat client (harness.chat) and its three users.

The openai target, the judge and the LLM caller all talk through `ChatClient`, so they keep
a key out of what they hand back the same way, whatever the status: a 200 whose answer
echoes the key, a 401 and a 500 whose error messages quote it. Each user is driven through
its own public surface (the runner, a judge check, the caller brain) against the local
`MockOpenAI` server.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.callers import LLMBrain
from harness.chat import ChatClient
from harness.checks import Subject, compile_check
from harness.errors import ConfigError, InfraError
from harness.httpclient import Masker, RetryPolicy, retry_after_of
from harness.judge import JudgeService
from harness.records import AgentReply, Transcript, Turn
from harness.runner import Runner, compile_case, plan_items
from harness.spec import CallerModelSpec, CaseSpec, CheckSpec, JudgeSpec
from harness.targets import create

sys.path.insert(0, str(Path(__file__).parent))
from mock_openai import MockOpenAI  # noqa: E402

KEY = "sk-live-Qx81SECRET-shared-client"
HEADER_SECRET = "hdr-secret-9f2c7d1e"
ROOT = str(Path(__file__).resolve().parents[1])
STEPS_MARKER = '"steps" key'  # how deepeval asks the judge for evaluation steps


def echoing(messages: list[dict[str, Any]]) -> str:
    """A model that repeats the caller's key back in its answer (a 200 that leaks it)."""
    prompt = str(messages[-1].get("content", ""))
    if STEPS_MARKER in prompt:
        return json.dumps({"steps": ["Read the answer.", "Compare it with the criteria."]})
    if "Test Case:" in prompt:  # the judge's verdict
        return json.dumps({"score": 9, "reason": f"fine, and your key is {KEY} and {HEADER_SECRET}"})
    return f"Your key is {KEY} and your token {HEADER_SECRET}."


# --- each user, through its own surface: the text it hands back, or its error line --------


async def via_target(mock: MockOpenAI, stream: bool = True) -> str:
    target = create({"kind": "openai", "base_url": mock.base_url, "model": "m", "api_key": KEY, "stream": stream,
                     "headers": {"X-Api-Key": HEADER_SECRET},
                     "limits": {"retries": 0, "backoff_s": 0.01, "timeout_s": 5.0}})
    results: list = []
    case = CaseSpec(id="leak", topic="question", turns=[{"caller": "hello"}])
    try:
        await Runner(target, on_result=results.append, seed=1).run(plan_items([compile_case(case)]))
    finally:
        await target.aclose()
    [result] = results
    if result.status == "error":
        return result.error
    return result.transcript.turns[0].reply.text


async def via_judge(mock: MockOpenAI, tmp_path: Path) -> str:
    spec = JudgeSpec(base_url=mock.base_url, model="judge-m", api_key=KEY, headers={"X-Api-Key": HEADER_SECRET})
    svc = JudgeService.from_spec(spec, root=ROOT, cache=f"sqlite:///{tmp_path / 'cache.db'}", retries=0,
                                 backoff_s=0.01)
    check = compile_check(CheckSpec.model_validate({"judge": "greets the caller"}), scope="turn")
    turn = Turn(index=1, caller="hi", reply=AgentReply(text="Hello, Sakura Restaurant."))
    try:
        result = await check.run(Subject(text=turn.reply.text, transcript=Transcript(turns=[turn]), turn=turn,
                                         extras={"judge": svc}))
    finally:
        await svc.aclose()
    return result.reason


async def via_caller(mock: MockOpenAI) -> str:
    spec = CallerModelSpec(brain="llm", base_url=mock.base_url, model="caller-m", api_key=KEY,
                           headers={"X-Api-Key": HEADER_SECRET}, retries=0)
    brain = LLMBrain(spec, "You are a caller.")
    try:
        return (await brain.next(AgentReply(text="How can I help?"))).text
    except InfraError as e:
        return e.line()
    finally:
        await brain.aclose()


USERS = ["target", "judge", "caller"]


async def through(user: str, mock: MockOpenAI, tmp_path: Path) -> str:
    if user == "target":
        return await via_target(mock)
    if user == "judge":
        return await via_judge(mock, tmp_path)
    return await via_caller(mock)


@pytest.mark.parametrize("user", USERS)
async def test_a_200_that_echoes_the_key_is_masked_for_every_user(user, tmp_path):
    with MockOpenAI(reply=echoing) as mock:
        text = await through(user, mock, tmp_path)
        assert mock.last_headers["authorization"] == f"Bearer {KEY}"  # the key did go out
        assert mock.last_headers["x-api-key"] == HEADER_SECRET
    assert "your key is ***" in text.lower()
    assert KEY not in text and HEADER_SECRET not in text


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("status", ["401", "500"])
async def test_an_error_that_quotes_the_key_is_masked_for_every_user(user, status, tmp_path):
    with MockOpenAI(default=status, echo_key=True) as mock:
        line = await through(user, mock, tmp_path)
    assert f"HTTP {status}" in line and mock.base_url + "/chat/completions" in line  # the endpoint is named
    assert KEY not in line and HEADER_SECRET not in line
    if status == "500":  # its body is quoted, the key blanked out of it
        assert "processing your request (key: ***)" in line


# --- what the client hands its caller ------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False])
async def test_the_result_carries_timing_usage_model_fingerprint_and_the_response_headers(stream):
    gateway = {"x-litellm-model-id": "deploy-7", "x-litellm-attempted-fallbacks": "1"}
    with MockOpenAI(headers=gateway, fingerprint="fp_gw", reply=lambda m: "one two three") as mock:
        client = ChatClient(mock.base_url, api_key=KEY, timeout_s=5, max_connections=2)
        body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
        if stream:
            body["stream_options"] = {"include_usage": True}
        try:
            result = await client.complete(body)
        finally:
            await client.aclose()
    assert result.text == "one two three"
    assert result.headers["X-LiteLLM-Model-Id"] == "deploy-7"  # names compared without case
    assert result.headers["x-litellm-attempted-fallbacks"] == "1"
    assert result.model == "mock-model-2024-01-01" and result.fingerprint == "fp_gw"
    assert result.tokens_out == 3 and result.tokens_in and result.finish_reason == "stop"
    assert result.total_ms > 0
    assert (result.first_token_ms is not None) == stream
    assert (result.data is None) == stream  # the whole decoded answer when not streamed


@pytest.mark.parametrize("header", ["Retry-After", "llm_provider-retry-after"])
async def test_retry_after_is_honoured_from_the_server_or_a_litellm_gateway(header):
    with MockOpenAI(retry_after=0.4, retry_after_header=header) as mock:
        mock.script = ["429", "ok"]
        client = ChatClient(mock.base_url, timeout_s=5, max_connections=2,
                            retry=RetryPolicy(retries=1, backoff_s=0.001, backoff_max_s=5.0))
        t0 = time.perf_counter()
        try:
            result = await client.complete({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        finally:
            await client.aclose()
        waited = time.perf_counter() - t0
        assert mock.requests == 2 and result.text == "You said: hi"
    assert waited >= 0.4


async def test_without_a_policy_a_429_is_raised_with_its_wait_for_the_runner():
    with MockOpenAI(retry_after=3, retry_after_header="llm_provider-retry-after", default="429") as mock:
        client = ChatClient(mock.base_url, timeout_s=5, max_connections=2)
        with pytest.raises(InfraError) as e:
            await client.complete({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        await client.aclose()
        assert mock.requests == 1
    assert e.value.kind == "rate_limited" and e.value.retry_after == 3 and e.value.retryable


async def test_requests_in_flight_are_bounded_and_each_is_reported():
    sent: list[int] = []
    with MockOpenAI(latency_ms=60) as mock:
        client = ChatClient(mock.base_url, timeout_s=5, max_connections=8, max_in_flight=2,
                            on_request=lambda: sent.append(1))
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        t0 = time.perf_counter()
        try:
            await asyncio.gather(*(client.complete(body) for _ in range(4)))
        finally:
            await client.aclose()
        wall = time.perf_counter() - t0
    assert len(sent) == 4 and wall >= 0.12  # two rounds of two


async def test_the_blocking_path_works_inside_and_outside_a_running_loop():
    with MockOpenAI(reply=echoing) as mock:
        client = ChatClient(mock.base_url, api_key=KEY, timeout_s=5, max_connections=2)
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        inside = client.complete_blocking(body)  # this test's loop is running
        outside = await asyncio.to_thread(client.complete_blocking, body)
        await client.aclose()
    assert inside.text == outside.text == f"Your key is *** and your token {HEADER_SECRET}."


def test_a_base_url_that_is_not_http_is_a_config_error_naming_it():
    with pytest.raises(ConfigError) as e:
        ChatClient("ftp://gateway.example/v1", timeout_s=5, max_connections=1, who="the judge's reply")
    assert "ftp://gateway.example/v1" in e.value.line() and "http://" in e.value.line()


# --- the pieces it is made of ----------------------------------------------------------------


def test_the_masker_takes_the_key_credential_headers_and_the_url_password():
    mask = Masker.of("sk-abcdef123456", {"Authorization": "Bearer tok-987654321", "X-Api-Key": "xk-55556666",
                                         "Accept": "application/json", "X-Session-Token": "EMPTY"},
                     "https://user:pw-secret-1@gw.example/v1")
    text = mask("sk-abcdef123456 tok-987654321 xk-55556666 pw-secret-1 application/json EMPTY")
    assert text == "*** *** *** *** application/json EMPTY"  # short placeholders are not secrets
    assert not Masker.of(None, {"Accept": "text/plain"})


def test_retry_after_headers_in_order_of_precision():
    assert retry_after_of({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_of({"retry-after": "2"}) == 2
    assert retry_after_of({"llm_provider-retry-after": "7"}) == 7
    assert retry_after_of({"retry-after": "soon"}) is None


def test_the_retry_policy_backs_off_and_lets_a_longer_retry_after_win_up_to_its_cap():
    import random

    policy = RetryPolicy(retries=2, backoff_s=0.5, backoff_max_s=4.0, rng=random.Random(1))
    transient = InfraError("server_error", "HTTP 503")
    assert 0.25 <= policy.delay(0, transient) <= 0.5 and 1.0 <= policy.delay(2, transient) <= 2.0
    assert policy.delay(0, InfraError("rate_limited", "429", retry_after=3)) == 3
    assert policy.delay(0, InfraError("rate_limited", "429", retry_after=60)) == 4.0
    assert policy.retries_after(1, transient) and not policy.retries_after(2, transient)
    assert not policy.retries_after(0, InfraError("protocol", "HTTP 401", retryable=False))
