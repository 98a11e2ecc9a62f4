"""The LLM judge end to end: checks -> JudgeService -> deepeval -> a local judge server.

Every test talks to `MockJudge` on 127.0.0.1 and counts the calls it received; checks are
driven through `compile_check(...).run(Subject(...))` or the Runner, with a real service.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from harness.checks import Subject, compile_check
from harness.errors import ConfigError, Position
from harness.judge import JudgeService
from harness.records import AgentReply, CheckResult, Outcome, Transcript, Turn
from harness.runner import Runner, compile_case, plan_items
from harness.spec import CaseSpec, CheckSpec, JudgeSpec
from harness.store.judge_cache import JudgeCacheTables
from harness.targets import CallContext, Conversation, Target, TargetConfig

sys.path.insert(0, str(Path(__file__).parent))
from mock_judge import MockJudge  # noqa: E402

ROOT = str(Path(__file__).resolve().parents[1])  # the repo: its rubrics/ folder is used
POS = Position("golden/reservation/j.yaml", 4, 9)
GOOD = "明日19時に4名様ですね。お名前をお伺いしてもよろしいですか？"
BAD = "ご予約を承りました。"
RULES = [("お名前", 9), ("承りました", 2), ("ばっちり", 7)]


@pytest.fixture
async def judge_server():
    async with MockJudge(rules=list(RULES)) as server:
        yield server


@pytest.fixture
def cache_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'judge-cache.db'}"


def make_service(server: MockJudge, cache_url: str, **spec: Any) -> JudgeService:
    return JudgeService.from_spec(JudgeSpec(base_url=server.url, model="judge-model", **spec), root=ROOT,
                                  cache=JudgeCacheTables.open(cache_url))


def compiled(raw: Any, scope: str = "turn"):
    s = CheckSpec.model_validate(raw).model_copy(update={"pos": POS, "name_pos": POS})
    return compile_check(s, scope=scope)


def answer(text: str, caller: str = "明日の19時に4名で予約したいです", service: JudgeService | None = None) -> Subject:
    t = Turn(index=1, caller=caller, reply=AgentReply(text=text))
    return Subject(text=text, transcript=Transcript(turns=[t]), turn=t,
                   extras={"judge": service} if service is not None else {})


async def judge_all(check, texts: list[str], service: JudgeService) -> list[CheckResult]:
    import asyncio

    return list(await asyncio.gather(*(check.run(answer(t, service=service)) for t in texts)))


# --- verdicts ----------------------------------------------------------------------------


async def test_inline_criteria_pass_and_fail_with_reason(judge_server, cache_url):
    svc = make_service(judge_server, cache_url)
    check = compiled({"judge": "人数と時間を復唱し、名前を尋ねている"})
    good, bad = await check.run(answer(GOOD, service=svc)), await check.run(answer(BAD, service=svc))
    await svc.aclose()
    assert good.passed and not good.error and good.score == pytest.approx(0.9)
    assert "お名前" in good.reason and "threshold 0.5" in good.reason
    assert not bad.passed and not bad.error and bad.score == pytest.approx(0.2)
    assert "承りました" in bad.reason


async def test_rubric_threshold_and_override(judge_server, cache_url):
    svc = make_service(judge_server, cache_url)
    text = "ばっちりです"  # the judge gives 7/10
    strict = await compiled({"judge": {"rubric": "no-hallucinated-promises"}}).run(answer(text, service=svc))
    lenient = await compiled({"judge": {"rubric": "no-hallucinated-promises", "threshold": 0.6}}).run(
        answer(text, service=svc))
    await svc.aclose()
    assert not strict.passed and "threshold 0.8" in strict.reason  # the rubric's own threshold
    assert lenient.passed and "threshold 0.6" in lenient.reason
    assert judge_server.steps_calls == 0  # the rubric carries its steps


async def test_malformed_json_is_retried_then_a_judge_error(judge_server, cache_url):
    judge_server.malformed = -1
    svc = make_service(judge_server, cache_url)
    result = await compiled({"judge": {"rubric": "confirms-reservation-details"}}).run(answer(GOOD, service=svc))
    stats = svc.stats()
    await svc.aclose()
    assert result.error and not result.passed
    assert "malformed JSON 3 times" in result.reason
    assert judge_server.calls == 3  # one call, two retries
    assert stats["errors"] == 1 and stats["judged"] == 0


async def test_one_malformed_reply_is_retried_and_recovers(judge_server, cache_url):
    judge_server.malformed = 1
    svc = make_service(judge_server, cache_url)
    result = await compiled({"judge": {"rubric": "confirms-reservation-details"}}).run(answer(GOOD, service=svc))
    await svc.aclose()
    assert result.passed and not result.error
    assert judge_server.calls == 2


# --- cost: steps once, verdict cache, budget -------------------------------------------------


async def test_steps_generated_once_per_criteria(judge_server, cache_url):
    svc = make_service(judge_server, cache_url, concurrency=4)
    check = compiled({"judge": "人数と時間を復唱し、名前を尋ねている"})
    texts = [f"{GOOD} ({i})" for i in range(6)]
    results = await judge_all(check, texts, svc)
    await svc.aclose()
    assert all(r.passed for r in results)
    assert judge_server.steps_calls == 1
    assert judge_server.calls == len(texts) + 1


async def test_rubric_steps_cost_one_call_per_answer(judge_server, cache_url):
    svc = make_service(judge_server, cache_url)
    check = compiled({"judge": {"rubric": "confirms-reservation-details"}})
    await judge_all(check, [f"{GOOD} {i}" for i in range(5)], svc)
    await svc.aclose()
    assert judge_server.calls == 5 and judge_server.steps_calls == 0


async def test_unchanged_answers_make_zero_calls_on_rerun(judge_server, cache_url):
    texts = [GOOD, BAD, "ばっちりです", GOOD + " "]  # the last one normalises to the first
    check = compiled({"judge": "人数と時間を復唱し、名前を尋ねている"})
    first_svc = make_service(judge_server, cache_url)
    first = await judge_all(check, texts, first_svc)
    await first_svc.aclose()
    first_calls = judge_server.calls
    assert first_calls == 4  # steps + 3 distinct answers; the duplicate shared a verdict

    judge_server.reset()
    again_svc = make_service(judge_server, cache_url)  # a new process tomorrow: same cache file
    again = await judge_all(check, texts, again_svc)
    stats = again_svc.stats()
    await again_svc.aclose()
    assert judge_server.calls == 0
    assert stats["calls"] == 0 and stats["cached"] == len(texts)
    assert [r.passed for r in again] == [r.passed for r in first]
    assert [r.score for r in again] == [r.score for r in first]
    assert all("cached" in r.reason for r in again)


async def test_a_new_judge_fingerprint_seen_by_canaries_rejudges(judge_server, cache_url, tmp_path):
    canaries = tmp_path / "canaries.yaml"
    canaries.write_text(f"- {{answer: '{GOOD}', rubric: confirms-reservation-details, expected: pass}}\n",
                        encoding="utf-8")
    check = compiled({"judge": {"rubric": "confirms-reservation-details"}})
    svc = make_service(judge_server, cache_url)
    await check.run(answer(GOOD + "!", service=svc))
    await svc.aclose()

    judge_server.fingerprint = "fp-2"  # the provider silently updated the judge model
    judge_server.reset()
    svc = make_service(judge_server, cache_url, canaries=[str(canaries)])
    await svc.run_canaries()  # canaries are judged fresh and reveal the new fingerprint
    result = await check.run(answer(GOOD + "!", service=svc))
    await svc.aclose()
    assert "cached" not in result.reason
    assert judge_server.calls == 2


async def test_budget_cap_skips_and_counts(judge_server, cache_url):
    svc = make_service(judge_server, cache_url, max_calls=3, concurrency=2)
    check = compiled({"judge": {"rubric": "confirms-reservation-details"}})
    results = await judge_all(check, [f"{GOOD} {i}" for i in range(5)], svc)
    stats = svc.stats()
    await svc.aclose()
    skipped = [r for r in results if r.skipped]
    assert len(skipped) == 2 and all(r.reason == "skipped: judge budget spent" for r in skipped)
    assert all(not r.error for r in results)
    assert judge_server.calls == 3 and stats["calls"] == 3 and stats["skipped"] == 2


async def test_cost_cap_and_recorded_tokens(judge_server, cache_url):
    prices = {"judge-model": {"input_per_mtok": 1_000_000.0, "output_per_mtok": 0.0}}  # $1 per prompt token
    svc = make_service(judge_server, cache_url, prices=prices, max_cost_usd=1.0)
    check = compiled({"judge": {"rubric": "confirms-reservation-details"}})
    first = await check.run(answer(GOOD, service=svc))
    second = await check.run(answer(GOOD + "2", service=svc))
    stats = svc.stats()
    await svc.aclose()
    assert first.passed and second.skipped
    assert stats["tokens_in"] > 0 and stats["tokens_out"] > 0
    assert stats["cost"] == pytest.approx(stats["tokens_in"])


# --- reliability: repeats and canaries --------------------------------------------------------


@pytest.mark.parametrize("script, passed, median", [([9, 2, 8], True, 0.8), ([2, 9, 3], False, 0.3)])
async def test_repeats_take_the_majority_and_median(judge_server, cache_url, script, passed, median):
    judge_server.script = list(script)
    svc = make_service(judge_server, cache_url, repeats=3)
    result = await compiled({"judge": {"rubric": "confirms-reservation-details"}}).run(answer(GOOD, service=svc))
    await svc.aclose()
    assert result.passed is passed and result.score == pytest.approx(median)
    assert "median of 3" in result.reason
    assert judge_server.calls == 3


CANARIES = f"""\
canaries:
  - id: good-confirmation
    input: 明日の19時に4名で予約したいです
    answer: {GOOD}
    rubric: confirms-reservation-details
    expected: pass
  - id: bad-confirmation
    input: 明日の19時に4名で予約したいです
    answer: {BAD}
    criteria: 人数と時間を復唱し、名前を尋ねている
    expected: fail
"""


async def test_canaries_agree_then_disagree_when_the_judge_flips(judge_server, cache_url, tmp_path):
    path = tmp_path / "canaries.yaml"
    path.write_text(CANARIES, encoding="utf-8")
    svc = make_service(judge_server, cache_url, canaries=[str(path)])
    steady = await svc.run_canaries()
    judge_server.flip = True
    drifted = await svc.run_canaries()
    await svc.aclose()
    assert (steady["agreed"], steady["disagreed"]) == (2, 0)
    assert (drifted["agreed"], drifted["disagreed"]) == (0, 2)
    bad = next(d for d in drifted["details"] if d["canary"] == "bad-confirmation")
    assert bad["expected"] == "fail" and bad["got"] == "pass" and bad["source"].endswith(":7:5")


async def test_canary_file_mistake_is_a_positioned_config_error(judge_server, cache_url, tmp_path):
    path = tmp_path / "canaries.yaml"
    path.write_text("- answer: はい\n  rubric: polite-and-concise\n  expected: maybe\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        make_service(judge_server, cache_url, canaries=[str(path)])
    assert ":3:" in e.value.line() and "expected" in e.value.line()


# --- whole calls ---------------------------------------------------------------------------


async def test_call_judge_sees_every_turn(judge_server, cache_url):
    svc = make_service(judge_server, cache_url)
    turns = [
        Turn(0, None, AgentReply(text="お電話ありがとうございます。"), kind="greeting"),
        Turn(1, "明日19時に4名で予約したいです", AgentReply(text="明日19時に4名様ですね。")),
        Turn(2, "山田です", AgentReply(text="山田様、お名前を承りました。ご予約を確定します。")),
    ]
    transcript = Transcript(turns=turns, outcome=Outcome(intent="reservation"))
    subject = Subject(text="\n".join(t.reply.text for t in turns), transcript=transcript, extras={"judge": svc})
    result = await compiled({"call_judge": {"rubric": "polite-and-concise"}}, scope="call").run(subject)
    await svc.aclose()
    assert result.passed and result.turn is None
    prompt = judge_server.prompts[-1]
    for role, text in [("assistant", "お電話ありがとうございます。"), ("user", "山田です"),
                       ("assistant", "明日19時に4名様ですね。")]:
        assert f"'role': '{role}', 'content': '{text}'" in prompt or \
               f"'content': '{text}', 'role': '{role}'" in prompt


async def test_call_judge_is_for_the_case_expect_only():
    with pytest.raises(ConfigError) as e:
        compiled({"call_judge": "丁寧である"}, scope="turn")
    assert str(POS) in e.value.line()


# --- mistakes and missing services -------------------------------------------------------------


@pytest.mark.parametrize("raw, words", [
    ({"judge": {"rubric": "polite-and-concise", "criteria": "x"}}, "not both"),
    ({"judge": {"threshold": 0.5}}, "needs criteria"),
    ({"judge": {"criteria": "丁寧", "threshold": 1.5}}, "threshold"),
    ({"judge": {"rubric": "Polite And Concise"}}, "not a rubric name"),
    ({"judge": {"critera": "丁寧"}}, "did you mean 'criteria'"),
])
def test_bad_judge_settings_are_config_errors(raw, words):
    with pytest.raises(ConfigError) as e:
        compiled(raw)
    assert words in e.value.line() and e.value.line().startswith(str(POS))


async def test_no_judge_configured_is_an_error_result():
    result = await compiled({"judge": "丁寧"}).run(answer(GOOD))
    assert result.error and "no judge configured: add a judge: block to the suite" in result.reason


async def test_unknown_rubric_is_an_error_result_with_a_hint(judge_server, cache_url):
    svc = make_service(judge_server, cache_url)
    result = await compiled({"judge": {"rubric": "polite-and-consise"}}).run(answer(GOOD, service=svc))
    await svc.aclose()
    assert result.error and "did you mean 'polite-and-concise'" in result.reason
    assert judge_server.calls == 0


def test_a_broken_rubric_file_is_a_positioned_config_error(tmp_path, judge_server):
    (tmp_path / "rubrics").mkdir()
    (tmp_path / "rubrics" / "r.yaml").write_text("name: r\nversion: 1\ncriteria: ok\nthreshold: 2\n")
    with pytest.raises(ConfigError) as e:
        JudgeService.from_spec(JudgeSpec(base_url=judge_server.url or "http://127.0.0.1:9/v1", model="m"),
                               root=str(tmp_path), cache=JudgeCacheTables.open(f"sqlite:///{tmp_path / 'c.db'}"))
    assert "r.yaml:4:" in e.value.line() and "threshold" in e.value.line()


async def test_an_unreachable_judge_is_an_error_not_a_failure(cache_url, tmp_path):
    async with MockJudge() as server:
        url = server.url  # closed at once: nothing listens there any more
    svc = JudgeService.from_spec(JudgeSpec(base_url=url, model="m", api_key="sk-secret-123"), root=ROOT,
                                 cache=JudgeCacheTables.open(cache_url), retries=1, backoff_s=0.01)
    result = await compiled({"judge": {"rubric": "polite-and-concise"}}).run(answer(GOOD, service=svc))
    stats = svc.stats()
    await svc.aclose()
    assert result.error and not result.passed
    assert stats["calls"] == 2 and stats["errors"] == 1  # one retry, then a judge error
    assert "judge request failed" in result.reason and "sk-secret-123" not in result.reason


# --- through the runner ------------------------------------------------------------------------


class _Scripted(Target):
    """A tiny target whose agent answers from a script."""

    kind = "scripted-test"
    config_model = TargetConfig

    def __init__(self, replies: dict[str, str]):
        super().__init__(TargetConfig(kind=self.kind))
        self.replies = replies

    async def open(self, case: CaseSpec, ctx: CallContext) -> Conversation:
        replies = self.replies

        class _Conv(Conversation):
            async def reply(self, caller: str, *, kind: str = "say") -> AgentReply:
                return AgentReply(text=replies[caller])

        return _Conv()


async def test_runner_defers_judges_and_skips_them_after_an_exact_failure(judge_server, cache_url):
    cases = [
        CaseSpec(id="good", prompt="明日の19時に4名", expect=[
            CheckSpec.model_validate({"contains": "19時"}),
            CheckSpec.model_validate({"judge": {"rubric": "confirms-reservation-details"}})]),
        CaseSpec(id="exact-fails", prompt="予約したい", expect=[
            CheckSpec.model_validate({"contains": "19時"}),
            CheckSpec.model_validate({"judge": {"rubric": "confirms-reservation-details"}})]),
    ]
    target = _Scripted({"明日の19時に4名": GOOD, "予約したい": BAD})
    svc = make_service(judge_server, cache_url)
    results = []
    runner = Runner(target, on_result=results.append, extras={"judge": svc, "judge_when": "exact_passed"})
    await runner.run(plan_items(compile_case(c) for c in cases))
    await svc.aclose()
    by_id = {r.case_id: r for r in results}
    assert by_id["good"].status == "passed"
    assert by_id["good"].checks[-1].name == "judge" and "お名前" in by_id["good"].checks[-1].reason
    assert by_id["exact-fails"].status == "failed"
    assert by_id["exact-fails"].checks[-1].skipped
    assert judge_server.calls == 1


async def test_judge_in_the_case_expect_sees_the_whole_call_and_can_be_negated(judge_server, cache_url):
    svc = make_service(judge_server, cache_url)
    turns = [Turn(1, "予約したいです", AgentReply(text="かしこまりました。")),
             Turn(2, "4名です", AgentReply(text="ご予約を承りました。"))]
    subject = Subject(text="\n".join(t.reply.text for t in turns), transcript=Transcript(turns=turns),
                      extras={"judge": svc})
    result = await compiled({"judge": "予約内容を確認している", "negate": True}, scope="call").run(subject)
    await svc.aclose()
    assert result.passed and result.name == "not judge"  # the judge gave 2/10, negated
    judged = judge_server.prompts[-1].split("Test Case:", 1)[1]
    assert "予約したいです\n4名です" in judged and "ご予約を承りました。" in judged


async def test_a_cancelled_judgement_does_not_cancel_the_one_sharing_it(judge_server, cache_url):
    import asyncio

    judge_server.latency_s = 0.2
    svc = make_service(judge_server, cache_url)
    check = compiled({"judge": {"rubric": "confirms-reservation-details"}})
    first = asyncio.ensure_future(check.run(answer(GOOD, service=svc)))
    await asyncio.sleep(0.05)  # the first judgement is waiting on the judge
    second = asyncio.ensure_future(check.run(answer(GOOD, service=svc)))  # same answer: shares the call
    await asyncio.sleep(0.01)
    first.cancel()  # its case timed out
    result = await second
    await svc.aclose()
    assert first.cancelled()
    assert result.passed and not result.error
