"""The http target against a small local webhook: templates, JSONPath, errors, the sandbox."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from harness.errors import ConfigError
from harness.loading import load_golden_file
from harness.records import CaseResult
from harness.runner import Runner, RunStats, compile_case, plan_items
from harness.targets import create

TOKEN = "whk-SECRET-token-42"

CASES = """\
    topic: reservation
    tags: [restaurant]
    language: ja
    cases:
      - id: rsv-web-001
        turns:
          - caller: 4名で19時に予約したい
          - dtmf: "1"
          - caller: 人と話したい
          - caller: もしもし
"""


class Webhook:
    """The phone service's test webhook: answers per session, reports state as it goes."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        self.headers: list[dict[str, str]] = []
        self.ended: list[Any] = []
        self.version: dict[str, Any] = {}  # merged into every turn's answer (a service naming its build)
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def turn(self, request: web.Request) -> web.Response:
        raw = await request.text()
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        body = json.loads(raw)
        self.bodies.append(body)
        said = body.get("utterance", body.get("text", ""))
        state: dict[str, Any] = {"intent": "reservation", "slots": {"party_size": 4}}
        if "人と" in said:
            state.update(transferred=True, reason="caller asked for a human")
        if body.get("kind") == "greeting":
            return web.json_response({"response": {"text": "お電話ありがとうございます。"}, "state": {}})
        return web.json_response({"response": {"text": f"承りました: {said}"}, "state": state, **self.version},
                                 headers={"X-Service-Build": "hdr-9"})

    async def end(self, request: web.Request) -> web.Response:
        self.ended.append(await request.json())
        return web.json_response({"state": {"intent": "reservation", "slots": {"time": "19:00"}},
                                  "side_effects": {"booking_id": "B-1"}})

    async def boom(self, request: web.Request) -> web.Response:
        return web.Response(status=500, text="Traceback: something broke")

    async def __aenter__(self) -> "Webhook":
        app = web.Application()
        app.router.add_post("/turn", self.turn)
        app.router.add_post("/end", self.end)
        app.router.add_post("/boom", self.boom)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


BODY = '{"session": "{{ call_id }}", "utterance": {{ text | tojson }}, "kind": "{{ kind }}", ' \
       '"turn": {{ turn }}, "case": "{{ case.id }}", "lang": "{{ case.language }}", "seen": {{ history | length }}}'


def spec(base: str, **over: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "http", "url": f"{base}/turn", "headers": {"Authorization": f"Bearer {TOKEN}"}, "body": BODY,
        "reply_path": "$.response.text", "intent_path": "$.state.intent", "slots_path": "$.state.slots",
        "transferred_path": "$.state.transferred", "transfer_reason_path": "$.state.reason",
        "limits": {"retries": 0, "timeout_s": 5},
    }
    out.update(over)
    return out


async def run(target, tmp_path: Path, body: str = CASES) -> tuple[list[CaseResult], RunStats]:
    path = tmp_path / "cases.yaml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    cases = load_golden_file(path, compile_checks=False).cases
    results: list[CaseResult] = []
    try:
        stats = await Runner(target, on_result=results.append).run(plan_items(compile_case(c) for c in cases))
    finally:
        await target.aclose()
    return results, stats


async def test_template_renders_each_turn_and_jsonpath_picks_reply_and_state(tmp_path):
    async with Webhook() as hook:
        target = create(spec(hook.url))
        [result], _ = await run(target, tmp_path)
    assert result.status == "passed", result.error
    turns = result.transcript.turns
    # the third turn asked for a human: the agent transferred, so the fourth never happened
    assert [t.reply.text for t in turns] == ["承りました: 4名で19時に予約したい", "承りました: 1", "承りました: 人と話したい"]
    assert turns[-1].reply.ended is True and len(hook.bodies) == 3
    first, second = hook.bodies[0], hook.bodies[1]
    assert first["utterance"] == "4名で19時に予約したい" and first["turn"] == 1 and first["seen"] == 0
    assert first["case"] == "rsv-web-001" and first["lang"] == "ja" and first["kind"] == "say"
    assert second["kind"] == "dtmf" and second["turn"] == 2 and second["seen"] == 1
    assert len({b["session"] for b in hook.bodies}) == 1 and first["session"].startswith("rsv-web-001.0.")
    assert hook.headers[0]["authorization"] == f"Bearer {TOKEN}"
    out = result.transcript.outcome
    assert out.intent == "reservation" and out.slots == {"party_size": 4}
    assert out.transferred is True and out.transfer_reason == "caller asked for a human" and out.ended_by == "agent"
    assert TOKEN not in json.dumps(result.to_dict(), ensure_ascii=False) and TOKEN not in json.dumps(target.describe())


async def test_default_body_greeting_and_end_url(tmp_path):
    body = """\
        topic: question
        cases:
          - id: q-1
            prompt: 営業時間は？
    """
    async with Webhook() as hook:
        target = create({"kind": "http", "url": f"{hook.url}/turn?key={TOKEN}", "greet": True,
                         "reply_path": "$.response.text", "intent_path": "$.state.intent",
                         "slots_path": "$.state.slots", "end_url": f"{hook.url}/end"})
        assert target.describe() == {"kind": "http", "url": f"{hook.url}/turn", "method": "POST"}
        [result], _ = await run(target, tmp_path, body)
    assert result.status == "passed", result.error
    greeting, answer = result.transcript.turns
    assert greeting.kind == "greeting" and greeting.reply.text == "お電話ありがとうございます。"
    assert answer.reply.text == "承りました: 営業時間は？"
    sent = hook.bodies[1]  # without a template, every variable is sent as JSON
    assert sent["text"] == "営業時間は？" and sent["turn"] == 1 and sent["case"]["topic"] == "question"
    assert sent["history"] == [{"caller": "", "agent": "お電話ありがとうございます。"}]
    assert hook.ended == [{"call_id": sent["call_id"], "case_id": "q-1"}]
    out = result.transcript.outcome
    assert out.slots == {"party_size": 4, "time": "19:00"} and out.side_effects == {"booking_id": "B-1"}


async def test_missing_reply_path_is_a_protocol_error_naming_the_path(tmp_path):
    async with Webhook() as hook:
        target = create(spec(hook.url, reply_path="$.answer.speech"))
        [result], _ = await run(target, tmp_path)
        assert len(hook.bodies) == 1  # not retried: the webhook answers the same way every time
    assert result.status == "error" and result.error_kind == "protocol"
    assert "$.answer.speech" in result.error and f"{hook.url}/turn" in result.error


@pytest.mark.parametrize(("route", "kind", "words"), [("/boom", "server_error", "HTTP 500"),
                                                      ("/missing", "protocol", "HTTP 404")])
async def test_webhook_statuses_become_infra_errors(tmp_path, route, kind, words):
    async with Webhook() as hook:
        target = create(spec(hook.url, url=f"{hook.url}{route}"))
        [result], _ = await run(target, tmp_path)
    assert result.status == "error" and result.error_kind == kind and words in result.error
    assert TOKEN not in result.error


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("{{ ''.__class__.__mro__ }}", "sandbox forbids"),
        ("{{ text.__class__.__mro__[1].__subclasses__() }}", "sandbox forbids"),
        ("{% set x = history.append(1) %}{{ x }}", "sandbox forbids"),
        ('{"t": {{ txt | tojson }}}', "'txt' is undefined"),
        ('{"t": {{ text | tojson }', "template line 1"),
    ],
)
def test_bad_or_unsafe_templates_are_config_errors_at_creation(template, words):
    with pytest.raises(ConfigError, match="target.body") as err:
        create(spec("http://127.0.0.1:9", body=template))
    assert words in str(err.value)


def test_an_invalid_jsonpath_is_a_config_error():
    with pytest.raises(ConfigError, match=r"target.intent_path: not a valid JSONPath"):
        create(spec("http://127.0.0.1:9", intent_path="$.[[["))
