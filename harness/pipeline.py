"""The composition root: load → plan → execute → record → analyse → publish.

The CLI, the scheduler, `harness replay` and the pytest plugin are thin fronts over
`make_plan` and `run_plan` (`run_suite` does both). Each stage lives in `harness.stages`
and never calls back here; this module only wires them, in order.
"""

from __future__ import annotations

import gc
import time
from dataclasses import replace
from typing import Any, Callable

from .errors import ConfigError, ExitCode
from .records import CaseResult
from .stages.analyse import _accept_if_green, _analyse, _objectives, exit_code_for
from .stages.plan import Plan, RunOptions, RunOutcome, git_sha, make_plan, new_run_id, suite_store_url
from .stages.publish import TREND_WINDOW_S, _notify, check_notifiers, write_reports

__all__ = [
    "TREND_WINDOW_S", "Plan", "RunOptions", "RunOutcome", "exit_code_for", "git_sha", "make_plan", "new_run_id",
    "run_plan", "run_suite", "suite_store_url", "write_reports",
]


def run_suite(
    suite_path: str,
    options: RunOptions | None = None,
    *,
    console: Any = None,
    on_result: Callable[[CaseResult], None] | None = None,
) -> RunOutcome:
    """Run one suite end to end. Every result is in the store before any report is written."""
    options = options or RunOptions()
    threshold = gc.get_threshold()
    gc.set_threshold(RUN_GC_THRESHOLD, *threshold[1:])  # see _GC_NOTE
    try:
        plan = make_plan(suite_path, options)
        check_notifiers(plan.suite)  # a notifier's settings are wrong: say so before the run
        gc.freeze()  # the cases live as long as the run: see _GC_NOTE
        return run_plan(plan, console=console, on_result=on_result)
    finally:
        gc.unfreeze()  # a long-lived process (the pytest plugin) collects all of it later
        gc.set_threshold(*threshold)


def run_plan(plan: Plan, *, console: Any = None, on_result: Callable[[CaseResult], None] | None = None) -> RunOutcome:
    """Execute, record, analyse and publish a plan, holding the suite's lock in the store while it runs."""
    from .stages.record import open_store

    store = open_store(plan)
    try:
        if not plan.options.lock:
            return _run(plan, store, console, on_result)
        from .locks import DEFAULT_STALE_AFTER_S, SuiteLock

        options = plan.options = replace(plan.options, run_id=plan.options.run_id or new_run_id())
        lock_name = plan.suite.name + (f" shard {options.shard}" if options.shard else "")
        with SuiteLock(store, lock_name, run_id=options.run_id,
                       stale_after=options.lock_stale_s or DEFAULT_STALE_AFTER_S) as lock:
            return _run(plan, store, console, on_result, lock)
    finally:
        store.close()


# _GC_NOTE: a run builds a large heap that stays alive until the run ends: the loaded cases,
# then every result. Python's cyclic garbage collector walks its oldest generation again
# whenever it has grown by a quarter, so at 10,000 cases it spent a quarter of the run's
# CPU, and then half the analysis's, re-walking objects that cannot be garbage yet.
# `gc.freeze()` moves everything alive into a generation the collector skips: after loading
# (the cases), before the calls (everything set up) and after them (the results). Reference counting still frees what is no
# longer used; only cycles wait, until `run_suite` returns and unfreezes.
#
# The youngest generation is collected after RUN_GC_THRESHOLD more objects instead of 700.
# Fifty calls in flight keep some 5,000 objects alive (coroutines, futures, buffers) and
# every collection of the youngest generation walks all of them, while the results that
# pile up meanwhile trigger one every fifty results or so: that was 0.7 s of a 10,000-case
# run, holding the GIL while replies waited. At 20,000 it is about 0.1 s; the cyclic
# garbage waiting for a collection stays at a few megabytes.
RUN_GC_THRESHOLD = 20_000


def _run(plan: Plan, store, console, on_result, lock=None) -> RunOutcome:
    from .stages.execute import execute
    from .stages.plan import run_info, with_judge
    from .stages.record import Recording

    suite, items, options = plan.suite, plan.items, plan.options
    with_judge(plan, store)
    run = run_info(plan)
    from . import tracing

    traced = tracing.start_run(suite.tracing, run, options.env)  # None when tracing is off
    recording = Recording(store, run)
    add = recording.add
    results: list[CaseResult] = []
    progress = None
    if options.progress and console is not None:
        from .report import ProgressReporter

        progress = ProgressReporter(console)
        progress.start(len(items))

    from .records import cut_long_answers, max_stored_answer_chars

    answer_limit = max_stored_answer_chars()

    def collect(result: CaseResult) -> None:
        cut_long_answers(result, answer_limit)  # bounded and masked before the store and reports see it
        add(result)
        results.append(result)
        if progress is not None:
            progress.advance(result.status)
        if on_result is not None:
            on_result(result)

    status, message = "complete", None
    interrupted = False
    stats = None
    try:
        gc.freeze()  # with everything the run set up (modules, store, plan): see _GC_NOTE
        stats = execute(plan, collect, run, lock)
        if suite.repeat_max and not options.repeat and not stats.aborted:
            _adaptive(plan, store, run, results, collect, lock)
    except KeyboardInterrupt:
        status, message = "incomplete", "stopped by a signal before every case ran"
        interrupted = True
    finally:
        if progress is not None:
            progress.stop()
        recording.close()  # every finished result is durable before anything is reported
        gc.freeze()  # the results live as long as the run: see _GC_NOTE
    counts = {"passed": 0, "failed": 0, "error": 0, "not_run": 0}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    aborted = stats.aborted if stats else None
    if aborted:
        status, message = "aborted", aborted
    if recording.problem:  # the store refused some results: they are in the spill file, the run is incomplete
        status, message, aborted = "incomplete", recording.problem, None
    lost = lock is not None and not lock.check()  # taken over: stop, keep what finished, touch nothing of theirs
    if lost:
        status, message, aborted = "incomplete", lock.lost_message(len(results), len(items)), None
    code = exit_code_for(counts, aborted) if status != "incomplete" else ExitCode.UNREACHABLE
    if interrupted and status == "incomplete" and not lost and not recording.problem:
        code = ExitCode.INTERRUPTED
    if message:
        from .secrets import mask

        message = mask(message)  # a store or target error line may quote a server that echoed a key
    run.ended = time.time()
    run.status = status
    run.counts = counts
    run.exit_code = int(code)
    run.message = message
    if stats is not None:
        run.extra["requests"] = stats.requests.requests
        run.extra["retries"] = stats.requests.retries
        run.extra["infra_errors"] = dict(stats.requests.by_kind)
    warnings: list[str] = []
    if status == "aborted" and stats is not None and stats.misconfigured:
        # a mistake of ours (a wrong key, an unknown model alias), not an outage: stored as
        # aborted, no verdict, and the run ends as a configuration error (exit 2)
        run.exit_code = int(ExitCode.CONFIG)
        recording.finish()
        raise ConfigError(f"the target refused the run's configuration: {stats.misconfigured}")
    if status != "incomplete":
        code = _analyse(store, suite, run, results, items, code, warnings,
                        accepting=options.accept_baseline)
        code = _objectives(store, suite, run, results, code, warnings)
        run.exit_code = int(code)
    if traced is not None:
        traced.finish(run, warnings)
    recording.finish(warnings)
    if options.accept_baseline:
        _accept_if_green(store, run, counts, warnings)
    outcome = RunOutcome(run=run, results=results, exit_code=code, warnings=warnings)
    if lost:
        return outcome  # the new holder reports and notifies this suite's run
    notify = options.notify and bool(suite.notify.destinations)
    if options.write_reports or notify:
        from .report.summary import summarize

        outcome.summary = summarize(results, run)  # once: every report and notifier reads this one
    if options.write_reports:
        outcome.reports = write_reports(suite, run, results, options, store, summary=outcome.summary)
        if "html" in outcome.reports:
            run.extra["report_file"] = outcome.reports["html"].name
    if notify:
        _notify(suite, run, results, store, outcome)
    return outcome


def _adaptive(plan: Plan, store, run, results: list[CaseResult], collect, lock) -> None:
    """`repeat: {min, max}`: more calls, round by round, only for cases whose answer or outcome
    moved and is not settled yet (harness.analysis.adaptive); the calls spent go in run.extra."""
    from .analysis.adaptive import Rounds
    from .stages.execute import execute

    suite = plan.suite
    rounds = Rounds(store, suite, run, plan.items, suite.repeat_max)
    spent = len(plan.items)
    for _ in range(suite.repeat_max - suite.repeat):
        more = rounds.next_round(results)
        if not more:
            break
        spent += len(more)
        if execute(replace(plan.only(more), judge=None), collect, run, lock).aborted:
            break
    run.extra["calls"] = {"spent": spent, "cases": len({it.compiled.case.id for it in plan.items}),
                          "repeat": {"min": suite.repeat, "max": suite.repeat_max}}
