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
    from rich.console import Console
    from rich.markup import escape

    from ..errors import ConfigError, HarnessError, InfraError

    out, err = Console(highlight=False), Console(stderr=True, highlight=False)
    try:
        run_ref, sep, case_id = ref.rpartition(":")
        if not sep or not run_ref or not case_id:
            raise ConfigError(f"expected RUN:CASE, e.g. latest:rsv-goal-ja-001; got {ref!r}")
        recorded, result = _replay(suite_path, run_ref, case_id, repeat_index, store)
        if result.status in ("error", "not_run"):
            raise InfraError(result.error_kind or "connection", result.error or "the call did not complete")
    except HarnessError as e:
        err.print(f"error: {e.line()}", markup=False, soft_wrap=True)
        raise typer.Exit(int(e.exit_code)) from None
    transcript, checks = result.transcript, result.checks
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


def _replay(suite_path: str, run_ref: str, case_id: str, repeat_index: int, store_url: str | None):
    """The recorded call and the result of playing it again: the run's own plan, one item, executed."""
    from dataclasses import replace

    from ..calls import compile_call, replay_case
    from ..errors import ConfigError
    from ..pipeline import RunOptions, make_plan
    from ..stages.execute import execute
    from ..stages.record import open_store
    from ..workload import WorkItem

    # the suite's whole selection is loaded (a case outside its select: is not in the plan)
    plan = make_plan(suite_path, RunOptions(store_url=store_url, progress=False, write_reports=False, notify=False,
                                            lock=False))
    cases = {c.id: c for c in plan.cases}
    if case_id not in cases:
        raise ConfigError(f"no case {case_id!r} in the suite {plan.suite.name!r}")
    db = open_store(plan)
    try:
        run = db.get_run(run_ref if run_ref != "latest" else f"latest:{plan.suite.name}")
        if run is None:
            raise ConfigError(f"no run {run_ref!r} in the store")
        found = [r for r in db.results(run.run_id) if r.case_id == case_id and r.repeat_index == repeat_index]
    finally:
        db.close()
    if not found or found[-1].transcript is None:
        raise ConfigError(f"run {run.run_id} has no recorded call for {case_id!r} (repeat {repeat_index})")
    recorded = found[-1].transcript
    replayed = replace(plan.only([WorkItem(compile_call(replay_case(cases[case_id], recorded)), repeat_index)]),
                       judge=None)
    results = []
    execute(replayed, results.append)
    return recorded, results[0]
