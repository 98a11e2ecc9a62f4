"""Caller brains (harness.callers): hearing the agent, the rule-based caller, the LLM caller.

The LLM brain talks to `tests/mock_openai.py` on 127.0.0.1, whose `reply=` callable plays
the model; nothing in the harness is patched.
"""

from __future__ import annotations

import pytest

from harness.callers import LLMBrain, RuleBrain, hear, make_brain
from harness.errors import InfraError
from harness.records import AgentReply
from harness.spec import CallerModelSpec, CaseSpec
from harness.targets.sim.phrases import PHRASES
from tests.mock_openai import MockOpenAI


def agent(text: str, **state) -> AgentReply:
    return AgentReply(text=text, state=state)


# --- hearing the agent --------------------------------------------------------------------

@pytest.mark.parametrize("key,cue", [
    ("ask_date", "date"), ("ask_time", "time"), ("ask_party", "party_size"), ("ask_name", "name"),
    ("ask_booking_id", "booking_id"), ("anything_else", "anything_else"), ("silence_prompt", "hello"),
    ("what_to_change", "unknown"),
])
def test_hears_every_wording_of_the_sim_agent(key, cue):
    """All three wordings (primary, updated, fallback) in both languages mean the same to the caller."""
    for lang in ("ja", "en"):
        for text in PHRASES[key][lang]:
            got = hear(text)
            if cue == "unknown":
                assert got not in ("date", "time", "party_size", "name", "booking_id"), text
            else:
                assert got == cue, f"{lang}: {text!r} heard as {got}"


@pytest.mark.parametrize("text,cue", [
    ("ご予約を承りました。予約番号はB7122です。ほかにご用件はございますか。", "booked"),
    ("Booked. Number B1234. Anything else?", "booked"),
    ("予約番号は？", "booking_id"),
    ("I'm sorry, I couldn't find a booking with the number B5555. Could you give me the number again?", "not_found"),
    ("申し訳ございません。11月28日（土）の19時は満席です。19時半でしたらご用意できます。いかがでしょうか。", "alternative"),
    ("Let me confirm: a table for 4 people on Thursday, November 26 at 7 pm, under the name Smith. Is that correct?",
     "confirm"),
    ("I found booking B1002 for Smith: 2 people on Saturday at 6:30 pm. Shall I cancel it?", "confirm_cancel"),
    ("Booking B1002 has been cancelled. We hope to see you another time.", "cancelled"),
    ("Of course. I'll transfer you to a member of staff. Please hold.", "transfer"),
    ("Mm.", "unknown"),
])
def test_hear_cues(text, cue):
    assert hear(text) == cue


# --- the rule-based brain -------------------------------------------------------------------

async def test_rules_answer_what_is_asked_from_the_facts():
    b = RuleBrain("reservation", {"date": "2026-11-26", "time": "19:30", "party_size": 4, "name": "山田"},
                  language="ja")
    assert (await b.next(agent("ご用件をどうぞ。"))).text == "予約をお願いしたいのですが。"
    assert (await b.next(agent("何名様でしょうか。"))).text == "4名です。"
    assert (await b.next(agent("何時ごろがご希望でしょうか。"))).text == "19時半でお願いします。"
    assert (await b.next(agent("ご希望の日にちをお聞かせください。"))).text == "11月26日です。"
    assert (await b.next(agent("お名前を頂戴できますか。"))).text == "山田です。"
    assert (await b.next(agent("電話番号をお願いします。"))).text == "すみません、わかりません。"
    assert not b.goal_reached


async def test_rules_correct_a_wrong_read_back_then_confirm():
    b = RuleBrain("reservation", {"time": "19:00", "party_size": 4, "name": "Smith"}, language="en")
    await b.next(None)  # opens
    wrong = await b.next(agent("Is that correct?", slots={"time": "19:00", "party_size": 5}))
    assert wrong.text == "No, that's wrong. 4 people."
    right = await b.next(agent("Is that correct?", slots={"time": "19:00", "party_size": 4}))
    assert right.text == "Yes, that's right."


async def test_rules_planned_correction_comes_once_at_the_first_read_back():
    b = RuleBrain("reservation", {"party_size": 4}, language="en", corrections={"party_size": 5})
    await b.next(None)
    first = await b.next(agent("Is that correct?", slots={"party_size": 4}))
    assert first.text == "Actually, make it 5 people instead."
    second = await b.next(agent("Is that correct?", slots={"party_size": 5}))
    assert second.text == "Yes, that's right."


async def test_rules_close_after_the_goal_and_hang_up():
    b = RuleBrain("cancellation", {"booking_id": "B1001"}, language="ja")
    await b.next(agent("ご用件をどうぞ。"))
    assert (await b.next(agent("予約番号をお聞かせください。"))).text == "B1001です。"
    bye = await b.next(agent("予約番号B1001のご予約をキャンセルいたしました。ほかにご用件はございますか。"))
    assert b.goal_reached and bye.last and bye.text.startswith("いいえ、以上です")
    assert (await b.next(agent("お電話ありがとうございました。"))).kind == "hangup"


async def test_rules_hang_up_when_the_agent_ends_the_call():
    b = RuleBrain("reservation", {}, language="en")
    await b.next(None)
    move = await b.next(AgentReply(text="Transferring you.", ended=True))
    assert move.kind == "hangup"


async def test_rules_refuse_an_alternative_when_not_flexible():
    b = RuleBrain("reservation", {"time": "19:00"}, language="en", flexible=False)
    await b.next(None)
    move = await b.next(agent("We're fully booked at 7 pm. 7:30 pm is available. Would that work?"))
    assert move.text == "No, that time doesn't work for me."


def test_make_brain_picks_the_brain_and_needs_a_model_for_llm():
    case = CaseSpec(id="c", caller={"goal": "question", "question": "営業時間は？"})
    assert isinstance(make_brain(case), RuleBrain)
    llm_case = CaseSpec(id="c", caller={"goal": "question", "question": "hours?", "brain": "llm"})
    with pytest.raises(ValueError, match="caller"):
        make_brain(llm_case)


# --- the LLM brain -----------------------------------------------------------------------------

def caller_model(messages) -> str:
    """Plays a caller: answers the agent's last line (the model's 'user' turn)."""
    heard = messages[-1]["content"]
    if "booking number" in heard:
        return "It's B1002."
    if "cancelled" in heard:
        return "Great, thanks. Bye! [END]"
    return "I'd like to cancel a reservation."


async def test_llm_brain_plays_the_caller_and_ends_with_the_marker():
    with MockOpenAI(reply=caller_model) as mock:
        spec = CallerModelSpec(brain="llm", base_url=mock.base_url, model="caller-m", api_key="sk-caller-secret",
                               seed=3, temperature=0.4)
        brain = LLMBrain(spec, "You are a caller.", seed=99)
        try:
            assert (await brain.next(agent("How can I help you?"))).text == "I'd like to cancel a reservation."
            assert (await brain.next(agent("What is your booking number?"))).text == "It's B1002."
            bye = await brain.next(agent("Booking B1002 has been cancelled."))
            assert bye.kind == "say" and bye.last and bye.text == "Great, thanks. Bye!" and brain.goal_reached
            assert (await brain.next(agent("Goodbye."))).kind == "hangup"
        finally:
            await brain.aclose()
        body = mock.last_body
        assert body["model"] == "caller-m" and body["seed"] == 99 and body["temperature"] == 0.4
        roles = [m["role"] for m in body["messages"]]
        assert roles[:3] == ["system", "user", "assistant"]  # the agent is the model's user
        assert mock.last_headers["authorization"] == "Bearer sk-caller-secret"


async def test_llm_brain_presses_keys():
    with MockOpenAI(reply=lambda m: "[DTMF 1003]") as mock:
        brain = LLMBrain(CallerModelSpec(brain="llm", base_url=mock.base_url, model="m"), "p")
        try:
            move = await brain.next(agent("Booking number?"))
        finally:
            await brain.aclose()
    assert move.kind == "dtmf" and move.text == "1003"


async def test_llm_brain_retries_transient_errors_and_reports_a_rejected_key_without_it():
    with MockOpenAI(reply=lambda m: "hello") as mock:
        mock.script = ["503", "ok"]
        spec = CallerModelSpec(brain="llm", base_url=mock.base_url, model="m", api_key="sk-very-secret", retries=2)
        brain = LLMBrain(spec, "p")
        try:
            assert (await brain.next(agent("Hi"))).text == "hello"
            assert mock.requests == 2
            mock.script = ["401"]
            with pytest.raises(InfraError) as e:
                await brain.next(agent("Hi again"))
        finally:
            await brain.aclose()
    assert e.value.kind == "protocol" and "caller model" in e.value.line()
    assert "sk-very-secret" not in e.value.line()
