"""The composition root: load → plan → run → check → store → report.

The CLI, the scheduler and the pytest plugin are thin fronts over `run_suite`. Nothing
else wires the stages together.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError, ExitCode, HarnessError
from .records import CaseResult, RunInfo


@dataclass
class RunOptions:
    """What the command line (or another front) adds to a suite."""

    topics: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    repeat: int | None = None
    concurrency: int | None = None
    sim_faults: tuple[str, ...] = ()
    store_url: str | None = None
    report_dir: str | None = None
    json_path: str | None = None
    junit_path: str | None = None
    html_path: str | None = None
    write_reports: bool = True
    notify: bool = True  # send the suite's Slack / Datadog notifications
    progress: bool = True
    env: dict[str, str] | None = None
    run_id: str | None = None
    accept_baseline: bool = False  # make this run the suite's baseline if every case passed
    shard: str | None = None  # "K/N": run only shard K of N (harness.sharding)
    group: str | None = None  # run group shared by the shards of one CI job; default from env
    lock: bool = True  # hold the suite's lock in the store while running (harness.locks)
    lock_stale_s: float | None = None  # a silent lock holder is presumed dead after this


@dataclass
class RunOutcome:
    run: RunInfo
    results: list[CaseResult]
    exit_code: ExitCode
    reports: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    summary: Any = None  # the run's RunSummary (harness.report.summary), when reports or notifiers needed it


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


def git_sha(root: str) -> str | None:
    for var in ("HARNESS_GIT_SHA", "GITHUB_SHA", "CI_COMMIT_SHA"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def exit_code_for(counts: dict[str, int], aborted: str | None) -> ExitCode:
    if aborted:
        return ExitCode.UNREACHABLE
    if counts.get("failed"):
        return ExitCode.FAILED
    if counts.get("error") or counts.get("not_run"):
        return ExitCode.UNREACHABLE
    return ExitCode.OK


def _apply_sim_faults(raw: dict[str, Any], faults: tuple[str, ...]) -> dict[str, Any]:
    if not faults:
        return raw
    if raw.get("kind") != "sim":
        raise ConfigError(f"--sim-fault applies to the sim target only (this suite's target is {raw.get('kind')!r})")
    from .targets.sim import parse_fault

    for f in faults:
        try:
            parse_fault(f)
        except ValueError as e:
            raise ConfigError(f"--sim-fault {f}: {e}") from None
    raw = dict(raw)
    raw["faults"] = list(raw.get("faults") or []) + list(faults)
    return raw


def _default_group(options: RunOptions) -> str | None:
    from .sharding import default_group

    return default_group(options.env)


def prepare(suite_path: str, options: RunOptions):
    """Load and validate everything a run needs; raises ConfigError before anything runs."""
    from .analysis.inputs import stamp_inputs
    from .loading import load_cases, load_suite, suite_position_of, suite_target_raw
    from .runner import compile_case, plan_items
    from .targets import create

    env = options.env if options.env is not None else dict(os.environ)
    suite = load_suite(suite_path, env=env)
    cases = load_cases(suite, topics=options.topics, tags=options.tags, ids=options.ids,
                       exclude_tags=options.exclude_tags)
    if options.shard:
        from .sharding import parse_shard, select_shard

        cases = select_shard(cases, parse_shard(options.shard))
    raw = _apply_sim_faults(dict(suite_target_raw(suite)), options.sim_faults)
    if options.concurrency:
        raw["limits"] = {**dict(raw.get("limits") or {}), "concurrency": options.concurrency}
    target = create(raw, suite_position_of(suite))
    target.root = suite.root
    if suite.notify.destinations:
        from .notify import notifiers_of

        notifiers_of(suite.notify, suite_position_of(suite))  # a notifier's settings are wrong: say so before the run
    repeat = options.repeat or suite.repeat
    compiled = [compile_case(c, repeat) for c in cases]
    stamp_inputs(target, compiled)
    if options.repeat:
        for c in compiled:
            c.repeat = options.repeat
    items = plan_items(compiled)
    return suite, target, items


def suite_store_url(suite) -> str | None:
    """The suite's store URL, with a relative SQLite path read against the project root (like
    every other path in a suite), so the history is the same from any working directory."""
    url = suite.store.url
    if url and url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        rel = url[len("sqlite:///"):]
        if rel and not rel.startswith(":memory:"):
            return "sqlite:///" + os.path.join(suite.root, rel)
    return url


def run_suite(
    suite_path: str,
    options: RunOptions | None = None,
    *,
    console: Any = None,
    on_result: Callable[[CaseResult], None] | None = None,
) -> RunOutcome:
    """Run one suite end to end. Every result is in the store before any report is written."""
    from .store import ResultWriter, Store

    options = options or RunOptions()
    threshold = gc.get_threshold()
    gc.set_threshold(RUN_GC_THRESHOLD, *threshold[1:])  # see _GC_NOTE
    try:
        suite, target, items = prepare(suite_path, options)
        gc.freeze()  # the cases live as long as the run: see _GC_NOTE
        store = Store.open(options.store_url or suite_store_url(suite), root=suite.root)
        try:
            if not options.lock:
                return _run(suite, target, items, store, options, console, on_result, ResultWriter)
            from .locks import DEFAULT_STALE_AFTER_S, SuiteLock

            options = replace(options, run_id=options.run_id or new_run_id())
            lock_name = suite.name + (f" shard {options.shard}" if options.shard else "")
            with SuiteLock(store, lock_name, run_id=options.run_id,
                           stale_after=options.lock_stale_s or DEFAULT_STALE_AFTER_S) as lock:
                return _run(suite, target, items, store, options, console, on_result, ResultWriter, lock)
        finally:
            store.close()
    finally:
        gc.unfreeze()  # a long-lived process (the pytest plugin) collects all of it later
        gc.set_threshold(*threshold)


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


def _judge_service(suite, store):
    """The suite's LLM judge, if it has one; rubric and canary mistakes surface here, before the run.

    Its verdict cache sits beside the history: in the store's own database when that is a
    server (PostgreSQL), which every runner sharing the history reaches, so a CI job on a
    fresh machine does not pay to judge yesterday's answers again; else in a SQLite file next
    to the history file (`.harness/judge-cache.db`).
    """
    if suite.judge is None:
        return None
    from .judge import JudgeService

    return JudgeService.from_spec(suite.judge, root=suite.root, cache=store.judge_cache() if store.shared else None)


def _run(suite, target, items, store, options, console, on_result, ResultWriter, lock=None) -> RunOutcome:
    from .runner import Runner

    judge = _judge_service(suite, store)

    described = target.describe()
    run = RunInfo(
        run_id=options.run_id or new_run_id(),
        suite=suite.name,
        suite_file=os.path.relpath(suite.file, suite.root) if suite.file else "",
        target=described,
        model=described.get("model"),
        git_sha=git_sha(suite.root),
        host=socket.gethostname(),
        started=time.time(),
        planned=len(items),
        group=options.group or _default_group(options),
        extra={"shard": options.shard} if options.shard else {},  # the store adds the process itself
    )
    run.extra["inputs"] = target.inputs()  # what `harness attribute` resends later
    store.start_run(run)
    writer = ResultWriter(store, run.run_id)
    results: list[CaseResult] = []
    progress = None
    if options.progress and console is not None:
        from .report import ProgressReporter

        progress = ProgressReporter(console)
        progress.start(len(items))

    def collect(result: CaseResult) -> None:
        writer.add(result)
        results.append(result)
        if progress is not None:
            progress.advance(result.status)
        if on_result is not None:
            on_result(result)

    extras = {"judge": judge, "judge_when": suite.judge.when} if judge is not None else {}
    runner = Runner(target, on_result=collect, extras=extras)
    status, message = "complete", None
    stats = None
    try:
        gc.freeze()  # with everything the run set up (modules, store, plan): see _GC_NOTE
        stats = _run_async(runner, items, target, judge, run, lock)
        if suite.repeat_max and not options.repeat and not stats.aborted:
            _adaptive(store, suite, run, runner, items, results, target, lock)
    except KeyboardInterrupt:
        status, message = "incomplete", "stopped by a signal before every case ran"
    finally:
        if progress is not None:
            progress.stop()
        writer.close()  # every finished result is durable before anything is reported
        gc.freeze()  # the results live as long as the run: see _GC_NOTE
    counts = {"passed": 0, "failed": 0, "error": 0, "not_run": 0}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    aborted = stats.aborted if stats else None
    if aborted:
        status, message = "aborted", aborted
    lost = lock is not None and not lock.check()  # taken over: stop, keep what finished, touch nothing of theirs
    if lost:
        status, message, aborted = "incomplete", lock.lost_message(len(results), len(items)), None
    code = exit_code_for(counts, aborted) if status != "incomplete" else ExitCode.UNREACHABLE
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
    if status != "incomplete":
        code = _analyse(store, suite, run, results, items, code, warnings)
        run.exit_code = int(code)
    store.finish_run(run.run_id, status=status, ended=run.ended, exit_code=run.exit_code, counts=counts,
                     message=message)
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


def _adaptive(store, suite, run: RunInfo, runner, items, results: list[CaseResult], target, lock) -> None:
    """`repeat: {min, max}`: more calls, round by round, only for cases whose answer or outcome
    moved and is not settled yet (harness.analysis.adaptive); the calls spent go in run.extra."""
    from .analysis.adaptive import Rounds

    rounds = Rounds(store, suite, run, items, suite.repeat_max)
    spent = len(items)
    for _ in range(suite.repeat_max - suite.repeat):
        more = rounds.next_round(results)
        if not more:
            break
        spent += len(more)
        if _run_async(runner, more, target, None, run, lock).aborted:
            break
    run.extra["calls"] = {"spent": spent, "cases": len({it.compiled.case.id for it in items}),
                          "repeat": {"min": suite.repeat, "max": suite.repeat_max}}


def _notify(suite, run: RunInfo, results: list[CaseResult], store, outcome: RunOutcome) -> None:
    """The suite's notifiers, after the results are stored. A failed delivery is kept as pending
    in the store and becomes a warning; it fails the run only when the suite asks for that."""
    from .notify import deliver

    problems = deliver(run, results, suite.notify, store, summary=outcome.summary)
    outcome.warnings.extend(problems)
    if problems and suite.notify.fail_on_error and outcome.exit_code == ExitCode.OK:
        outcome.exit_code = ExitCode.UNREACHABLE


def _analyse(store, suite, run: RunInfo, results: list[CaseResult], items, code: ExitCode,
             warnings: list[str]) -> ExitCode:
    """Classify the run against its baseline (verdict into run.extra) and fold it into the exit code.

    Results are already durable; a store error here costs the verdict, never the results.
    """
    from .analysis import analyse_run

    reducers = {it.compiled.case.id: it.compiled.case.reducer for it in items}
    try:
        verdict = analyse_run(store, suite, run, results, reducers=reducers)
    except HarnessError as e:
        warnings.append(f"no verdict: {e.line()}")
        return code
    return verdict.cls.exit_code(code)


def _accept_if_green(store, run: RunInfo, counts: dict[str, int], warnings: list[str]) -> None:
    """Make the run the suite's baseline: recorded behaviour, failing cases included (any
    finished run that is not infra); the line says how many fail."""
    from .analysis import accept_baseline
    from .verdict import Verdict, VerdictClass

    verdict = Verdict.of_extra(run.extra)
    if run.status != "complete" or (verdict is not None and verdict.cls is VerdictClass.INFRA):
        why = "it is infra" if run.status == "complete" else f"it is {run.status}"
        warnings.append(f"run {run.run_id} was not accepted as the baseline: {why}; accept a finished run "
                        "whose calls reached the model")
        return
    try:
        accept_baseline(store, run.run_id, note="run --accept-baseline")
    except HarnessError as e:
        warnings.append(f"run {run.run_id} was not accepted as the baseline: {e.line()}")
        return
    run.extra["baseline_accepted"] = True
    run.extra["baseline_failing"] = counts.get("failed", 0)


def _run_async(runner, items, target, judge=None, run: RunInfo | None = None, lock=None):
    async def main():
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        if lock is not None:  # a lock taken over stops the run like a signal (no new cases start)
            lock.on_lost = lambda: _call_soon(loop, task.cancel)
        installed = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, task.cancel)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        try:
            if judge is not None:
                # canaries first: they tell a changed judge from a changed agent
                run.extra["judge"] = {"canaries": await judge.run_canaries()}
            return await runner.run(items)
        except asyncio.CancelledError:
            raise KeyboardInterrupt from None
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            await target.aclose()
            if judge is not None:
                await judge.aclose()
                run.extra.setdefault("judge", {})["stats"] = judge.stats()

    # The result writer thread shares the GIL with the event loop. With Python's default 5 ms
    # switch interval, a reply that arrives while the writer holds the GIL waits up to 5 ms
    # before the loop may read it: at 1,000 replies a second that added 2 to 3 ms to every
    # call's measured latency. Half a millisecond hands the GIL back to the loop promptly.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, RUN_SWITCH_INTERVAL_S))
    try:
        return asyncio.run(main())
    finally:
        sys.setswitchinterval(interval)


RUN_SWITCH_INTERVAL_S = 0.0005


def _call_soon(loop, fn) -> None:
    try:
        loop.call_soon_threadsafe(fn)
    except RuntimeError:  # the loop has already finished: the end-of-run check sees the loss
        pass


def write_reports(suite, run: RunInfo, results: list[CaseResult], options: RunOptions, store=None,
                  summary=None) -> dict[str, Path]:
    """JSON, JUnit and HTML for one run, into the suite's report folder unless paths are given.

    With the store at hand, also the trend page focused on this run (its verdict on top,
    then the suite's history); `<suite>-latest.html` is a copy of it, the page to open.
    """
    from .report import write_json, write_junit, write_run_html

    out_dir = Path(options.report_dir or os.path.join(suite.root, suite.output.dir))
    written: dict[str, Path] = {}
    stem = f"{suite.name}-{run.run_id}"
    plan = [
        ("json", options.json_path, suite.output.json_, write_json, ".json"),
        ("junit", options.junit_path, suite.output.junit, write_junit, ".junit.xml"),
        ("html", options.html_path, suite.output.html, write_run_html, ".html"),
    ]
    for name, explicit, enabled, writer, suffix in plan:
        if not explicit and not enabled:
            continue
        path = Path(explicit) if explicit else out_dir / f"{stem}{suffix}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            writer(path, run, results, summary)
        except OSError as e:
            raise HarnessError(f"cannot write the {name} report to {path}: {e.strerror or e}") from None
        written[name] = path
    latest_source = written.get("html")
    if store is not None and suite.output.html:
        from .report.trend_html import write_trend_report

        try:
            written["trend"] = latest_source = write_trend_report(
                store, suite=suite.name, since_s=TREND_WINDOW_S, out_dir=out_dir, focus_run=run.run_id,
                summary=summary)
        except OSError as e:
            raise HarnessError(f"cannot write the trend report to {out_dir}: {e.strerror or e}") from None
    if latest_source is not None and not options.html_path:
        latest = out_dir / f"{suite.name}-latest.html"
        try:
            latest.write_bytes(latest_source.read_bytes())
            written["html_latest"] = latest
        except OSError:
            pass
    return written


TREND_WINDOW_S = 30 * 86400  # the trend page after a run shows the last 30 days
