"""End-of-call checks: how the call ended, turn counts, backend side effects, routes, pace, dates.

Each check is compiled from YAML-shaped specs through the public registry and run on a
hand-built transcript, once where it must pass and once where it must fail.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.checks import Subject, compile_check
from harness.errors import ConfigError, Position
from harness.records import AgentReply, CheckResult, Outcome, Transcript, Turn
from harness.spec import CheckSpec

POS = Position("golden/x.yaml", 3, 5)
BOOKING = {"id": "B2001", "date": "2026-11-26", "time": "19:00", "party_size": 4, "name": "山田"}


def call(outcome: Outcome, *replies: AgentReply) -> Subject:
    turns = [Turn(0, None, AgentReply("いらっしゃいませ", total_ms=0.0, attempts=0), "greeting")]
    turns += [Turn(i, f"c{i}", r) for i, r in enumerate(replies, start=1)]
    return Subject(text="", transcript=Transcript(turns=turns, outcome=outcome))


async def run(raw: Any, subject: Subject, scope: str = "call") -> CheckResult:
    spec = CheckSpec.model_validate(raw).model_copy(update={"pos": POS})
    return await compile_check(spec, scope=scope).run(subject)


BOOKED = Outcome(intent="reservation", slots={"date": "2026-11-26", "time": "19:00", "party_size": 4, "name": "山田"},
                 ended_by="caller", side_effects={"booking": dict(BOOKING)})
TRANSFERRED = Outcome(intent="reservation", transferred=True, transfer_reason="outage", ended_by="agent")


@pytest.mark.parametrize("raw,outcome,ok,reason", [
    ({"ended_by": "caller"}, BOOKED, True, "ended by caller"),
    ({"ended_by": "agent"}, BOOKED, False, 'expected the call to be ended by agent; ended by "caller"'),
    ({"transfer_reason": "outage"}, TRANSFERRED, True, "transferred: outage"),
    ({"transfer_reason": "emergency"}, TRANSFERRED, False, 'expected transfer reason "emergency"; got "outage"'),
    ({"transfer_reason": "outage"}, BOOKED, False, "expected a transfer (outage); the call was not transferred"),
    ({"booking_exists": True}, BOOKED, True, "booked B2001 2026-11-26 19:00 4 山田"),
    ({"booking_exists": True}, TRANSFERRED, False, "expected a booking in the agent's backend; none was made"),
    ({"booking_exists": False}, BOOKED, False, "expected no booking; the backend holds B2001"),
    ({"cancelled": "B1001"}, Outcome(side_effects={"cancelled": "B1001"}), True, "B1001 cancelled"),
    ({"cancelled": "B1003"}, Outcome(side_effects={"cancelled": "B1001"}), False, "expected booking B1003 cancelled"),
    ({"cancelled": True}, BOOKED, False, "expected a cancellation in the agent's backend; nothing was cancelled"),
    ({"cancelled": False}, BOOKED, True, "nothing was cancelled"),
    ({"side_effects": {"booking": {"time": "19:00", "party_size": "4名"}}}, BOOKED, True, "1 side effect(s) match"),
    ({"side_effects": {"booking": {"time": "19:30"}}}, BOOKED, False, 'booking.time: expected "19:30", got "19:00"'),
    ({"side_effects": {"overbooked": True}}, BOOKED, False, "overbooked: expected True, missing"),
])
async def test_outcome_checks(raw, outcome, ok, reason):
    res = await run(raw, call(outcome, AgentReply("x")))
    assert res.passed is ok, res.reason
    assert res.reason.startswith(reason), res.reason


async def test_booking_that_differs_from_what_the_call_said_fails():
    wrong = Outcome(slots={"time": "19:30", "party_size": 4}, side_effects={"booking": {**BOOKING, "time": "19:00"}})
    res = await run({"booking_exists": True}, call(wrong, AgentReply("x")))
    assert not res.passed and res.reason == 'the booking differs from the call: time: booked "19:00", the call said "19:30"'


@pytest.mark.parametrize("raw,ok", [
    ({"turn_count": {"exactly": 3}}, True), ({"turn_count": {"exactly": 2}}, False),
    ({"turn_count": {"max": 3}}, True), ({"turn_count": {"min": 4}}, False), ({"turn_count": {"min": 1, "max": 2}}, False),
])
async def test_turn_count(raw, ok):
    res = await run(raw, call(BOOKED, AgentReply("a"), AgentReply("b"), AgentReply("c")))
    assert res.passed is ok and res.reason.startswith("3 caller turns")


async def test_route_every_or_some_turn_and_per_turn():
    s = call(Outcome(), AgentReply("a", route="primary"), AgentReply("b", route="fallback"), AgentReply("", attempts=0))
    every = await run({"route": "fallback"}, s)
    assert not every.passed and every.reason == "served by primary ×1, fallback ×1" and every.score == 0.5
    assert (await run({"route": {"value": "fallback", "every": False}}, s)).passed
    turn = Subject(text="b", transcript=s.transcript, turn=s.transcript.turns[2])
    assert (await run({"route": "fallback"}, turn, scope="turn")).passed
    assert not (await run({"route": "primary"}, turn, scope="turn")).passed


async def test_pace_budgets_name_the_percentile_and_the_slowest_turn():
    s = call(Outcome(), *(AgentReply("x", total_ms=ms) for ms in (100, 120, 140, 160, 900)))
    p95 = await run({"max_p95_turn_ms": 500}, s)
    assert not p95.passed
    assert p95.reason == ("p95 turn time 752 ms over 5 turns (p50 140 ms, slowest turn 5: 900 ms), "
                          "over the limit of 500 ms")
    assert (await run({"max_p50_turn_ms": 200}, s)).passed
    assert not (await run({"max_p50_turn_ms": 100}, s)).passed
    assert (await run({"max_p95_turn_ms": 1000}, s)).passed


async def test_max_turn_ms_names_caller_turns_in_a_real_transcript():
    s = call(Outcome(), AgentReply("a", total_ms=100), AgentReply("b", total_ms=2500))
    res = await run({"max_turn_ms": 1000}, s)
    assert not res.passed and res.reason.startswith("turn 2: turn time 2500 ms")


@pytest.mark.parametrize("got,want,ok", [
    ("2026-11-26", "11月26日", True), ("2026-11-26", "November 26", True), ("2026-11-26", "2026/11/26", True),
    ("2026-11-26", "11月27日（金）", False), ("2026-11-26", "2025-11-26", False), ("19:00", "午後7時", True),
])
async def test_slots_compare_dates_as_dates(got, want, ok):
    key = "time" if ":" in got else "date"
    res = await run({"slots": {key: want}}, call(Outcome(slots={key: got})))
    assert res.passed is ok, res.reason


def test_outcome_checks_are_call_level_only():
    with pytest.raises(ConfigError, match="cannot be used in a turn's expect"):
        compile_check(CheckSpec.model_validate({"ended_by": "agent"}).model_copy(update={"pos": POS}), scope="turn")
    with pytest.raises(ConfigError, match="ended_by"):
        compile_check(CheckSpec.model_validate({"ended_by": "nobody"}).model_copy(update={"pos": POS}), scope="call")
