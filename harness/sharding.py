"""Split a suite's cases across CI jobs, and read the shards of one job back as one run.

A case's shard depends on its id alone (a hash), never on its position in the files, so
adding a case moves no other case to another shard and a flaky case always lands on the
same machine. All repeats of a case stay in one shard: consistency checks compare them.

Shards of one CI job write separate runs tagged with one `group`; `group_summary` and
`group_results` read those runs back as if they were one.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from .errors import ConfigError
from .records import CaseResult, RunInfo

if TYPE_CHECKING:  # the store pulls in SQLAlchemy; keep `harness run --help` light
    from .store import Store

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_T = TypeVar("_T")

# Worst first: the status a group shows when its shards disagree.
_STATUS_ORDER = ("incomplete", "running", "aborted", "complete")


@dataclass(frozen=True)
class Shard:
    """Shard `index` (1-based) of `total`."""

    index: int
    total: int

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"


def parse_shard(text: str) -> Shard:
    """`"2/4"` → Shard(2, 4); anything else is a one-line ConfigError."""
    m = _SHARD.match(text or "")
    if not m:
        raise ConfigError(f"--shard {text!r}: expected K/N, e.g. 2/4 (the second of four shards)")
    index, total = int(m[1]), int(m[2])
    if total < 1 or not 1 <= index <= total:
        raise ConfigError(f"--shard {text!r}: K must be between 1 and N, and N at least 1")
    return Shard(index, total)


def shard_of(case_id: str, total: int) -> int:
    """The shard (1-based) a case id belongs to: sha1 of the id, modulo `total`."""
    digest = hashlib.sha1(case_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % total + 1


def select_shard(cases: Sequence[_T], shard: Shard | None, *, key=lambda c: c.id) -> list[_T]:
    """The cases of one shard, in their original order (all of them when `shard` is None)."""
    if shard is None or shard.total == 1:
        return list(cases)
    return [c for c in cases if shard_of(key(c), shard.total) == shard.index]


def default_group(env: Mapping[str, str] | None = None) -> str | None:
    """The run group from the environment: HARNESS_RUN_GROUP, else the GitHub Actions run.

    A re-run attempt of a GitHub workflow is its own group, so a retried job never mixes its
    results with the failed attempt's.
    """
    env = os.environ if env is None else env
    if env.get("HARNESS_RUN_GROUP"):
        return env["HARNESS_RUN_GROUP"]
    if env.get("GITHUB_RUN_ID"):
        return f"gh-{env['GITHUB_RUN_ID']}-{env.get('GITHUB_RUN_ATTEMPT', '1')}"
    return None


# ---------------------------------------------------------------- reading a group


def group_runs(store: Store, group: str, *, suite: str | None = None) -> list[RunInfo]:
    """Every run of a group (optionally of one suite), oldest first."""
    runs = [store.get_run(run_id) for run_id in store.group_run_ids(group, suite=suite)]
    return [run for run in runs if run is not None]


def group_results(store: Store, group: str, *, suite: str | None = None) -> list[CaseResult]:
    """The results of every run in a group, as one run's results (shard by shard)."""
    out: list[CaseResult] = []
    for run in group_runs(store, group, suite=suite):
        out.extend(store.results(run.run_id))
    return out


def group_summary(store: Store, group: str, *, suite: str | None = None) -> RunInfo | None:
    """One RunInfo standing for the whole group: counts and plan summed, the worst status,
    the earliest start, the latest end, the highest exit code. None if the group is empty."""
    runs = group_runs(store, group, suite=suite)
    if not runs:
        return None
    counts: dict[str, int] = {}
    for run in runs:
        for k, v in run.counts.items():
            counts[k] = counts.get(k, 0) + int(v)
    statuses = [run.status for run in runs]
    status = next((s for s in _STATUS_ORDER if s in statuses), statuses[0])
    ended = [run.ended for run in runs]
    codes = [run.exit_code for run in runs if run.exit_code is not None]
    suites = sorted({run.suite for run in runs})
    messages = [f"{run.run_id}: {run.message}" for run in runs if run.message]
    return RunInfo(
        run_id=group,
        suite=suites[0] if len(suites) == 1 else "+".join(suites),
        suite_file=runs[0].suite_file,
        target=runs[0].target,
        model=runs[0].model,
        git_sha=runs[0].git_sha,
        host=",".join(sorted({run.host for run in runs if run.host})),
        started=min(run.started for run in runs),
        ended=None if any(e is None for e in ended) else max(e for e in ended if e is not None),
        status=status,
        exit_code=max(codes) if len(codes) == len(runs) else None,
        planned=sum(run.planned for run in runs),
        counts=counts,
        group=group,
        message="; ".join(messages) or None,
        extra={"runs": [run.run_id for run in runs], "shards": len(runs)},
    )
