"""`harness replay SUITE RUN:CASE`: play a stored call again, exactly, and say whether the agent still answers the same.

A goal-driven caller (rule-based or an LLM) decides its lines as the call goes; the store
keeps them as turns. Replaying feeds those recorded lines back as a scripted call, against
the suite's target as it is configured now, so a failure can be reproduced, debugged and
compared after a fix without the caller's model.
"""

from __future__ import annotations

from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)


def replay(
    suite_path: str = typer.Argument(
        ..., metavar="SUITE", help="The suite the call ran in, e.g. suites/post-merge.yaml"
    ),
    ref: str = typer.Argument(
        ..., metavar="RUN:CASE", help="Run id (or prefix, or 'latest') and case id, e.g. latest:rsv-goal-ja-001"
    ),
    repeat_index: int = typer.Option(
        0, "--repeat-index", metavar="N", min=0, help="Which repeat of the case to replay."
    ),
    store: Optional[str] = typer.Option(None, "--store", metavar="URL", help="SQLAlchemy URL of the history store."),
) -> None:
    """Replay one recorded call turn by turn; exit 0 when every agent reply is the same as recorded, 1 when not."""
    import asyncio

    from rich.console import Console
    from rich.markup import escape

    from ..errors import ConfigError, HarnessError

    out, err = Console(highlight=False), Console(stderr=True, highlight=False)
    try:
        run_ref, sep, case_id = ref.rpartition(":")
        if not sep or not run_ref or not case_id:
            raise ConfigError(f"expected RUN:CASE, e.g. latest:rsv-goal-ja-001; got {ref!r}")
        recorded, case, target = _load(suite_path, run_ref, case_id, repeat_index, store)
        transcript, checks = asyncio.run(_play(target, case, repeat_index))
    except HarnessError as e:
        err.print(f"error: {e.line()}", markup=False, soft_wrap=True)
        raise typer.Exit(int(e.exit_code)) from None
    same = True
    for old, new in zip(recorded.turns, transcript.turns):
        match = old.reply.text == new.reply.text
        same &= match
        who = "caller" if old.kind != "silence" else "(silence)"
        if old.index > 0:
            out.print(f"[bold]{old.index} {who}:[/bold] {escape(old.caller or '')}")
        mark = "[green]same[/green]" if match else "[red]differs[/red]"
        out.print(f"   agent ({escape(new.reply.route or '-')}, {mark}): {escape(new.reply.text)}")
        if not match:
            out.print(f"   [dim]recorded:[/dim] {escape(old.reply.text)}")
    same &= len(recorded.turns) == len(transcript.turns)
    failed = [c for c in checks if not c.passed and not c.skipped]
    for c in failed:
        out.print(f"[red]✗[/red] {escape(c.name)}: {escape(c.reason)}")
    verdict = "reproduced exactly" if same else "the agent answered differently"
    out.print(f"{verdict}; {len(failed)} check(s) failing")
    raise typer.Exit(0 if same else 1)


def _load(suite_path: str, run_ref: str, case_id: str, repeat_index: int, store_url: str | None):
    from ..calls import replay_case
    from ..errors import ConfigError
    from ..loading import load_cases, load_suite, suite_position_of, suite_target_raw
    from ..store import Store
    from ..targets.base import create

    suite = load_suite(suite_path)
    cases = {c.id: c for c in load_cases(suite)}
    if case_id not in cases:
        raise ConfigError(f"no case {case_id!r} in the suite {suite.name!r}")
    from ..pipeline import suite_store_url

    db = Store.open(store_url or suite_store_url(suite), root=suite.root)
    try:
        run = db.get_run(run_ref if run_ref != "latest" else f"latest:{suite.name}")
        if run is None:
            raise ConfigError(f"no run {run_ref!r} in the store")
        found = [r for r in db.results(run.run_id) if r.case_id == case_id and r.repeat_index == repeat_index]
    finally:
        db.close()
    if not found or found[-1].transcript is None:
        raise ConfigError(f"run {run.run_id} has no recorded call for {case_id!r} (repeat {repeat_index})")
    recorded = found[-1].transcript
    target = create(suite_target_raw(suite), suite_position_of(suite))
    target.root = suite.root
    return recorded, replay_case(cases[case_id], recorded), target


async def _play(target, case, repeat_index: int):
    from ..calls import compile_call, play_call
    from ..runner import Guard, WorkItem

    try:
        return await play_call(target, WorkItem(compile_call(case), repeat_index), Guard(target.limits))
    finally:
        await target.aclose()
