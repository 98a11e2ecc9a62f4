"""Fault knobs of the sim agent, seen through the harness: each changes what a call records,
and the checks a user would write catch it. Also: case-level faults, and suites/chaos.yaml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.calls import compile_call, play_call
from harness.errors import InfraError
from harness.runner import Guard, WorkItem
from harness.spec import CaseSpec, Limits
from harness.targets.base import create

ROOT = Path(__file__).resolve().parent.parent

BOOKING_CALL = {
    "turns": [
        {"caller": "土曜日の19時に2名で予約したいです", "expect": [{"contains": "満席"}]},
        {"caller": "はい、お願いします"},
        {"caller": "高橋です"},
        {"caller": "はい"},
    ],
    "expect": [{"route": "primary"}, {"contains": "ご予約を承りました"}],
    "outcome": {"slots": {"time": "19:30", "party_size": 2}, "booking_exists": True, "transferred": False,
                "ended_by": "caller"},
    "budgets": {"p95_turn_ms": 250, "turn_ms": 1000},  # generous: only the latency knob should break them
}


async def play(faults: list[str], case_faults: list[Any] = (), retries: int = 6, **config: Any):
    case = CaseSpec.model_validate({"id": "chaos-t", **BOOKING_CALL, "faults": list(case_faults)})
    case._language = "ja"
    target = create({"kind": "sim", "latency_ms": 5, "faults": faults, **config})
    guard = Guard(Limits(retries=retries, backoff_s=0.01, backoff_max_s=0.05))
    transcript, checks = await play_call(target, WorkItem(compile_call(case), 0), guard)
    return transcript, {c.name for c in checks if not c.passed and not c.skipped}, guard


async def test_no_fault_passes_every_check():
    transcript, failed, _ = await play([])
    assert failed == set()
    assert {t.reply.route for t in transcript.turns[1:]} == {"primary"}


async def test_latency_slows_the_pace_and_the_budgets_fail():
    transcript, failed, _ = await play(["latency:350"])
    assert failed == {"max_p95_turn_ms"}
    assert transcript.outcome.pace["p50_turn_ms"] >= 350


async def test_primary_outage_is_served_by_the_fallback_and_the_route_check_fails():
    transcript, failed, _ = await play(["primary_outage"])
    assert failed == {"route", "contains"}  # other words ("ご予約を承りました" is the primary's), other route
    assert {t.reply.route for t in transcript.turns[1:]} == {"fallback"}
    assert transcript.outcome.side_effects["booking"]["time"] == "19:30"  # the call still succeeded


async def test_full_outage_transfers_at_once_and_the_booking_checks_fail():
    transcript, failed, _ = await play(["full_outage"])
    assert {"booking_exists", "transferred", "ended_by", "slots"} <= failed
    assert "contains" in failed  # turn 1 and the never-happened later turns
    assert transcript.outcome.transfer_reason == "outage" and transcript.outcome.ended_by == "agent"
    assert transcript.turns[1].reply.route == "none"


async def test_rate_limit_bursts_are_retried_and_counted():
    transcript, failed, guard = await play(["rate_limit:0.5"])
    assert failed == set()
    assert guard.stats.by_kind.get("rate_limited", 0) > 0
    assert sum(t.reply.attempts for t in transcript.turns) > len(transcript.turns) - 1


async def test_rate_limit_without_retries_is_an_infra_error():
    with pytest.raises(InfraError) as e:
        await play(["rate_limit:1"], retries=0)
    assert e.value.kind == "rate_limited"


async def test_model_update_changes_wording_and_fingerprint_but_not_the_facts():
    base, _, _ = await play([])
    transcript, failed, _ = await play(["model_update"])
    assert failed == {"contains"}  # the exact wording of the primary model is gone
    assert transcript.fingerprint != base.fingerprint and transcript.model == base.model
    assert transcript.outcome.slots == base.outcome.slots


async def test_hallucination_books_a_full_table_and_the_slot_and_text_checks_fail():
    transcript, failed, _ = await play(["hallucination:1.0"])
    assert {"slots", "contains"} <= failed
    effects = transcript.outcome.side_effects
    assert effects["booking"]["time"] == "19:00" and effects["overbooked"] is True


@pytest.mark.parametrize("case_faults", [["primary_outage"], [{"primary_outage": 1}]])
async def test_case_faults_add_to_the_targets(case_faults):
    transcript, failed, _ = await play(["latency:1"], case_faults=case_faults)
    assert "route" in failed and transcript.turns[1].reply.route == "fallback"


def test_chaos_suite_passes_when_the_agent_degrades_as_it_should(tmp_path):
    from harness.pipeline import RunOptions, run_suite

    options = RunOptions(store_url=f"sqlite:///{tmp_path}/h.db", write_reports=False, progress=False, lock=False)
    outcome = run_suite(str(ROOT / "suites" / "chaos.yaml"), options)
    bad = [(r.case_id, r.failing_reasons or r.error) for r in outcome.results if r.status != "passed"]
    assert bad == [] and int(outcome.exit_code) == 0
    ids = {r.case_id for r in outcome.results}
    assert {"chaos-fallback-ja", "chaos-outage-ja", "chaos-outage-goal-en"} <= ids
    outage = next(r for r in outcome.results if r.case_id == "chaos-outage-goal-en")
    assert outage.transcript.outcome.transfer_reason == "outage"


def test_chaos_suite_fails_when_every_call_loses_its_models(tmp_path):
    from harness.pipeline import RunOptions, run_suite

    options = RunOptions(store_url=f"sqlite:///{tmp_path}/h.db", write_reports=False, progress=False, lock=False,
                         target_options={"--sim-fault": ("full_outage",)})
    outcome = run_suite(str(ROOT / "suites" / "chaos.yaml"), options)
    assert int(outcome.exit_code) == 3  # every call lost its model: infra, said as such
    assert outcome.run.extra["verdict"]["class"] == "infra"
    fallback = next(r for r in outcome.results if r.case_id == "chaos-fallback-ja")
    assert fallback.status == "failed" and fallback.transcript.outcome.transferred
