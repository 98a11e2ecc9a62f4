"""What the notify tests share: a SQLite store, a fake Slack, and a finished run stored in it.

Import the fixtures by name (`from notify_fixtures import slack, store`) so pytest sees them
in the test module.
"""

from __future__ import annotations

import time

import pytest
from fake_slack import FakeSlack

from harness.records import CaseResult, RunInfo
from harness.store import Store


@pytest.fixture
def store(tmp_path):
    s = Store.open(f"sqlite:///{tmp_path / 'history.db'}")
    yield s
    s.close()


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        yield fake


def stored_run(store: Store, run_id: str, results: list[CaseResult], *, started: float | None = None,
               suite: str = "daily", model: str = "gpt-test", verdict: dict | None = None,
               seconds: float = 30, exit_code: int = 0) -> RunInfo:
    """A run of `results`, stored and finished `seconds` after it started, as the pipeline leaves it."""
    started = started or time.time() - 60
    run = RunInfo(run_id=run_id, suite=suite, model=model, target={"kind": "sim"}, started=started,
                  status="running")
    store.start_run(run)
    store.add_results(run_id, results)
    if verdict:
        run.extra["verdict"] = verdict  # as the pipeline does: analysis runs after the results are stored
    counts = {"passed": 0, "failed": 0, "error": 0, "not_run": 0}
    for r in results:
        counts[r.status] += 1
    store.finish_run(run_id, status="complete", ended=started + seconds, exit_code=exit_code, counts=counts)
    run.status, run.ended, run.counts = "complete", started + seconds, counts
    return run
