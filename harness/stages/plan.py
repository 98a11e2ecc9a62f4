"""Load and plan: a suite and its cases become one `Plan`, everything a run needs, built and checked.

Every user mistake (a suite, a golden file, a target's settings, a command-line option, a
judge rubric) surfaces here as a ConfigError, before anything runs or is stored.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ExitCode
from ..records import CaseResult, RunInfo
from ..spec import CaseSpec, Suite
from ..targets import Target
from ..workload import WorkItem


@dataclass
class RunOptions:
    """What the command line (or another front) adds to a suite."""

    topics: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    repeat: int | None = None
    concurrency: int | None = None
    # the target's own options by flag, e.g. {"--sim-fault": ("model_update",)} (targets.TargetOption)
    target_options: dict[str, tuple[str, ...]] = field(default_factory=dict)
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
    accept_baseline: bool = False  # make this run the suite's baseline (any finished run that is not infra)
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


@dataclass
class Plan:
    """Everything one run needs, built: nothing here is read from a file again."""

    suite: Suite
    cases: list[CaseSpec]  # the selected cases of this shard
    items: list[WorkItem]  # cases × repeats, in the order they are played
    target: Target
    options: RunOptions
    judge: Any = None  # the suite's JudgeService, once the store it caches in is open (`with_judge`)

    def only(self, items: list[WorkItem]) -> "Plan":
        """The same plan playing other items (a replay plays one recorded call)."""
        return replace(self, items=items)


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


def make_plan(suite_path: str, options: RunOptions) -> Plan:
    """Load and validate everything a run needs; raises ConfigError before anything runs."""
    from ..loading import load_cases, load_suite
    from ..workload import compile_case, plan_items, stamp_inputs

    env = options.env if options.env is not None else dict(os.environ)
    suite = load_suite(suite_path, env=env)
    cases = load_cases(suite, topics=options.topics, tags=options.tags, ids=options.ids,
                       exclude_tags=options.exclude_tags)
    if options.shard:
        from ..sharding import parse_shard, select_shard

        cases = select_shard(cases, parse_shard(options.shard))
    target = build_target(suite, options)
    repeat = options.repeat or suite.repeat
    compiled = [compile_case(c, repeat) for c in cases]
    stamp_inputs(target, compiled)
    if options.repeat:
        for c in compiled:
            c.repeat = options.repeat
    items = plan_items(compiled)
    return Plan(suite=suite, cases=cases, items=items, target=target, options=options)


def build_target(suite: Suite, options: RunOptions) -> Target:
    """The suite's target with the command line's target options and concurrency applied."""
    from ..loading import suite_position_of, suite_target_raw
    from ..targets import target_class, with_cli_options

    position_of = suite_position_of(suite)
    raw = with_cli_options(suite_target_raw(suite), options.target_options)
    if options.concurrency:
        raw["limits"] = {**dict(raw.get("limits") or {}), "concurrency": options.concurrency}
    target = target_class(raw, position_of).from_config(raw, position_of)
    target.root = suite.root
    return target


def suite_store_url(suite) -> str | None:
    """The suite's store URL, with a relative SQLite path read against the project root (like
    every other path in a suite), so the history is the same from any working directory."""
    url = suite.store.url
    if url and url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        rel = url[len("sqlite:///"):]
        if rel and not rel.startswith(":memory:"):
            return "sqlite:///" + os.path.join(suite.root, rel)
    return url


def with_judge(plan: Plan, store) -> Plan:
    """The plan with its suite's judge built (rubric and canary mistakes surface here, before the run)."""
    plan.judge = _judge_service(plan.suite, store)
    return plan


def _judge_service(suite, store):
    """The suite's LLM judge, if it has one; rubric and canary mistakes surface here, before the run.

    Its verdict cache sits beside the history, and the store hands its tables over: in the
    store's own database when that is a server (PostgreSQL), which every runner sharing the
    history reaches, so a CI job on a fresh machine does not pay to judge yesterday's answers
    again; else in a SQLite file next to the history file (`.harness/judge-cache.db`).
    """
    if suite.judge is None:
        return None
    from ..judge import JudgeService

    tables = store.judge_cache(suite.root) if suite.judge.cache else None
    try:
        return JudgeService.from_spec(suite.judge, root=suite.root, cache=tables)
    except BaseException:
        if tables is not None:
            tables.close()
        raise


def run_info(plan: Plan) -> RunInfo:
    """The run's record as it starts: what runs, against what, from which commit and host."""
    suite, options = plan.suite, plan.options
    described = plan.target.describe()
    return RunInfo(
        run_id=options.run_id or new_run_id(),
        suite=suite.name,
        suite_file=os.path.relpath(suite.file, suite.root) if suite.file else "",
        target=described,
        model=described.get("model"),
        git_sha=git_sha(suite.root),
        host=socket.gethostname(),
        started=time.time(),
        planned=len(plan.items),
        group=options.group or _default_group(options),
        # the store adds the process itself; `inputs` is what `harness attribute` resends later
        extra={**({"shard": options.shard} if options.shard else {}), "inputs": plan.target.inputs()},
    )


def _default_group(options: RunOptions) -> str | None:
    from ..sharding import default_group

    return default_group(options.env)
