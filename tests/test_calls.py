"""The call driver (harness.calls): scripted turns, goal-driven callers, max_turns, replay, pace.

Calls are played against the embedded sim agent and against small fake targets written
on the public Target surface; the LLM caller talks to `tests/mock_openai.py`.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from harness.calls import compile_call, pace, play_call, replay_case, script_from
from harness.records import AgentReply, Outcome
from harness.runner import Guard, WorkItem
from harness.spec import CallerModelSpec, CaseSpec, Limits
from harness.targets.base import CallContext, Conversation, Target, TargetConfig, create
from tests.mock_openai import MockOpenAI


def make_case(raw: dict[str, Any], language: str | None = None, model: CallerModelSpec | None = None) -> CaseSpec:
    case = CaseSpec.model_validate(raw)
    case._language = language  # what the loader fills in from the file
    if case.caller is not None:
        case.caller._model = model  # what the loader fills in from the suite
    return case


async def play(case: CaseSpec, target: Target | None = None, repeat_index: int = 0, **config: Any):
    target = target or create({"kind": "sim", **config})
    return await play_call(target, WorkItem(compile_call(case), repeat_index), Guard(Limits(retries=0)))


def failing(checks) -> list[str]:
    return [f"{c.name}: {c.reason}" for c in checks if not c.passed and not c.skipped]


# --- scripted calls -------------------------------------------------------------------------

async def test_scripted_call_with_silence_and_dtmf():
    case = make_case({"id": "s-1", "turns": [
        {"silence": 3, "expect": [{"contains": "もしもし"}]},
        {"dtmf": "2", "expect": [{"intent": "cancellation"}]},
        {"dtmf": "1003", "expect": [{"contains": "佐藤様"}]},
        {"caller": "はい", "expect": [{"contains": "キャンセル"}]},
    ], "outcome": {"cancelled": "B1003", "ended_by": "caller", "turns": 4}}, "ja")
    transcript, checks = await play(case)
    assert failing(checks) == []
    kinds = [(t.kind, t.caller) for t in transcript.turns]
    assert kinds == [("greeting", None), ("silence", None), ("dtmf", "2"), ("dtmf", "1003"), ("say", "はい")]
    assert transcript.outcome.pace["turns"] == 4 and "p95_turn_ms" in transcript.outcome.pace


async def test_turns_after_the_agent_ended_the_call_fail_and_ended_by_is_agent():
    case = make_case({"id": "s-2", "turns": [
        {"caller": "救急です、友人が倒れました"},
        {"caller": "もしもし", "expect": [{"contains": "もしもし"}]},
    ], "outcome": {"ended_by": "caller"}}, "ja")
    transcript, checks = await play(case)
    reasons = failing(checks)
    assert any("turn 2 never happened" in r for r in reasons)
    assert any(r.startswith("ended_by: expected the call to be ended by caller; ended by \"agent\"") for r in reasons)
    assert transcript.outcome.ended_by == "agent" and transcript.outcome.transfer_reason == "emergency"


# --- goal-driven callers ---------------------------------------------------------------------

async def test_goal_driven_reservation_answers_in_the_agents_order():
    case = make_case({"id": "g-1", "caller": {"goal": "reservation", "facts": {
        "date": "2026-11-28", "time": "19:00", "party_size": 2, "name": "高橋"}},
        "outcome": {"slots": {"time": "19:30"}, "booking_exists": True, "ended_by": "caller"}}, "ja")
    transcript, checks = await play(case)
    assert failing(checks) == []
    said = [t.caller for t in transcript.turns if t.index >= 1]
    assert said[0] == "予約をお願いしたいのですが。" and "はい、その時間でお願いします。" in said
    assert said[-1].startswith("いいえ、以上です")
    assert transcript.outcome.side_effects["booking"]["time"] == "19:30"


async def test_facts_the_agent_never_asks_for_do_not_stop_the_call_from_ending():
    case = make_case({"id": "g-2", "caller": {"goal": "question", "question": "What are your opening hours?",
                                              "facts": {"phone": "090-1111-2222", "booking_id": "B1001",
                                                        "party_size": 3}, "max_turns": 6}}, "en")
    transcript, checks = await play(case)
    assert failing(checks) == []
    assert transcript.outcome.ended_by == "caller" and len(transcript.turns) == 3  # greeting, question, goodbye


class Parrot(Target):
    """An agent stuck in a loop: it asks for the time, whatever the caller says."""

    kind = "parrot"
    config_model = TargetConfig

    def __init__(self):
        super().__init__(TargetConfig(kind="parrot"))

    async def open(self, case: CaseSpec, ctx: CallContext) -> Conversation:
        class Conv(Conversation):
            async def reply(self, caller: str, *, kind: str = "say") -> AgentReply:
                return AgentReply(text="What time would you like?", total_ms=5.0, first_token_ms=1.0)

            async def close(self) -> Outcome:
                return Outcome(intent="reservation")

        return Conv()


async def test_a_looping_call_is_stopped_by_max_turns_with_a_clear_reason():
    case = make_case({"id": "loop", "caller": {"goal": "reservation", "facts": {"time": "19:00"}, "max_turns": 5}},
                     "en")
    transcript, checks = await play(case, Parrot())
    assert len([t for t in transcript.turns if t.index >= 1]) == 5
    assert transcript.outcome.ended_by == "max_turns"
    (stop,) = [c for c in checks if c.name == "max_turns"]
    assert not stop.passed
    assert stop.reason == ('stopped after max_turns=5 caller turns: the caller did not reach its goal (reservation); '
                           'the agent last said "What time would you like?"')


async def test_a_case_that_expects_the_max_turns_stop_is_judged_by_its_ended_by():
    case = make_case({"id": "loop2", "caller": {"goal": "reservation", "max_turns": 2},
                      "outcome": {"ended_by": "max_turns", "turns": 2}}, "en")
    _, checks = await play(case, Parrot())
    assert failing(checks) == []


# --- replay ------------------------------------------------------------------------------------

def fickle_caller():
    """An LLM caller that words things differently each call: only a recording can replay it."""
    counter = itertools.count()

    def reply(messages) -> str:
        heard = messages[-1]["content"].lower()
        n = next(counter)
        if "booking number" in heard or "予約番号" in heard:
            return "Booking B1002" if n % 2 else "it is B1002"
        if "cancel it" in heard:
            return "yes please"
        if "cancelled" in heard:
            return "thanks, bye [END]"
        return ["I need to cancel my booking", "cancel a reservation please"][n % 2]

    return reply


async def test_replay_of_a_recorded_llm_caller_reproduces_the_call_exactly():
    with MockOpenAI(reply=fickle_caller()) as mock:
        model = CallerModelSpec(brain="llm", base_url=mock.base_url, model="caller")
        case = make_case({"id": "r-1", "caller": {"goal": "cancellation", "facts": {"booking_id": "B1002"},
                                                  "brain": "llm"},
                          "outcome": {"cancelled": "B1002"}}, "en", model)
        recorded, checks = await play(case, latency_ms=1, jitter_ms=3, seed=5, faults=["primary_outage:0.5"])
        asked = mock.requests
    assert failing(checks) == [] and asked >= 4
    # the mock is gone: the replay needs no model
    replay = replay_case(case, recorded)
    assert replay.caller is None and [t.caller for t in replay.turns] == [t.caller for t in recorded.turns[1:]]
    again, checks2 = await play(replay, latency_ms=1, jitter_ms=3, seed=5, faults=["primary_outage:0.5"])
    assert failing(checks2) == []

    def shape(tr):
        return [(t.index, t.kind, t.caller, t.reply.text, t.reply.route, t.reply.state, t.reply.ended)
                for t in tr.turns]

    assert shape(again) == shape(recorded)
    a, b = again.outcome, recorded.outcome
    assert (a.intent, a.slots, a.transferred, a.ended_by, a.side_effects) == (
        b.intent, b.slots, b.transferred, b.ended_by, b.side_effects)


def test_script_from_keeps_kinds():
    case = make_case({"id": "k", "turns": [{"silence": 2}, {"dtmf": "0"}]}, "en")
    from harness.records import Transcript, Turn

    tr = Transcript(turns=[Turn(0, None, AgentReply("hi"), "greeting"), Turn(1, None, AgentReply("hello?"), "silence"),
                           Turn(2, "0", AgentReply("ok"), "dtmf")])
    turns = script_from(tr)
    assert turns[0].silence == 0 and turns[1].dtmf == "0"
    assert replay_case(case, tr).turns[1].dtmf == "0"


def test_pace_skips_the_greeting_and_unanswered_turns():
    from harness.records import Transcript, Turn

    replies = [AgentReply("g", total_ms=0.0, attempts=0)] + [AgentReply("x", total_ms=ms) for ms in (100, 200, 300, 400)]
    replies.append(AgentReply("", total_ms=0.0, attempts=0, ended=True))
    tr = Transcript(turns=[Turn(i, "c", r) for i, r in enumerate(replies)])
    p = pace(tr)
    assert p["turns"] == 5 and p["p50_turn_ms"] == 250.0 and p["max_turn_ms"] == 400.0 and p["slowest_turn"] == 4
    assert p["p95_turn_ms"] == pytest.approx(385.0)


# --- bad call scripts are found at validation time ------------------------------------------

from harness.errors import ConfigError, ConfigErrors  # noqa: E402
from harness.loading import load_golden_file  # noqa: E402


def golden_errors(tmp_path, body: str) -> list[str]:
    path = tmp_path / "calls.yaml"
    path.write_text("topic: reservation\ncases:\n" + body, encoding="utf-8")
    with pytest.raises((ConfigError, ConfigErrors)) as e:
        load_golden_file(str(path))
    return [line.replace(str(path), "F") for line in str(e.value).splitlines()]


def test_unknown_slot_names_in_facts_and_slots_are_positioned(tmp_path):
    errors = golden_errors(tmp_path, (
        "  - id: a\n"
        "    caller:\n"
        "      goal: reservation\n"
        "      facts: {party: 4, name: 山田}\n"
        "    outcome:\n"
        "      slots: {tme: '19:00'}\n"
    ))
    assert errors[0].startswith("F:6:15: facts: unknown slot name 'party' (expected one of: date, time, party_size")
    assert errors[0].endswith("did you mean 'party_size'?)")
    assert errors[1].startswith("F:8:15: outcome.slots: unknown slot name 'tme'")


def test_a_file_may_name_its_own_slots(tmp_path):
    path = tmp_path / "clinic.yaml"
    path.write_text("topic: clinic\nslots: [doctor]\ncases:\n  - id: a\n    caller:\n      goal: reservation\n"
                    "      facts: {doctor: 佐藤先生}\n", encoding="utf-8")
    assert load_golden_file(str(path)).cases[0].caller.facts == {"doctor": "佐藤先生"}


def test_dtmf_letters_and_zero_max_turns_are_positioned(tmp_path):
    errors = golden_errors(tmp_path, (
        "  - id: a\n"
        "    turns:\n"
        "      - dtmf: 'xyz'\n"
        "  - id: b\n"
        "    caller: {goal: reservation, max_turns: 0}\n"
    ))
    assert errors == [
        "F:5:15: dtmf: 'xyz' is not valid (expected keypad keys: digits 0-9, *, # and A-D)",
        "F:7:44: max_turns: 0 is out of range (expected at least 1)",
    ]


def test_slots_check_names_and_case_faults_are_checked(tmp_path):
    errors = golden_errors(tmp_path, (
        "  - id: a\n"
        "    faults: [primary_outag]\n"
        "    turns:\n"
        "      - caller: hi\n"
        "        expect:\n"
        "          - slots: {partysize: 4}\n"
    ))
    assert errors == [
        "F:4:14: faults: unknown sim fault 'primary_outag' (expected one of: latency, primary_outage, full_outage, "
        "rate_limit, server_error, model_update, hallucination, slow_first_audio, ignores_barge_in, dead_air, drops_stream; "
        "did you mean 'primary_outage'?)",
        "F:8:21: slots: unknown slot name 'partysize' (expected one of: date, time, party_size, name, phone, "
        "booking_id, or a name the file lists under `slots:`; did you mean 'party_size'?)",
    ]


def test_case_faults_take_the_mapping_form_of_a_targets_faults(tmp_path):
    path = tmp_path / "calls.yaml"
    path.write_text("topic: reservation\ncases:\n  - id: a\n    prompt: hi\n"
                    "    faults: [{primary_outage: 0.5, latency: 800}, model_update]\n", encoding="utf-8")
    assert load_golden_file(str(path)).cases[0].faults == ["primary_outage:0.5", "latency:800", "model_update"]
    errors = golden_errors(tmp_path, (
        "  - id: a\n"
        "    prompt: hi\n"
        "    faults: [{latency: 800, halucination: 0.2}, 'rate_limit:2']\n"
    ))
    assert errors == [  # each mistake at its own key or item, although one mapping holds two faults
        "F:5:29: faults: unknown sim fault 'halucination' (expected one of: latency, primary_outage, full_outage, "
        "rate_limit, server_error, model_update, hallucination, slow_first_audio, ignores_barge_in, dead_air, drops_stream; "
        "did you mean 'hallucination'?)",
        "F:5:49: faults: sim fault 'rate_limit' takes a rate between 0 and 1, got '2'",
    ]


def test_a_caller_needs_a_question_and_cannot_come_with_turns(tmp_path):
    errors = golden_errors(tmp_path, "  - id: a\n    caller: {goal: question}\n")
    assert errors == ["F:4:13: a caller with goal: question needs `question:` (what to ask)"]
    errors = golden_errors(tmp_path, "  - id: a\n    prompt: hi\n    caller: {goal: transfer}\n")
    assert errors[0].startswith("F:3:5: a goal-driven caller plays the whole call")


def test_llm_callers_need_the_suites_caller_model(tmp_path):
    from harness.loading import load_cases, load_suite

    (tmp_path / "golden").mkdir()
    (tmp_path / "golden" / "g.yaml").write_text(
        "topic: reservation\ncases:\n  - id: a\n    caller: {goal: transfer, brain: llm}\n", encoding="utf-8")
    (tmp_path / "s.yaml").write_text("name: s\ngolden: [golden/*.yaml]\ntarget: {kind: sim}\n"
                                     "budgets: {p95_turn_ms: 900}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="brain: llm, but the suite has no caller model"):
        load_cases(load_suite(str(tmp_path / "s.yaml")))
    (tmp_path / "s.yaml").write_text("name: s\ngolden: [golden/*.yaml]\ntarget: {kind: sim}\n"
                                     "budgets: {p95_turn_ms: 900}\n"
                                     "caller: {base_url: 'http://127.0.0.1:9/v1', model: m}\n", encoding="utf-8")
    (case,) = load_cases(load_suite(str(tmp_path / "s.yaml")))
    assert case.caller.model.model == "m" and case.budgets.p95_turn_ms == 900  # inherited from the suite


# --- the whole path: a goal-driven call stored by `harness run`, replayed by `harness replay` ----

def test_harness_replay_reproduces_a_stored_goal_driven_call(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "golden").mkdir()
    (tmp_path / "golden" / "g.yaml").write_text(
        "topic: reservation\nlanguage: en\ncases:\n"
        "  - id: goal-1\n    caller:\n      goal: reservation\n"
        "      facts: {date: tomorrow, time: '18:00', party_size: 2, name: Lee}\n"
        "    outcome: {booking_exists: true, ended_by: caller}\n", encoding="utf-8")
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\ngolden: [golden/*.yaml]\n"
                     "target: {kind: sim, seed: 3, jitter_ms: 2, faults: ['primary_outage:0.5']}\n", encoding="utf-8")
    store = f"sqlite:///{tmp_path}/h.db"
    repo = str(Path(__file__).resolve().parent.parent)

    def harness(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "harness", *args], cwd=tmp_path, capture_output=True, text=True,
                              env={**__import__("os").environ, "PYTHONPATH": repo}, timeout=60)

    run = harness("run", str(suite), "--store", store, "--no-reports", "--no-progress", "-q")
    assert run.returncode == 0, run.stdout + run.stderr
    replay = harness("replay", str(suite), "latest:goal-1", "--store", store)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "reproduced exactly; 0 check(s) failing" in replay.stdout and "differs" not in replay.stdout
    # the agent changed its mind (another seed): the replay says so and exits 1
    suite.write_text(suite.read_text().replace("seed: 3", "seed: 4"), encoding="utf-8")
    changed = harness("replay", str(suite), "latest:goal-1", "--store", store)
    assert changed.returncode == 1 and "differs" in changed.stdout
    missing = harness("replay", str(suite), "latest:nope", "--store", store)
    assert missing.returncode == 2 and "no case 'nope'" in missing.stderr
