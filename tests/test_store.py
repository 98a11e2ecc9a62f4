"""The history store and its writer, on a temporary SQLite file, through the public API."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from harness.errors import ConfigError, HarnessError
from harness.records import AgentReply, CaseResult, CheckResult, Outcome, RunInfo, Transcript, Turn
from harness.store import MIGRATIONS, SCHEMA_VERSION, ResultWriter, Store, StoreError, redact_url, scrub_secrets

REPO = Path(__file__).resolve().parents[1]


def make_result(i: int, *, repeat: int = 0, status: str = "failed") -> CaseResult:
    """A result with every field set to something other than its default."""
    transcript = Transcript(
        turns=[
            Turn(index=0, caller=None, kind="greeting", reply=AgentReply(text="お電話ありがとうございます", total_ms=12.5)),
            Turn(
                index=1,
                caller="明日の19時に4名で予約したいです",
                reply=AgentReply(
                    text=f"19時に4名様ですね #{i}",
                    first_token_ms=80.25,
                    total_ms=410.5,
                    model="gpt-test",
                    fingerprint="fp_abc",
                    route="fallback",
                    tokens_in=120,
                    tokens_out=30,
                    cost=0.0021,
                    state={"intent": "reservation", "slots": {"party_size": 4, "time": "19:00"}},
                    ended=True,
                    attempts=2,
                ),
            ),
        ],
        outcome=Outcome(
            intent="reservation",
            slots={"party_size": 4, "time": "19:00"},
            transferred=True,
            transfer_reason="caller asked",
            ended_by="agent",
            side_effects={"booking": {"id": "B1", "ok": True}},
        ),
    )
    return CaseResult(
        case_id=f"rsv-{i:04d}",
        topic="reservation",
        tags=["restaurant", "ja"],
        repeat_index=repeat,
        status=status,  # type: ignore[arg-type]
        checks=[
            CheckResult(name="contains", passed=True, args={"text": "19時"}, turn=1),
            CheckResult(
                name="judge", passed=False, score=0.25, reason="no name asked", args={"rubric": "r"}, weight=2.0, error=True
            ),
        ],
        transcript=transcript,
        error="timeout: no answer in 30 s",
        error_kind="timeout",
        started=1_700_000_000.123456 + i,
        duration_ms=523.75,
        source=f"golden/reservation/basic.yaml:{i + 3}",
    )


def make_run(run_id: str = "20260101-000000-aaaa", suite: str = "daily", started: float = 1_700_000_000.5) -> RunInfo:
    return RunInfo(
        run_id=run_id,
        suite=suite,
        suite_file="suites/daily.yaml",
        target={"kind": "openai", "model": "primary", "base_url": "http://127.0.0.1:4000/v1", "max_tokens": 200},
        model="primary",
        git_sha="deadbeef",
        host="ci-runner-1",
        started=started,
        planned=12,
        group="job-7",
        message=None,
        extra={"trigger": "cron", "shard": [1, 3]},
    )


@pytest.fixture
def store(tmp_path: Path):
    s = Store.open(None, root=str(tmp_path))
    yield s
    s.close()


def test_default_location_and_sqlite_settings(tmp_path: Path, store: Store) -> None:
    assert (tmp_path / ".harness" / "history.db").is_file()
    assert store.schema_version() == SCHEMA_VERSION
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_run_and_results_round_trip(store: Store) -> None:
    info = make_run()
    store.start_run(info)
    results = [make_result(i) for i in range(3)]
    results.append(CaseResult(case_id="faq-1", topic="question", tags=[], repeat_index=4, status="not_run"))
    store.add_results(info.run_id, results)

    got = store.get_run(info.run_id)
    assert got is not None
    process = got.extra.pop("process")
    assert process == {"host": socket.gethostname(), "pid": os.getpid()}
    assert got == info
    assert store.results(info.run_id) == results
    assert store.results(info.run_id, case_ids=["faq-1", results[1].case_id]) == [results[1], results[3]]
    assert store.results(info.run_id, case_ids=[]) == []

    # the per-result summary columns are filled for trend queries
    from harness.store.schema import results as results_table

    with store.engine.connect() as conn:
        row = conn.execute(select(results_table).where(results_table.c.case_id == "rsv-0001")).one()
    assert (row.model, row.fingerprint, row.tokens_in, row.tokens_out) == ("gpt-test", "fp_abc", 120, 30)
    assert row.cost == pytest.approx(0.0021)


def test_odd_values_in_an_agents_state_are_stored_as_text(store: Store) -> None:
    class Booking:
        def __str__(self) -> str:
            return "Booking(B7)"

    info = make_run()
    store.start_run(info)
    plain_odd, not_utf8 = make_result(1), make_result(2)
    plain_odd.transcript.turns[1].reply.state = {"intent": "reservation", "booking": Booking(), "tags": ("a", "b")}
    not_utf8.transcript.turns[1].reply.state = {"booking": Booking(), "raw": b"\xff\xfe"}
    store.add_results(info.run_id, [plain_odd, not_utf8])  # nothing a target reports may cost a result
    first, second = store.results(info.run_id)
    assert first.transcript.turns[1].reply.state == {"intent": "reservation", "booking": "Booking(B7)",
                                                     "tags": ["a", "b"]}
    assert second.transcript.turns[1].reply.state == {"booking": "Booking(B7)", "raw": "b'\\xff\\xfe'"}
    assert first.transcript.turns[1].reply.text == "19時に4名様ですね #1"  # stored as UTF-8, read back the same


def test_re_adding_results_replaces_instead_of_doubling(store: Store) -> None:
    store.start_run(make_run())
    run_id = make_run().run_id
    batch = [make_result(i) for i in range(5)]
    store.add_results(run_id, batch)
    store.add_results(run_id, batch)
    assert len(store.results(run_id)) == 5

    again = make_result(2, status="passed")
    store.add_results(run_id, [again, make_result(2, repeat=1)])
    stored = {(r.case_id, r.repeat_index): r for r in store.results(run_id)}
    assert len(stored) == 6
    assert stored[("rsv-0002", 0)].status == "passed"


def test_start_run_twice_is_an_error(store: Store) -> None:
    store.start_run(make_run())
    with pytest.raises(HarnessError, match="already in the store"):
        store.start_run(make_run())


def test_list_get_prefix_and_latest(store: Store) -> None:
    store.start_run(make_run("20260101-a1", "daily", started=100.0))
    store.start_run(make_run("20260102-b2", "post-merge", started=200.0))
    store.start_run(make_run("20260103-c3", "daily", started=300.0))

    assert [r.run_id for r in store.list_runs()] == ["20260103-c3", "20260102-b2", "20260101-a1"]
    assert [r.run_id for r in store.list_runs(suite="daily")] == ["20260103-c3", "20260101-a1"]
    assert [r.run_id for r in store.list_runs(since=150.0)] == ["20260103-c3", "20260102-b2"]
    assert [r.run_id for r in store.list_runs(limit=1)] == ["20260103-c3"]

    assert store.get_run("20260102").run_id == "20260102-b2"
    assert store.get_run("latest").run_id == "20260103-c3"
    assert store.get_run("latest:post-merge").run_id == "20260102-b2"
    assert store.get_run("latest:nope") is None
    assert store.get_run("zzz") is None
    assert store.get_run("2026010_") is None  # LIKE wildcards are taken literally
    with pytest.raises(ConfigError, match="matches several runs"):
        store.get_run("2026")


def test_finish_run_records_counts_and_status(store: Store) -> None:
    info = make_run()
    store.start_run(info)
    store.finish_run(
        info.run_id,
        status="aborted",
        ended=1_700_000_100.0,
        exit_code=3,
        counts={"passed": 3, "failed": 1, "error": 8},
        message="circuit breaker opened: connection refused",
    )
    got = store.get_run(info.run_id)
    assert (got.status, got.ended, got.exit_code) == ("aborted", 1_700_000_100.0, 3)
    assert got.counts == {"passed": 3, "failed": 1, "error": 8}
    assert got.message == "circuit breaker opened: connection refused"

    with pytest.raises(HarnessError, match="not in the store"):
        store.finish_run("nope", status="complete", ended=1.0, exit_code=0, counts={})
    with pytest.raises(HarnessError, match="not one of"):
        store.finish_run(info.run_id, status="done", ended=1.0, exit_code=0, counts={})


def test_secrets_never_reach_the_store(store: Store) -> None:
    info = make_run()
    info.target = {
        "kind": "openai",
        "api_key": "sk-live-123",
        "base_url": "https://user:hunter2@gateway.example/v1",
        "headers": {"Authorization": "Bearer tok-999", "X-Trace": "ok"},
        "notify": [{"webhook_url": "https://hooks.slack.test/T0/B0/xyz"}],
        "max_tokens": 256,
    }
    info.extra = {"access_token": "tok-777", "note": "fine"}
    store.start_run(info)

    with store.engine.connect() as conn:
        raw = conn.execute(text("SELECT target, extra FROM runs")).one()
    dumped = " ".join(str(v) for v in raw)
    for secret in ("sk-live-123", "hunter2", "tok-999", "hooks.slack.test", "tok-777"):
        assert secret not in dumped
    got = store.get_run(info.run_id)
    assert got.target["max_tokens"] == 256
    assert got.target["headers"]["X-Trace"] == "ok"
    assert got.target["base_url"] == "https://user:***@gateway.example/v1"
    assert got.extra["note"] == "fine"
    assert scrub_secrets({"password": None}) == {"password": None}


def test_display_url_hides_the_password() -> None:
    assert redact_url("postgresql+psycopg://harness:s3cret@db.local:5432/h") == (
        "postgresql+psycopg://harness:***@db.local:5432/h"
    )
    # Nothing listens on port 1: the error is one line and does not carry the password.
    with pytest.raises(StoreError) as err:
        Store.open("postgresql+psycopg://harness:s3cret@127.0.0.1:1/h?connect_timeout=2")
    assert "s3cret" not in str(err.value)
    assert "harness:***@127.0.0.1:1" in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not a valid SQLAlchemy database URL"):
        Store.open("not a url")


# ---------------------------------------------------------------- schema versions

V1_LAYOUT = """
CREATE TABLE meta (key VARCHAR(64) PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
CREATE TABLE runs (
    run_id VARCHAR(128) PRIMARY KEY, suite VARCHAR(200) NOT NULL, suite_file TEXT NOT NULL,
    target JSON NOT NULL, model VARCHAR(200), git_sha VARCHAR(64), host VARCHAR(200) NOT NULL,
    started DOUBLE NOT NULL, ended DOUBLE, status VARCHAR(16) NOT NULL, exit_code INTEGER,
    planned INTEGER NOT NULL, counts JSON NOT NULL, extra JSON NOT NULL
);
CREATE TABLE results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id VARCHAR(128) NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    case_id VARCHAR(200) NOT NULL, topic VARCHAR(100) NOT NULL, tags JSON NOT NULL,
    repeat_index INTEGER NOT NULL, status VARCHAR(16) NOT NULL, error TEXT, error_kind VARCHAR(64),
    started DOUBLE NOT NULL, duration_ms DOUBLE NOT NULL, source TEXT, model VARCHAR(200),
    fingerprint VARCHAR(200), tokens_in INTEGER, tokens_out INTEGER, cost DOUBLE,
    checks JSON NOT NULL, transcript JSON,
    CONSTRAINT uq_results_run_case_repeat UNIQUE (run_id, case_id, repeat_index)
);
CREATE INDEX ix_results_run_id ON results (run_id);
CREATE INDEX ix_results_case_id ON results (case_id);
INSERT INTO runs VALUES ('old-run', 'daily', 'suites/daily.yaml', '{"kind": "sim"}', NULL, NULL, 'h',
    100.0, 160.0, 'complete', 0, 1, '{"passed": 1}', '{}');
INSERT INTO results (run_id, case_id, topic, tags, repeat_index, status, started, duration_ms, checks, transcript)
    VALUES ('old-run', 'faq-1', 'question', '["ja"]', 0, 'passed', 101.0, 5.0,
    '[{"name": "contains", "passed": true}]', '{"turns": [{"index": 0, "caller": "hi", "reply": {"text": "yo"}}]}');
"""


def test_migrations_end_at_the_schema_version() -> None:
    versions = [v for v, _, _ in MIGRATIONS]
    assert versions == list(range(1, SCHEMA_VERSION + 1))


def test_v1_store_is_migrated_forward(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(V1_LAYOUT)

    store = Store.open(f"sqlite:///{db}")
    try:
        assert store.schema_version() == SCHEMA_VERSION
        old = store.get_run("old-run")
        assert (old.status, old.counts, old.group, old.message) == ("complete", {"passed": 1}, None, None)
        (res,) = store.results("old-run")
        assert res.transcript.last_text == "yo" and res.checks[0].passed
        assert res.transcript.turns[0].kind == "say"

        store.start_run(make_run("new-run"))
        assert store.get_run("new-run").group == "job-7"
        names = {ix["name"] for ix in inspect(store.engine).get_indexes("runs")}
        assert "ix_runs_suite_started" in names
    finally:
        store.close()


def test_failed_migration_leaves_the_old_store_untouched(tmp_path: Path) -> None:
    db = tmp_path / "odd.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(V1_LAYOUT)
        # a hand-made column the v2 step also wants to add: the step fails halfway
        conn.execute("ALTER TABLE runs ADD COLUMN message TEXT")

    with pytest.raises(StoreError, match="duplicate column"):
        Store.open(f"sqlite:///{db}")
    with sqlite3.connect(db) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(runs)")]
        version = conn.execute("SELECT value FROM meta").fetchone()[0]
    assert "group" not in columns  # added by the step before it failed, then rolled back
    assert version == "1"


def test_store_from_a_newer_harness_is_refused(tmp_path: Path) -> None:
    Store.open(None, root=str(tmp_path)).close()
    db = tmp_path / ".harness" / "history.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))

    with pytest.raises(ConfigError) as err:
        Store.open(None, root=str(tmp_path))
    assert str(err.value) == (
        f"store schema version {SCHEMA_VERSION + 1} is newer than this harness ({SCHEMA_VERSION}); upgrade harness"
    )


# The layout a v2 harness made: v1 plus runs.group, runs.message and the (suite, started) index.
V2_LAYOUT = V1_LAYOUT.replace("('schema_version', '1')", "('schema_version', '2')") + """
ALTER TABLE runs ADD COLUMN "group" VARCHAR(200);
ALTER TABLE runs ADD COLUMN message TEXT;
CREATE INDEX ix_runs_suite_started ON runs (suite, started);
"""

# What notify and locks created on first use before v3 (their DDL on SQLite, verbatim),
# with a row each that must survive the upgrade.
OLD_ON_FIRST_USE_TABLES = """
CREATE TABLE pending_deliveries (
    id INTEGER NOT NULL, run_id VARCHAR(128) NOT NULL, destination VARCHAR(64) NOT NULL,
    payload JSON NOT NULL, created_at DOUBLE NOT NULL, attempts INTEGER NOT NULL, last_error TEXT,
    PRIMARY KEY (id)
);
CREATE INDEX ix_pending_deliveries_run_id ON pending_deliveries (run_id);
CREATE TABLE suite_locks (
    name VARCHAR(255) NOT NULL, owner VARCHAR(200) NOT NULL, host VARCHAR(200) NOT NULL,
    pid INTEGER NOT NULL, run_id VARCHAR(128), acquired DOUBLE NOT NULL, heartbeat DOUBLE NOT NULL,
    PRIMARY KEY (name)
);
INSERT INTO pending_deliveries (run_id, destination, payload, created_at, attempts, last_error)
    VALUES ('old-run', 'slack', '{"text": "old"}', 150.0, 3, 'HTTP 500');
INSERT INTO suite_locks VALUES ('nightly', 'elsewhere:1:abcd', 'elsewhere', 1, 'old-run', 150.0, 9e12);
"""

FEATURE_TABLES = ("pending_deliveries", "baselines", "baseline_cases", "suite_locks", "schedule_state")


def table_layout(engine, name: str) -> dict:
    """Columns, keys and indexes of one table as the database reports them."""
    insp = inspect(engine)
    return {
        "columns": sorted((c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(name)),
        "primary_key": insp.get_pk_constraint(name)["constrained_columns"],
        "foreign_keys": sorted(
            (tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]),
             fk["options"].get("ondelete"))
            for fk in insp.get_foreign_keys(name)
        ),
        "indexes": sorted((ix["name"], tuple(ix["column_names"]), bool(ix["unique"])) for ix in insp.get_indexes(name)),
    }


def fresh_layouts(tmp_path: Path) -> dict[str, dict]:
    with Store.open(f"sqlite:///{tmp_path / 'fresh.db'}") as fresh:
        return {name: table_layout(fresh.engine, name) for name in FEATURE_TABLES}


def test_a_new_store_is_made_at_v3_with_the_feature_tables(store: Store) -> None:
    assert SCHEMA_VERSION == 6 and store.schema_version() == 6
    assert set(FEATURE_TABLES) <= set(inspect(store.engine).get_table_names())
    assert table_layout(store.engine, "baseline_cases")["foreign_keys"] == [
        (("baseline_id",), "baselines", ("id",), "CASCADE")
    ]


def test_v2_store_is_migrated_to_v3_and_gains_the_feature_tables(tmp_path: Path) -> None:
    db = tmp_path / "v2.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(V2_LAYOUT)
        assert not set(FEATURE_TABLES) & {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}

    with Store.open(f"sqlite:///{db}") as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert {name: table_layout(store.engine, name) for name in FEATURE_TABLES} == fresh_layouts(tmp_path)
        assert "input_fp" in {c["name"] for c in inspect(store.engine).get_columns("results")}  # v6
        assert store.get_run("old-run").counts == {"passed": 1}
        # the features work on the upgraded store without creating anything themselves
        from harness.analysis.baseline import accept_baseline, load_baseline
        from harness.locks import SuiteLock, holder
        from harness.notify.pending import add, list_pending
        from harness.scheduling.state import last_fire, record_fire

        add(store, "old-run", "slack", {"text": "hi"}, 1, "HTTP 503")
        assert [p.destination for p in list_pending(store)] == ["slack"]
        with SuiteLock(store, "daily", run_id="r1"):
            assert holder(store, "daily").run_id == "r1"
        when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
        record_fire(store, "daily", when)
        assert last_fire(store, "daily") == when
        accept_baseline(store, "old-run", by="tester")
        assert set(load_baseline(store, "daily").cases) == {"faq-1"}


def test_tables_made_by_the_old_on_first_use_code_are_kept(tmp_path: Path) -> None:
    db = tmp_path / "used.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(V2_LAYOUT + OLD_ON_FIRST_USE_TABLES)

    with Store.open(f"sqlite:///{db}") as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert {name: table_layout(store.engine, name) for name in FEATURE_TABLES} == fresh_layouts(tmp_path)
        from harness.locks import holder
        from harness.notify.pending import list_pending

        (kept,) = list_pending(store)
        assert (kept.run_id, kept.payload, kept.attempts, kept.last_error) == ("old-run", {"text": "old"}, 3, "HTTP 500")
        assert holder(store, "nightly").owner == "elsewhere:1:abcd"
    with Store.open(f"sqlite:///{db}") as again:  # opening a current store changes nothing
        assert again.schema_version() == SCHEMA_VERSION


def test_a_foreign_table_with_a_feature_name_stops_the_upgrade(tmp_path: Path) -> None:
    db = tmp_path / "foreign.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(V2_LAYOUT + "CREATE TABLE baselines (id INTEGER PRIMARY KEY, label TEXT);")

    with pytest.raises(HarnessError, match="store table baselines exists but lacks column.*not created by harness"):
        Store.open(f"sqlite:///{db}")
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        version = conn.execute("SELECT value FROM meta").fetchone()[0]
    assert version == "2" and "pending_deliveries" not in tables  # the whole step rolled back


# ---------------------------------------------------------------- the writer


async def test_writer_under_many_asyncio_tasks(store: Store) -> None:
    store.start_run(make_run())
    run_id = make_run().run_id
    tasks_n, per_task = 50, 100
    writer = ResultWriter(store, run_id)

    async def worker(t: int) -> None:
        for k in range(per_task):
            writer.add(make_result(t * per_task + k))
            if k % 10 == 0:
                await asyncio.sleep(0)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(t) for t in range(tasks_n)))
    await writer.aflush()
    elapsed = time.perf_counter() - t0
    assert writer.pending == 0 and writer.written == tasks_n * per_task
    await writer.aclose()
    print(f"\nwriter: {tasks_n * per_task / elapsed:,.0f} results/s on SQLite")
    stored = store.results(run_id)
    assert len(stored) == tasks_n * per_task
    assert {r.case_id for r in stored} == {f"rsv-{i:04d}" for i in range(tasks_n * per_task)}


def test_writer_writes_promptly_when_idle(store: Store) -> None:
    store.start_run(make_run())
    run_id = make_run().run_id
    with ResultWriter(store, run_id) as writer:
        writer.add(make_result(1))
        deadline = time.monotonic() + 5
        while writer.written < 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert writer.written == 1  # without any flush
    assert len(store.results(run_id)) == 1


def test_writer_reports_a_failed_write(store: Store) -> None:
    writer = ResultWriter(store, "no-such-run")  # foreign key: the run was never started
    writer.add(make_result(1))
    with pytest.raises(StoreError) as err:
        writer.flush(timeout=10)
    message = str(err.value)
    assert store.display_url in message and "FOREIGN KEY" in message and "\n" not in message
    with pytest.raises(StoreError):
        writer.add(make_result(2))
    with pytest.raises(StoreError):
        writer.close()


CHILD = textwrap.dedent(
    """
    import sys, time
    from harness.records import CaseResult, Transcript, Turn, AgentReply, Outcome, RunInfo
    from harness.store import Store, ResultWriter

    store = Store.open(sys.argv[1])
    store.start_run(RunInfo(run_id="crash-run", suite="crash", started=time.time()))
    writer = ResultWriter(store, "crash-run")
    flushed = 0
    for i in range(1_000_000):
        turns = [Turn(0, "hello", AgentReply("hi", model="m")), Turn(1, "bye", AgentReply("bye", ended=True))]
        writer.add(CaseResult(f"c{i}", "question", [], 0, "passed",
                              transcript=Transcript(turns, Outcome(intent="faq")), started=time.time()))
        if i % 3 == 2:
            writer.flush()
            flushed = i + 1
        print(f"added {i + 1} flushed {flushed}", flush=True)
        time.sleep(0.002)
    """
)


def test_results_reported_flushed_survive_sigkill(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, url], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    added = flushed = 0
    try:
        for line in proc.stdout:
            _, added_s, _, flushed_s = line.split()
            added, flushed = int(added_s), int(flushed_s)
            if flushed >= 60:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
        stderr = proc.stderr.read()
        proc.stderr.close()
    assert flushed >= 60, f"child stopped early: {stderr}"

    store = Store.open(url)
    try:
        stored = {r.case_id for r in store.results("crash-run")}
        assert {f"c{i}" for i in range(flushed)} <= stored
        assert len(stored) <= added + 1  # nothing invented (one more may be mid-print)
        run = store.get_run("crash-run")
        assert run.status == "incomplete" and run.message
        assert store.list_runs()[0].status == "incomplete"
        assert store.mark_stale_running(older_than_s=3600) == 1
        assert store.mark_stale_running(older_than_s=3600) == 0
    finally:
        store.close()


def test_mark_stale_running_keeps_live_runs(store: Store) -> None:
    live = make_run("live", started=time.time())  # this process: alive
    store.start_run(live)
    remote = make_run("remote", started=time.time() - 7200)
    remote.extra = {"process": {"host": "some-other-host", "pid": 1}}
    store.start_run(remote)
    fresh_remote = make_run("fresh-remote", started=time.time())
    fresh_remote.extra = {"process": {"host": "some-other-host", "pid": 1}}
    store.start_run(fresh_remote)

    assert store.get_run("live").status == "running"
    assert store.get_run("remote").status == "running"  # cannot tell from here until it is old
    assert store.mark_stale_running(older_than_s=3600) == 1
    assert {r.run_id: r.status for r in store.list_runs()} == {
        "live": "running",
        "remote": "incomplete",
        "fresh-remote": "running",
    }
