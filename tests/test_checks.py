"""The built-in exact checks, through the public surface: CheckSpec -> compile_check -> run."""

from __future__ import annotations

from typing import Any

import pytest

from harness.checks import Subject, compile_check, registry
from harness.errors import ConfigError, Position
from harness.normalize import normalize_text, normalize_value, parse_count, parse_time
from harness.records import AgentReply, CheckResult, Outcome, Transcript, Turn
from harness.spec import CheckSpec

POS = Position("f.yaml", 3, 7)


def turn_subject(text: str, **reply: Any) -> Subject:
    t = Turn(index=0, caller="もしもし", reply=AgentReply(text=text, **reply))
    return Subject(text=text, transcript=Transcript(turns=[t]), turn=t)


def call_subject(replies: list[AgentReply], outcome: Outcome | None = None) -> Subject:
    turns = [Turn(index=i, caller=f"c{i}", reply=r) for i, r in enumerate(replies)]
    return Subject(text="\n".join(r.text for r in replies),
                   transcript=Transcript(turns=turns, outcome=outcome or Outcome()))


def spec(raw: Any, **mods: Any) -> CheckSpec:
    s = CheckSpec.model_validate(raw)
    return s.model_copy(update={"pos": POS, **mods})


async def run(raw: Any, subject: Subject, *, scope: str = "turn", **mods: Any) -> CheckResult:
    return await compile_check(spec(raw, **mods), scope=scope).run(subject)


def config_error(raw: Any, scope: str = "turn") -> ConfigError:
    with pytest.raises(ConfigError) as e:
        compile_check(spec(raw), scope=scope)
    return e.value


REPLY = "お電話ありがとうございます。明日１９時に４名様でご予約ですね。お名前をお願いします。"

# (check, text, should pass) — every check both ways, on a turn-level subject
CASES = [
    ({"equals": "はい"}, "は い", False),
    ({"equals": "Hello  World"}, " hello world ", True),
    ({"contains": "19時"}, REPLY, True),
    ({"contains": "20時"}, REPLY, False),
    ({"contains_any": ["19:00", "19時"]}, REPLY, True),
    ({"contains_any": ["20:00", "20時"]}, REPLY, False),
    ({"contains_all": ["19時", "4名"]}, REPLY, True),
    ({"contains_all": ["19時", "5名"]}, REPLY, False),
    ({"not_contains": "空いています"}, REPLY, True),
    ({"not_contains": ["満席", "予約"]}, REPLY, False),
    ({"regex": r"(\d+)名様"}, REPLY, True),
    ({"regex": r"^\d+名"}, REPLY, False),
    ({"regex": {"pattern": "^line2", "flags": "m"}}, "line1\nline2", False),  # normalize folds the newline
    ({"regex": {"pattern": "^line2", "flags": "m", "normalize": False}}, "line1\nline2", True),
    ({"max_length": 10}, "短い返事", True),
    ({"max_length": 10}, REPLY, False),
    ("json", '{"a": 1}', True),
    ("json", "{'a': 1}", False),
    ("json", '```json\n{"a": 1}\n```', True),
    ({"json": {"type": "object", "required": ["time"]}}, '{"time": "19:00"}', True),
    ({"json": {"type": "object", "required": ["time"]}}, '{"date": "2024-05-01"}', False),
    ({"json": {"schema": {"type": "array"}}}, '{"a": 1}', False),
    ({"json_path": "$.slots.party_size"}, '{"slots": {"party_size": 4}}', True),
    ({"json_path": "$.slots.time"}, '{"slots": {"party_size": 4}}', False),
    ({"json_path": {"path": "$.slots.party_size", "equals": 4}}, '{"slots": {"party_size": 4}}', True),
    ({"json_path": {"path": "$.slots.party_size", "equals": 5}}, '{"slots": {"party_size": 4}}', False),
    ({"json_path": {"path": "$.ok", "equals": 1}}, '{"ok": true}', False),
    ({"json_path": {"path": "$.name", "equals": "YAMADA"}}, '{"name": "yamada"}', True),
    ({"json_path": {"path": "$.msg", "contains": "19時"}}, '{"msg": "１９時です"}', True),
    ({"json_path": {"path": "$.msg", "contains": "20時"}}, '{"msg": "19時です"}', False),
    ({"json_path": {"path": "$.error", "exists": False}}, '{"msg": "ok"}', True),
    ({"json_path": {"path": "$.error", "exists": False}}, '{"error": "x"}', False),
    ({"json_path": "$.a"}, "not json", False),
]


@pytest.mark.parametrize("raw,text,ok", CASES, ids=[f"{i}-{next(iter(c[0]))if isinstance(c[0], dict) else c[0]}"
                                                     for i, c in enumerate(CASES)])
async def test_check_passes_and_fails(raw: Any, text: str, ok: bool) -> None:
    res = await run(raw, turn_subject(text))
    assert res.passed is ok, res.reason
    assert (res.score == 1.0) if ok else (res.score < 1.0)
    assert not res.error
    assert res.reason
    negated = await run(raw, turn_subject(text), negate=True)
    assert negated.passed is (not ok)
    assert negated.name.startswith("not ")
    assert negated.reason.startswith("not: ")


async def test_reason_is_concrete_and_clipped() -> None:
    long = "お電話ありがとうございます。" * 20
    res = await run({"contains": "19時"}, turn_subject(long))
    assert res.reason.startswith('expected to contain "19時"; got "お電話ありがとうございます')
    assert res.reason.endswith('…"') and len(res.reason) < 130


# --- normalisation -------------------------------------------------------------------

async def test_fullwidth_case_and_whitespace_are_folded_by_default() -> None:
    assert (await run({"contains": "19時"}, turn_subject("明日１９時で"))).passed
    assert (await run({"contains": "ＯＫ"}, turn_subject("it is ok"))).passed
    assert (await run({"contains": "山田 様"}, turn_subject("山田　\n 様ですね"))).passed
    assert (await run({"regex": "ok"}, turn_subject("OK"))).passed


async def test_normalisation_can_be_turned_off() -> None:
    off = {"normalize": False}
    assert not (await run({"contains": {"value": "19時", **off}}, turn_subject("明日１９時で"))).passed
    assert not (await run({"contains": {"value": "山田 様", **off}}, turn_subject("山田　様"))).passed
    assert not (await run({"contains": {"value": "OK", "ignore_case": False}}, turn_subject("ok"))).passed
    assert not (await run({"regex": {"pattern": "ok", "ignore_case": False}}, turn_subject("OK"))).passed
    assert (await run({"max_length": {"chars": 3}}, turn_subject("a   b"))).passed
    assert not (await run({"max_length": {"chars": 3, **off}}, turn_subject("a   b"))).passed


def test_normalize_text() -> None:
    assert normalize_text("１９時") == "19時"
    assert normalize_text("  Ａ\u3000\u3000b\n\tC ") == "a b c"
    assert normalize_text("Ａ B", nfkc=False, casefold=False) == "Ａ B"
    assert normalize_text("a  b", whitespace=False) == "a  b"


@pytest.mark.parametrize("text,want", [
    ("19時", "19:00"), ("19:00", "19:00"), ("7 pm", "19:00"), ("7:30PM", "19:30"), ("19時半", "19:30"),
    ("午後7時", "19:00"), ("夜7時", "19:00"), ("午前12時", "00:00"), ("１９時１５分", "19:15"), ("十九時", "19:00"),
    ("19", None), ("25時", None), ("明日", None),
])
def test_parse_time(text: str, want: str | None) -> None:
    assert parse_time(text) == want


@pytest.mark.parametrize("text,want", [
    ("4名", 4), ("4人", 4), ("４", 4), ("four", 4), ("四", 4), ("二十三名", 23), ("two people", 2), ("ふたり", 2),
    ("4名様", 4), ("四谷", None), ("yamada", None),
])
def test_parse_count(text: str, want: int | None) -> None:
    assert parse_count(text) == want


def test_normalize_value() -> None:
    assert normalize_value("time", 19) == "19:00"
    assert normalize_value("time", "19") == "19:00"
    assert normalize_value("time", "午後7時") == "19:00"
    assert normalize_value("party_size", "４名") == 4
    assert normalize_value("party_size", 4.0) == 4
    assert normalize_value("date", "2024-05-01") == "2024-05-01"
    assert normalize_value("name", " Yamada\u3000Taro ") == "yamada taro"
    assert normalize_value("confirmed", True) is True


# --- structure -----------------------------------------------------------------------

OUTCOME = Outcome(intent="reservation", slots={"party_size": 4, "time": "19:00", "name": "山田"},
                  transferred=True, transfer_reason="allergy question")


async def test_intent_turn_and_call() -> None:
    s = turn_subject("はい", state={"intent": "Reservation"})
    assert (await run({"intent": "reservation"}, s)).passed
    res = await run({"intent": "cancellation"}, s)
    assert not res.passed and res.reason == 'expected intent "cancellation"; got "Reservation"'
    assert not (await run({"intent": "reservation"}, turn_subject("はい"))).passed
    call = call_subject([AgentReply("a")], OUTCOME)
    assert (await run({"intent": "reservation"}, call, scope="call")).passed
    assert not (await run({"intent": "question"}, call, scope="call")).passed


async def test_slots_subset_normalised_and_partial() -> None:
    call = call_subject([AgentReply("a")], OUTCOME)
    ok = await run({"slots": {"party_size": "４名", "time": "午後7時"}}, call, scope="call")
    assert ok.passed and ok.score == 1.0
    bad = await run({"slots": {"party_size": 5, "time": "19時", "date": "2024-05-01", "name": "山田"}}, call,
                    scope="call")
    assert not bad.passed and bad.score == pytest.approx(0.5)
    assert "party_size: expected 5, got 4" in bad.reason
    assert "date:" in bad.reason and "missing" in bad.reason and "time" not in bad.reason
    negated = await run({"slots": {"party_size": 5, "time": "19:00"}}, call, scope="call", negate=True)
    assert negated.passed and negated.score == pytest.approx(0.5)


async def test_slots_turn_level_reads_state() -> None:
    s = turn_subject("はい", state={"slots": {"party_size": 2}})
    assert (await run({"slots": {"party_size": "ふたり"}}, s)).passed
    assert not (await run({"slots": {"party_size": 3}}, s)).passed


async def test_transferred() -> None:
    call = call_subject([AgentReply("おつなぎします")], OUTCOME)
    assert (await run({"transferred": True}, call, scope="call")).passed
    assert (await run("transferred", call, scope="call")).passed
    res = await run({"transferred": False}, call, scope="call")
    assert not res.passed and "allergy question" in res.reason
    s = turn_subject("はい", state={"transferred": False})
    assert (await run({"transferred": False}, s)).passed
    assert not (await run({"transferred": True}, s)).passed


# --- latency -------------------------------------------------------------------------

async def test_max_turn_ms_turn_and_call() -> None:
    assert (await run({"max_turn_ms": 1000}, turn_subject("a", total_ms=800))).passed
    assert not (await run({"max_turn_ms": 1000}, turn_subject("a", total_ms=1200))).passed
    call = call_subject([AgentReply("a", total_ms=500), AgentReply("b", total_ms=2450), AgentReply("c", total_ms=2100)])
    res = await run({"max_turn_ms": 2000}, call, scope="call")
    assert not res.passed
    assert "turn 2" in res.reason and "2450 ms" in res.reason and "2 of 3" in res.reason
    ok = await run({"max_turn_ms": 3000}, call, scope="call")
    assert ok.passed and "turn 2" in ok.reason


async def test_max_first_token_ms_falls_back_to_total() -> None:
    assert (await run({"max_first_token_ms": 500}, turn_subject("a", first_token_ms=300, total_ms=900))).passed
    res = await run({"max_first_token_ms": 500}, turn_subject("a", total_ms=900))
    assert not res.passed and "used the total" in res.reason
    assert not (await run({"max_first_token_ms": 500}, turn_subject("a", first_token_ms=700, total_ms=900))).passed


async def test_check_that_raises_becomes_an_error_result() -> None:
    res = await run({"max_turn_ms": 1000}, turn_subject("a"))  # the target timed nothing
    assert res.error and not res.passed and res.score == 0.0
    assert res.reason.startswith("check could not run:")


# --- dispatcher behaviour and configuration errors ------------------------------------

async def test_weight_and_args_are_carried() -> None:
    res = await run({"contains": "19時"}, turn_subject(REPLY), weight=2.5)
    assert res.weight == 2.5 and res.args == {"value": "19時"} and res.turn == 0


async def test_partial_score_and_its_negation() -> None:
    res = await run({"contains_all": ["19時", "4名", "5名", "6名"]}, turn_subject(REPLY))
    assert not res.passed and res.score == pytest.approx(0.5)
    assert '"5名", "6名"' in res.reason and "2 of 4" in res.reason
    neg = await run({"contains_all": ["19時", "4名", "5名", "6名"]}, turn_subject(REPLY), negate=True)
    assert neg.passed and neg.score == pytest.approx(0.5)


@pytest.mark.parametrize("raw,fragment", [
    ({"regex": "(unclosed"}, "invalid regex"),
    ({"regex": {"pattern": "a", "flags": "iq"}}, "unknown regex flag"),
    ({"json": {"type": "nonsense"}}, "invalid JSON Schema"),
    ({"json_path": "$..[?"}, "invalid JSONPath"),
    ({"json_path": {"path": "$.a", "exists": False, "equals": 1}}, "exists: false"),
    ({"max_length": "many"}, "chars"),
    ({"max_length": -1}, "chars"),
    ({"contains_any": []}, "values"),
    ({"contains": ""}, "value: Value error, must not be empty"),
    ({"not_contains": ["a", ["b"]]}, "value.1: Input should be a valid string"),
    ({"max_turn_ms": 0}, "ms"),
    ({"contains": {"valeu": "x"}}, "did you mean 'value'"),
    ({"slots": "party_size"}, "expected"),
])
def test_bad_settings_are_positioned_config_errors(raw: Any, fragment: str) -> None:
    err = config_error(raw)
    assert err.position == POS
    assert err.line().startswith("f.yaml:3:7: ")
    assert fragment in err.line()
    assert "\n" not in err.line()


def test_unknown_check_suggests_the_closest_name() -> None:
    err = config_error({"contians": "x"})
    assert "did you mean 'contains'?" in err.line() and err.line().startswith("f.yaml:3:7")


def test_registry_lists_every_builtin_with_help() -> None:
    names = {"equals", "contains", "contains_any", "contains_all", "not_contains", "regex", "max_length", "json",
             "json_path", "intent", "slots", "transferred", "max_turn_ms", "max_first_token_ms"}
    reg = registry()
    assert names <= set(reg)
    assert all(reg[n].description and not reg[n].needs_llm for n in names)
