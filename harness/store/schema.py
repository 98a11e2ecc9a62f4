"""The store's tables, as SQLAlchemy Core objects.

Core tables (not ORM classes) because the store writes thousands of result rows per run
with executemany and rebuilds the plain dataclasses of `harness.records` itself; an ORM
identity map would only cost time. Types are portable (SQLite and PostgreSQL): JSON
columns for nested data, DOUBLE for epoch seconds so sub-millisecond precision survives.

These definitions are always the *latest* layout. `migrations.py` upgrades older stores
to it; when a column is added here, a migration step must be added there too.

Every table the history database holds is defined here, including those of features
downstream of the store (notify, analysis, locks, scheduling): one owner means one
version number and one upgrade path, instead of each feature creating its own table on
first use. The queries live in this package too (`store.py` and the small repositories
beside it): the rest of harness calls named methods and never sees SQL.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Double,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# Bump together with a new step in migrations.MIGRATIONS.
# Text, not String(n), in runs and results for every value that comes from a suite, a case
# or a model server (case ids, topics, suite names, model names, fingerprints): PostgreSQL
# enforces a VARCHAR length and one long value would fail a whole batch of results (v4).
SCHEMA_VERSION = 6

# The same in the analysis, lock and schedule tables (v5): TEXT, except in SQLite, which never
# enforced a length and keeps the VARCHAR(n) these tables were made with, so an upgraded
# SQLite store and a new one have the same layout.
_SUITE_TEXT = Text().with_variant(String(200), "sqlite")
_TOPIC_TEXT = Text().with_variant(String(100), "sqlite")
_NAME_TEXT = Text().with_variant(String(255), "sqlite")

metadata = MetaData()

# One row per key; "schema_version" is the only key the store itself needs.
meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(128), primary_key=True),
    Column("suite", Text, nullable=False),
    Column("suite_file", Text, nullable=False, default=""),
    Column("target", JSON, nullable=False),  # scrubbed of secrets before writing
    Column("model", Text),
    Column("git_sha", String(64)),
    Column("host", Text, nullable=False, default=""),
    Column("started", Double, nullable=False),
    Column("ended", Double),
    Column("status", String(16), nullable=False),  # running, complete, incomplete, aborted
    Column("exit_code", Integer),
    Column("planned", Integer, nullable=False, default=0),
    Column("counts", JSON, nullable=False),
    Column("group", Text),  # added in v2: shards of one CI job share a group
    Column("message", Text),  # added in v2: one line on why a run stopped early
    Column("extra", JSON, nullable=False),  # also holds the writing process (host, pid)
)

# Trend and "latest run of a suite" queries filter by suite and sort by start time.
runs_suite_started = Index("ix_runs_suite_started", runs.c.suite, runs.c.started)

results = Table(
    "results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(128), ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False, index=True),
    Column("case_id", Text, nullable=False, index=True),
    Column("topic", Text, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("repeat_index", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # passed, failed, error, not_run
    Column("error", Text),
    Column("error_kind", String(64)),
    Column("started", Double, nullable=False),
    Column("duration_ms", Double, nullable=False),
    Column("source", Text),
    # model … cost repeat what the transcript holds, as columns so trend queries need no JSON
    Column("model", Text),
    Column("fingerprint", Text),
    Column("tokens_in", Integer),
    Column("tokens_out", Integer),
    Column("cost", Double),
    Column("checks", JSON, nullable=False),
    Column("transcript", JSON),
    # added in v5: a hash of our side of the call (rendered request, model name and parameters,
    # the case's definition); same inputs and different behaviour is the model's doing
    Column("input_fp", String(64)),
    # a result written twice (a retried batch, a resumed run) replaces itself, never doubles
    UniqueConstraint("run_id", "case_id", "repeat_index", name="uq_results_run_case_repeat"),
)


# ---------------------------------------------------------------- feature tables (v3)
# Until v3 each of these was created by its own module on first use; same layout.

# Notify: deliveries that did not get through, kept until they do (harness.notify.pending).
pending_deliveries = Table(
    "pending_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(128), nullable=False, index=True),
    Column("destination", String(64), nullable=False),  # slack, datadog metrics, datadog event, …
    Column("payload", JSON, nullable=False),  # redacted; no URL, token or key
    Column("created_at", Double, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),  # one line, secrets scrubbed
)

# Analysis: accepted baselines, which outlive the run rows they were copied from
# (harness.analysis.baseline).
baselines = Table(
    "baselines",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("suite", _SUITE_TEXT, nullable=False, index=True),
    Column("run_id", String(128), nullable=False),
    Column("accepted_at", Double, nullable=False),
    Column("accepted_by", _SUITE_TEXT),
    Column("note", Text),
    Column("git_sha", String(64)),
    Column("model", _SUITE_TEXT),
    Column("run_started", Double, nullable=False),
    # [[route, model, fingerprint, replies], ...] over the whole run
    Column("serving", JSON, nullable=False),
)

baseline_cases = Table(
    "baseline_cases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("baseline_id", Integer, ForeignKey("baselines.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("case_id", _SUITE_TEXT, nullable=False),
    Column("topic", _TOPIC_TEXT, nullable=False),
    Column("data", JSON, nullable=False),  # CaseObs.to_dict(): statuses, answers, scores, turn_ms, serving
)

# One row per suite being run right now, so a suite never runs twice at once (harness.locks).
suite_locks = Table(
    "suite_locks",
    metadata,
    Column("name", _NAME_TEXT, primary_key=True),
    Column("owner", String(200), nullable=False),  # host:pid:random, unique per holder
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("run_id", String(128)),
    Column("acquired", Double, nullable=False),
    Column("heartbeat", Double, nullable=False),
)

# When the daemon last fired each suite, so a restarted daemon sees missed fires
# (harness.scheduling.state).
schedule_state = Table(
    "schedule_state",
    metadata,
    Column("suite", _SUITE_TEXT, primary_key=True),
    Column("last_fire", Double, nullable=False),  # epoch seconds
    Column("run_id", String(128)),
)


# ---------------------------------------------------------------- the judge's cache
# Not part of the history's versioned layout: the cache may live in its own SQLite file
# (`.harness/judge-cache.db`) or beside the history in a shared PostgreSQL store, and a
# lost cache only costs a re-judge. `store.judge_cache` creates these tables when missing.
judge_metadata = MetaData()

judge_verdicts = Table(
    "judge_verdicts",
    judge_metadata,
    Column("key", String(64), primary_key=True),
    Column("judge", Text, nullable=False),  # model|fingerprint the verdict came from
    Column("rubric", Text, nullable=False),  # rubric ref or inline criteria digest
    Column("scores", Text, nullable=False),  # JSON list of 0..1 scores, one per judge repeat
    Column("reason", Text, nullable=False),
    Column("tokens_in", Integer),
    Column("tokens_out", Integer),
    Column("cost", Float),
    Column("created", Float, nullable=False),
)

judge_steps = Table(
    "judge_steps",
    judge_metadata,
    Column("key", String(64), primary_key=True),
    Column("judge", Text, nullable=False),
    Column("steps", Text, nullable=False),  # JSON list of strings
    Column("created", Float, nullable=False),
)

judge_meta = Table(
    "judge_meta",
    judge_metadata,
    Column("key", String(200), primary_key=True),
    Column("value", Text, nullable=False),
)
