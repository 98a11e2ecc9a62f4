"""Whose doing is it, when our inputs and the model both changed? Ask the model.

`harness attribute RUN` resends the reference run's stored inputs (its system prompt, model
name and parameters, and each case's recorded caller lines) for the cases that moved to
today's model. If the old inputs now answer differently too, the model moved; if they
answer as they did in the reference, our change did it. The finding is stored with the run's
verdict (evidence `attributed`, and `attribution` per case) so every report says which cases
went which way.

Only model targets can be asked this way (`openai`; the reference run must have recorded
its inputs, which runs do from this version on).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..normalize import normalize_text
from ..verdict import Evidence, Verdict
from .behaviour import _words, word_distance

__all__ = ["Attribution", "attribute_run", "old_target_raw"]

OVERRIDES = ("model", "system_prompt", "temperature", "max_tokens", "seed", "response_format")


@dataclass
class Attribution:
    case_id: str
    side: str  # model, ours, unknown
    old_answer: str | None  # what the reference's inputs got today
    reference_answer: str | None
    today_answer: str | None


def old_target_raw(raw: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    """Today's target settings (endpoint, key, limits) with the reference run's inputs."""
    if raw.get("kind") != "openai" or inputs.get("kind") != "openai":
        raise ConfigError("harness attribute resends old inputs to a model: it needs an openai target, in the run "
                          f"and in the reference (got {raw.get('kind')!r}, reference {inputs.get('kind')!r})")
    out = {k: v for k, v in raw.items() if k not in ("system_prompt", "system_prompt_file")}
    for key in OVERRIDES:
        if inputs.get(key) is not None:
            out[key] = inputs[key]
        else:
            out.pop(key, None)
    return out


def _answer(transcript: Any) -> str | None:
    if transcript is None:
        return None
    texts = [t.reply.text for t in transcript.turns if t.kind != "greeting"]
    return normalize_text("\n".join(texts)) if texts else None


def _side(old: str | None, reference: str | None, today: str | None) -> str:
    if old is None or reference is None:
        return "unknown"
    if old == reference:
        return "ours"  # the old inputs still answer as before: our change did it
    if today is not None and old == today:
        return "model"
    w = _words(old)
    to_ref = word_distance(w, _words(reference))
    to_today = word_distance(w, _words(today)) if today is not None else 1.0
    return "ours" if to_ref < to_today else "model"


async def _replay(target: Any, cases: list[tuple[Any, Any]]) -> list[Any]:
    from ..calls import compile_call, play_call, replay_case
    from ..runner import Guard, WorkItem

    guard = Guard(target.limits)
    sem = asyncio.Semaphore(max(1, target.limits.concurrency))

    async def one(case: Any, recorded: Any) -> Any:
        async with sem:
            try:
                transcript, _ = await play_call(target, WorkItem(compile_call(replay_case(case, recorded)), 0), guard)
                return transcript
            except Exception:  # noqa: BLE001 — a call that fails is "unknown", never a crash
                return None

    try:
        return await asyncio.gather(*(one(c, r) for c, r in cases))
    finally:
        await target.aclose()


def attribute_run(store: Any, suite: Any, run_ref: str, *, budget: int = 50) -> tuple[Verdict, list[Attribution], int]:
    """Resend the reference's inputs for the run's moved cases (at most `budget` calls); store
    and return the verdict with the finding, the per-case findings and the calls spent."""
    from ..loading import load_cases, suite_position_of, suite_target_raw
    from ..targets.base import create

    run = store.get_run(run_ref)
    if run is None:
        raise ConfigError(f"no run {run_ref!r} in the store {store.display_url}")
    verdict = Verdict.of_extra(run.extra)
    if verdict is None or not verdict.baseline_run:
        raise ConfigError(f"run {run.run_id} has no verdict with a reference run to resend inputs from")
    ref = store.get_run(verdict.baseline_run)
    inputs = ref.extra.get("inputs") if ref is not None else None
    if not isinstance(inputs, dict):
        raise ConfigError(f"the reference run {verdict.baseline_run} did not record its inputs (runs do from this "
                          "version on); nothing to resend")
    moved: list[str] = []
    for e in verdict.evidence:
        if e.kind in ("attribution", "flipped", "cases", "answers") or e.kind.startswith("behaviour_"):
            moved += e.cases
    moved = list(dict.fromkeys(moved))[:budget]
    if not moved:
        raise ConfigError(f"run {run.run_id}: no moved cases to attribute")
    specs = {c.id: c for c in load_cases(suite)}
    before = {r.case_id: r for r in store.results(ref.run_id) if r.repeat_index == 0}
    today = {r.case_id: r for r in store.results(run.run_id) if r.repeat_index == 0}
    todo = [cid for cid in moved if cid in specs and cid in before and before[cid].transcript is not None]
    target = create(old_target_raw(dict(suite_target_raw(suite)), inputs), suite_position_of(suite))
    target.root = suite.root
    replies = asyncio.run(_replay(target, [(specs[c], before[c].transcript) for c in todo]))
    found = []
    for cid, transcript in zip(todo, replies):
        old, reference = _answer(transcript), _answer(before[cid].transcript)
        now = _answer(today[cid].transcript) if cid in today else None
        found.append(Attribution(cid, _side(old, reference, now), old, reference, now))
    model = [a.case_id for a in found if a.side == "model"]
    ours = [a.case_id for a in found if a.side == "ours"]
    unknown = [a.case_id for a in found if a.side == "unknown"]
    detail = (f"resent the reference's inputs for {len(found)} case(s) to today's model: {len(model)} answer "
              f"differently too (the model moved), {len(ours)} answer as before (our change)")
    if unknown:
        detail += f", {len(unknown)} could not be told"
    verdict.evidence = [e for e in verdict.evidence if e.kind != "attributed"]
    verdict.evidence.append(Evidence("attributed", detail, {"cases": model + ours, "model": model, "ours": ours,
                                                             "unknown": unknown, "calls": len(found)}))
    verdict.extra["attribution"] = {a.case_id: a.side for a in found}
    run.extra["verdict"] = verdict.to_dict()
    store.set_run_extra(run.run_id, run.extra)
    return verdict, found, len(found)
