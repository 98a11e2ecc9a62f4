"""The embedded reference agent (`kind: sim`), driven through its public Target surface.

`Ctx` is the documented plugin surface a runner lends a conversation (`CallContext`):
here it just awaits the request, or retries it, so no harness internals are patched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.callers import make_brain
from harness.checks.structure import same_value
from harness.errors import ConfigError, InfraError
from harness.records import AgentReply, Outcome
from harness.spec import CaseSpec
from harness.targets.base import CallContext, create, registry
from harness.targets.sim import SimConfig, SimTarget, parse_fault

GOLDEN = Path(__file__).resolve().parent.parent / "golden"


class Ctx(CallContext):
    """Awaits each request once; with `retries`, retries InfraErrors like a runner would."""

    def __init__(self, case: CaseSpec, repeat_index: int = 0, retries: int = 0):
        self.case = case
        self.repeat_index = repeat_index
        self.retries = retries
        self.calls = 0
        self.infra_errors: list[InfraError] = []

    async def request(self, fn, *, what: str = "request"):
        for attempt in range(self.retries + 1):
            self.calls += 1
            try:
                return await fn()
            except InfraError as e:
                self.infra_errors.append(e)
                if attempt == self.retries:
                    raise


def make_case(case_id: str = "t-1", language: str | None = None, **fields: Any) -> CaseSpec:
    fields.setdefault("prompt", "x")
    case = CaseSpec(id=case_id, **fields)
    case._language = language  # what the loader fills in from the file's `language:`
    return case


class Call:
    """A call in progress: the caller's side of the phone line."""

    def __init__(self, conv, ctx: Ctx):
        self.conv, self.ctx = conv, ctx
        self.greeting: AgentReply | None = None
        self.replies: list[AgentReply] = []

    async def say(self, text: str) -> AgentReply:
        r = await self.conv.reply(text)
        self.replies.append(r)
        return r

    async def silence(self) -> AgentReply:
        r = await self.conv.reply("", kind="silence")
        self.replies.append(r)
        return r

    async def dtmf(self, digits: str) -> AgentReply:
        r = await self.conv.reply(digits, kind="dtmf")
        self.replies.append(r)
        return r

    async def close(self) -> Outcome:
        return await self.conv.close()


async def open_call(language: str | None = "ja", case_id: str = "t-1", repeat_index: int = 0, retries: int = 0,
                    **config: Any) -> Call:
    target = create({"kind": "sim", **config})
    case = make_case(case_id, language)
    ctx = Ctx(case, repeat_index, retries)
    conv = await target.open(case, ctx)
    call = Call(conv, ctx)
    greeting = await conv.greet()
    assert greeting is not None
    call.greeting = greeting
    return call


# --- registration and config ------------------------------------------------------------


def test_registered_and_configurable():
    assert registry()["sim"] is SimTarget
    t = create({"kind": "sim", "faults": ["hallucination:0.2", {"latency": 300}, "model_update"]})
    assert isinstance(t.config, SimConfig)
    assert t.config.faults == ["hallucination:0.2", "latency:300", "model_update"]
    assert t.describe()["faults"] == t.config.faults


@pytest.mark.parametrize("bad", [{"faults": ["halucination"]}, {"latency_ms": -1}, {"colour": "red"},
                                 {"faults": ["hallucination:2"]}, {"fully_booked": ["someday 19:00"]}])
def test_bad_config_is_a_config_error(bad):
    with pytest.raises(ConfigError):
        create({"kind": "sim", **bad})


def test_parse_fault():
    assert parse_fault("hallucination:0.2") == ("hallucination", 0.2)
    assert parse_fault("primary_outage") == ("primary_outage", None)
    assert parse_fault("latency:250") == ("latency", 250.0)
    with pytest.raises(ValueError, match="did you mean 'hallucination'"):
        parse_fault("halucination:0.2")
    with pytest.raises(ValueError, match="rate between 0 and 1"):
        parse_fault("rate_limit:5")
    with pytest.raises(ValueError, match="takes no value"):
        parse_fault("model_update:3")


# --- call flows --------------------------------------------------------------------------


async def test_greeting_speaks_first_in_the_case_language():
    ja = await open_call("ja")
    en = await open_call("en")
    unknown = await open_call(None)
    assert "レストラン桜" in ja.greeting.text and "Sakura" not in ja.greeting.text
    assert en.greeting.text.startswith("Thank you for calling Sakura Restaurant")
    assert "レストラン桜" in unknown.greeting.text and "Sakura Restaurant" in unknown.greeting.text


async def test_reservation_with_correction_ja():
    call = await open_call("ja")
    r = await call.say("明日の19時に4名で予約したいです")
    assert r.state["intent"] == "reservation"
    assert r.state["slots"] == {"date": "2026-11-26", "time": "19:00", "party_size": 4}
    assert "19時" in r.text and "4名" in r.text and "お名前" in r.text
    r = await call.say("山田です")
    assert "山田様" in r.text and "よろしいでしょうか" in r.text
    r = await call.say("やっぱり5名で")
    assert "5名" in r.text and r.state["slots"]["party_size"] == 5
    r = await call.say("はい")
    assert "予約番号はB" in r.text
    out = await call.close()
    assert out.intent == "reservation" and not out.transferred
    assert out.slots == {"date": "2026-11-26", "time": "19:00", "party_size": 5, "name": "山田"}
    assert out.side_effects["booking"]["party_size"] == 5
    assert out.side_effects["booking"]["id"] in r.text


async def test_a_latin_letter_name_in_a_japanese_call():
    call = await open_call("ja")
    await call.say("明日の19時に2名で予約したいです")
    r = await call.say("Smithです")
    assert "Smith様" in r.text and r.state["slots"]["name"] == "Smith"


async def test_reservation_with_corrections_en():
    call = await open_call("en")
    await call.say("Can I book a table for two on Friday at 7:30pm?")
    await call.say("My name is Smith")
    r = await call.say("actually, make it five people")
    assert "5 people" in r.text
    r = await call.say("change the time to 8pm")
    assert "8 pm" in r.text and r.state["slots"]["time"] == "20:00"
    r = await call.say("yes")
    assert "booking number" in r.text
    out = await call.close()
    assert out.slots == {"date": "2026-11-27", "time": "20:00", "party_size": 5, "name": "Smith"}


async def test_fully_booked_time_gets_an_alternative():
    call = await open_call("ja")
    r = await call.say("土曜日の19時に2名で予約したいです")
    assert "満席" in r.text and "19時半" in r.text
    assert "time" not in r.state["slots"]
    r = await call.say("はい")
    assert r.state["slots"]["time"] == "19:30"
    await call.say("高橋です")
    await call.say("はい")
    out = await call.close()
    assert out.side_effects["booking"]["time"] == "19:30"


async def test_closed_day_and_out_of_hours_are_refused():
    call = await open_call("en")
    r = await call.say("A table for 2 next Tuesday at 7pm please")
    assert "closed" in r.text and "date" not in r.state["slots"]
    r = await call.say("Wednesday then, but at 11pm")
    assert "11 am to 9 pm" in r.text and "time" not in r.state["slots"]
    assert r.state["slots"]["date"] == "2026-12-02"


async def test_cancellation_wrong_then_right_number():
    call = await open_call("ja")
    r = await call.say("予約をキャンセルしたいです")
    assert "予約番号" in r.text and r.state["intent"] == "cancellation"
    r = await call.say("B9999です")
    assert "見つかりませんでした" in r.text
    r = await call.say("B1001です")
    assert "山田様" in r.text and r.state["slots"] == {"booking_id": "B1001"}
    r = await call.say("はい")
    assert "キャンセルいたしました" in r.text
    out = await call.close()
    assert out.side_effects == {"cancelled": "B1001"}


async def test_cancellation_checks_the_name():
    call = await open_call("en")
    r = await call.say("My name is Brown, I'd like to cancel booking B1002")
    assert "different name" in r.text
    out = await call.close()
    assert "cancelled" not in out.side_effects


@pytest.mark.parametrize("language,question,expected", [
    ("ja", "営業時間を教えてください", ["11時", "22時"]),
    ("ja", "駐車場はありますか", ["コインパーキング"]),
    ("ja", "カードで払えますか", ["Visa"]),
    ("en", "What are your opening hours?", ["11 am", "10 pm"]),
    ("en", "Where are you located?", ["Shibuya"]),
    ("en", "Do you have vegan options?", ["vegan"]),
])
async def test_faq_in_both_languages(language, question, expected):
    call = await open_call(language)
    r = await call.say(question)
    assert all(e in r.text for e in expected), r.text
    assert r.state["intent"] == "question" and not r.ended


async def test_language_detected_from_the_first_words():
    call = await open_call(None)
    r = await call.say("Is there parking?")
    assert r.text.startswith("I'm sorry, we don't have our own parking")
    call = await open_call(None)
    r = await call.say("駐車場はありますか")
    assert "駐車場" in r.text and "parking" not in r.text


@pytest.mark.parametrize("language,text,reason", [
    ("ja", "担当者と話したいです", "request"),
    ("en", "Can I speak to a human?", "request"),
    ("ja", "ふざけるな！", "anger"),
    ("en", "This is ridiculous, I'm angry", "anger"),
    ("ja", "救急です、友人が倒れました", "emergency"),
    ("en", "My friend is having an allergic reaction!", "emergency"),
])
async def test_transfers_to_a_human(language, text, reason):
    call = await open_call(language)
    r = await call.say(text)
    assert r.ended and r.state["transferred"]
    out = await call.close()
    assert out.transferred and out.transfer_reason == reason and out.ended_by == "agent"


async def test_three_misunderstandings_transfer():
    call = await open_call("ja")
    for _ in range(2):
        r = await call.say("あのー")
        assert not r.ended
    r = await call.say("えーと")
    assert r.ended and (await call.close()).transfer_reason == "misunderstanding"


async def test_silence_reprompts_then_ends_politely():
    call = await open_call("ja")
    r1, r2 = await call.silence(), await call.silence()
    assert "もしもし" in r1.text and not r2.ended
    r3 = await call.silence()
    assert r3.ended and "失礼いたします" in r3.text
    out = await call.close()
    assert not out.transferred and out.ended_by == "agent"


async def test_dtmf_menu_and_booking_number():
    call = await open_call("en")
    r = await call.dtmf("2")
    assert r.state["intent"] == "cancellation" and "booking number" in r.text
    r = await call.dtmf("1004")
    assert "Johnson" in r.text and r.state["slots"]["booking_id"] == "B1004"
    call = await open_call("ja")
    r = await call.dtmf("1")
    assert r.state["intent"] == "reservation"
    call = await open_call("en")
    r = await call.dtmf("0")
    assert r.state["transferred"] and r.state["intent"] == "transfer_request"


async def test_full_width_digits():
    call = await open_call("ja")
    r = await call.say("１２月３日の１９時に四名で予約をお願いします")
    assert r.state["slots"] == {"date": "2026-12-03", "time": "19:00", "party_size": 4}


async def test_large_group_goes_to_staff():
    call = await open_call("en")
    r = await call.say("Table for twelve tomorrow at 7 pm")
    assert r.ended and (await call.close()).transfer_reason == "group"


# --- determinism and faults -------------------------------------------------------------

SCRIPT = ["明日の19時に4名で予約したいです", "山田です", "はい"]


async def run_script(script=SCRIPT, language="ja", **config) -> tuple[list[AgentReply], Outcome]:
    call = await open_call(language, **config)
    for line in script:
        await call.say(line)
    return call.replies, await call.close()


async def test_deterministic_for_a_seed():
    a, out_a = await run_script(seed=3)
    b, out_b = await run_script(seed=3)
    c, out_c = await run_script(seed=4)
    assert [r.text for r in a] == [r.text for r in b]
    assert out_a == out_b
    assert out_a.side_effects["booking"]["id"] != out_c.side_effects["booking"]["id"]


async def test_repeats_are_identical_without_faults():
    a, _ = await run_script(repeat_index=0)
    b, _ = await run_script(repeat_index=1)
    assert [r.text for r in a] == [r.text for r in b]


async def test_primary_outage_serves_from_the_fallback():
    base, _ = await run_script()
    fb, out = await run_script(faults=["primary_outage"])
    assert {r.route for r in base} == {"primary"} and {r.route for r in fb} == {"fallback"}
    assert fb[0].model != base[0].model and fb[0].fingerprint != base[0].fingerprint
    assert fb[0].text != base[0].text
    assert out.slots["party_size"] == 4 and "booking" in out.side_effects


async def test_full_outage_transfers_the_caller():
    replies, out = await run_script(faults=["full_outage"])
    assert len(replies) == 1 or all(r.text == "" for r in replies[1:])
    first = replies[0]
    assert first.route == "none" and first.ended and first.model is None
    assert "担当者" in first.text
    assert out.transferred and out.transfer_reason == "outage"


async def test_model_update_changes_wording_and_fingerprint_not_meaning():
    base, out_base = await run_script()
    upd, out_upd = await run_script(faults=["model_update"])
    assert all(r.fingerprint != b.fingerprint for r, b in zip(upd, base))
    assert upd[0].model == base[0].model  # a silent update keeps the model name
    assert all(r.text != b.text for r, b in zip(upd, base))
    assert [r.state for r in upd] == [r.state for r in base]
    assert out_upd.slots == out_base.slots


async def test_hallucination_confirms_a_fully_booked_time():
    script = ["土曜日の19時に2名で予約したいです", "高橋です", "はい"]
    honest, out_honest = await run_script(script)
    assert "満席" in honest[0].text
    lying, out = await run_script(script, faults=["hallucination:1.0"])
    assert "満席" not in lying[0].text
    assert out.side_effects["booking"]["time"] == "19:00"  # booked a table that was not free
    assert out_honest.slots.get("time") != "19:00"


async def test_rate_limit_raises_infra_error_inside_request():
    call = await open_call("ja", faults=["rate_limit:1.0"], retries=2)
    with pytest.raises(InfraError) as e:
        await call.say("営業時間は？")
    assert e.value.kind == "rate_limited" and e.value.retry_after == pytest.approx(0.05)
    assert call.ctx.calls == 3 and len(call.ctx.infra_errors) == 3


async def test_rate_limit_bursts_are_retried_and_counted():
    call = await open_call("en", faults=["rate_limit:0.5"], retries=20)
    for _ in range(5):
        await call.say("What are your hours?")
    attempts = sum(r.attempts for r in call.replies)
    assert attempts == call.ctx.calls and attempts > 5  # some 429s, all retried
    assert all("11 am" in r.text for r in call.replies)


async def test_latency_knob_slows_turns():
    fast, _ = await run_script(["営業時間は？"])
    slow, _ = await run_script(["営業時間は？"], latency_ms=30, faults=["latency:60"])
    assert slow[0].total_ms >= 80 > fast[0].total_ms
    assert 0 < slow[0].first_token_ms < slow[0].total_ms


# --- golden set ---------------------------------------------------------------------------


def golden_cases() -> list[tuple[str, dict, str | None]]:
    out = []
    for path in sorted(GOLDEN.rglob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in doc["cases"]:
            out.append((f"{path.relative_to(GOLDEN)}::{case['id']}", case, case.get("language", doc.get("language"))))
    return out


def test_golden_set_is_large_and_bilingual():
    cases = golden_cases()
    langs = [lang for _, _, lang in cases]
    assert len(cases) >= 32
    assert abs(langs.count("ja") - langs.count("en")) <= len(cases) // 4


@pytest.mark.parametrize("name,raw,language", golden_cases(), ids=[c[0] for c in golden_cases()])
async def test_golden_case_reaches_its_outcome(name, raw, language):
    """Plays the caller's turns and compares the end state, independently of the checks module."""
    case = CaseSpec.model_validate(raw)
    case._language = language
    target = create({"kind": "sim"})
    conv = await target.open(case, Ctx(case, retries=10))  # chaos cases bring their own 429 bursts
    last = await conv.greet()
    if case.caller is not None:  # a goal-driven caller: its rule-based brain answers the agent
        brain = make_brain(case)
        for _ in range(case.caller.max_turns):
            move = await brain.next(last)
            if move.kind == "hangup":
                break
            last = await conv.reply(move.text, kind=move.kind)
            assert last.text, f"{name}: empty reply to {move}"
            if last.ended or move.last:
                break
    for turn in case.call_turns:
        if turn.caller is not None:
            reply = await conv.reply(turn.caller)
        elif turn.dtmf is not None:
            reply = await conv.reply(turn.dtmf, kind="dtmf")
        else:
            reply = await conv.reply("", kind="silence")
        assert reply.text, f"{name}: empty reply to {turn}"
    out = await conv.close()
    want = case.outcome
    if want is None:
        return
    if want.intent is not None:
        assert out.intent == want.intent, name
    if want.transferred is not None:
        assert out.transferred == want.transferred, name
    for key, value in (want.slots or {}).items():
        assert same_value(key, out.slots.get(key), value), f"{name}: {key}: {out.slots.get(key)!r} != {value!r}"
    if want.booking_exists is not None:
        assert ("booking" in out.side_effects) == want.booking_exists, name
    if want.transfer_reason is not None:
        assert out.transfer_reason == want.transfer_reason, name


# --- live-model mode (brain: llm) ----------------------------------------------------------

import json as _json  # noqa: E402

from tests.mock_openai import MockOpenAI  # noqa: E402


def sim_model(messages) -> str:
    """Plays the sim's model: reads callers into JSON, words drafts with a visible mark."""
    system, user = messages[0]["content"], messages[-1]["content"]
    if system.startswith("You read one caller turn"):
        if "the usual" in user:  # only a model could read this one
            return _json.dumps({"intent": "reservation", "date": "2026-11-26", "time": "19:00", "party_size": 6,
                                "name": None, "yes": False})
        if user.startswith("Tanaka"):
            return "```json\n" + _json.dumps({"name": "Tanaka", "party_size": "lots", "time": "25:99"}) + "\n```"
        if user.startswith("yes"):
            return _json.dumps({"yes": True, "no": True})  # contradictory: the agent must not take it as a yes
        return "I am not JSON"
    return f"[model] {user}"


async def test_llm_brain_reads_and_words_through_the_model():
    with MockOpenAI(reply=sim_model, model="live-model-7", fingerprint="fp_live") as mock:
        target = create({"kind": "sim", "brain": "llm", "base_url": mock.base_url, "model": "live-model",
                         "api_key": "sk-sim-secret"})
        case = make_case("llm-1", "en")
        try:
            conv = await target.open(case, Ctx(case))
            await conv.greet()
            r = await conv.reply("I'll have the usual, please")
            assert r.state["intent"] == "reservation"
            assert r.state["slots"] == {"date": "2026-11-26", "time": "19:00", "party_size": 6}
            assert r.text.startswith("[model] I'd be happy to book") and "6 people" in r.text
            assert r.model == "live-model-7" and r.fingerprint == "fp_live" and r.tokens_in and r.tokens_out
            r = await conv.reply("Tanaka")
            assert r.state["slots"]["name"] == "Tanaka" and r.state["slots"]["party_size"] == 6  # junk fields dropped
            r = await conv.reply("yes and no")
            assert "booking" not in (await conv.close()).side_effects  # a contradictory reading is not a yes
            r = await conv.reply("mumble")
            assert "[model] Sorry, I didn't catch that." in r.text  # unreadable model output: not understood
        finally:
            await target.aclose()
        assert mock.last_headers["authorization"] == "Bearer sk-sim-secret"
        assert "sk-sim-secret" not in str(target.describe()) and target.describe()["model"] == "live-model"


def test_llm_brain_needs_an_endpoint():
    with pytest.raises(ConfigError, match="brain: llm needs base_url and model"):
        create({"kind": "sim", "brain": "llm"})


async def test_llm_brain_model_failure_is_an_infra_error():
    with MockOpenAI(reply=sim_model, default="500") as mock:
        target = create({"kind": "sim", "brain": "llm", "base_url": mock.base_url, "model": "m"})
        case = make_case("llm-2", "en")
        try:
            conv = await target.open(case, Ctx(case))
            with pytest.raises(InfraError) as e:
                await conv.reply("hello")
        finally:
            await target.aclose()
    assert e.value.kind == "server_error"
