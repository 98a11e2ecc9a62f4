"""Bring a store's tables up to the layout in `schema.py`, in one transaction.

The store records its layout version in `meta.schema_version`. Opening a store:

- new (no tables): step 1 creates the *latest* layout from `schema.metadata` and the
  version is stamped as `SCHEMA_VERSION`; later steps never run on it.
- older: every step newer than its version runs, in order, then the version is stamped.
  All of it happens in one transaction, so a failed upgrade leaves the old store intact
  (SQLite and PostgreSQL both roll DDL back).
- newer than this harness: a one-line error; we never write to a layout we do not know.

To change the layout: edit `schema.py`, bump `SCHEMA_VERSION`, and append one function
to `MIGRATIONS` that turns the previous layout into the new one. Steps use frozen column
definitions (not the ones in `schema.py`), because those keep changing after the step is
written.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Double,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    inspect,
    select,
)
from sqlalchemy.exc import DBAPIError

from ..errors import ConfigError, HarnessError
from . import schema

Step = Callable[[Connection], None]


def _v1_create_all(conn: Connection) -> None:
    """A new store: create every table and index in the latest layout."""
    schema.metadata.create_all(conn)


def _v2_run_group_and_message(conn: Connection) -> None:
    """v2: runs get `group` (CI shards) and `message` (why a run stopped), and the
    (suite, started) index that trend queries need."""
    add_column(conn, "runs", Column("group", String(200)))
    add_column(conn, "runs", Column("message", Text))
    schema.runs_suite_started.create(conn, checkfirst=True)


def _v3_feature_table_layouts() -> list[Table]:
    """The five feature tables exactly as v3 made them (frozen; see the module docstring).

    Before v3, notify, analysis, locks and scheduling each created its table itself on
    first use, with this same layout.
    """
    md = MetaData()
    return [
        Table(
            "pending_deliveries", md,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("run_id", String(128), nullable=False, index=True),
            Column("destination", String(64), nullable=False),
            Column("payload", JSON, nullable=False),
            Column("created_at", Double, nullable=False),
            Column("attempts", Integer, nullable=False),
            Column("last_error", Text),
        ),
        Table(
            "baselines", md,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("suite", String(200), nullable=False, index=True),
            Column("run_id", String(128), nullable=False),
            Column("accepted_at", Double, nullable=False),
            Column("accepted_by", String(200)),
            Column("note", Text),
            Column("git_sha", String(64)),
            Column("model", String(200)),
            Column("run_started", Double, nullable=False),
            Column("serving", JSON, nullable=False),
        ),
        Table(
            "baseline_cases", md,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("baseline_id", Integer, ForeignKey("baselines.id", ondelete="CASCADE"), nullable=False, index=True),
            Column("case_id", String(200), nullable=False),
            Column("topic", String(100), nullable=False),
            Column("data", JSON, nullable=False),
        ),
        Table(
            "suite_locks", md,
            Column("name", String(255), primary_key=True),
            Column("owner", String(200), nullable=False),
            Column("host", String(200), nullable=False),
            Column("pid", Integer, nullable=False),
            Column("run_id", String(128)),
            Column("acquired", Double, nullable=False),
            Column("heartbeat", Double, nullable=False),
        ),
        Table(
            "schedule_state", md,
            Column("suite", String(200), primary_key=True),
            Column("last_fire", Double, nullable=False),
            Column("run_id", String(128)),
        ),
    ]


def _v3_feature_tables(conn: Connection) -> None:
    """v3: the store owns the feature tables. Each is created only if missing, because a
    store used by the older on-first-use code already has some of them, with this layout.

    A same-named table that lacks one of the columns was not made by harness: say so
    instead of writing into it.
    """
    for table in _v3_feature_table_layouts():  # parents before children (baselines first)
        table.create(conn, checkfirst=True)
        have = {c["name"] for c in inspect(conn).get_columns(table.name)}
        missing = [c.name for c in table.columns if c.name not in have]
        if missing:
            raise HarnessError(
                f"store table {table.name} exists but lacks column(s) {', '.join(missing)}; "
                "it was not created by harness"
            )
        for index in table.indexes:  # an existing table already has them; checkfirst skips
            index.create(conn, checkfirst=True)


# Columns that were VARCHAR(n) until v4 and hold values from suites, cases or model servers.
_V4_WIDENED = {
    "runs": ("suite", "model", "host", "group"),
    "results": ("case_id", "topic", "model", "fingerprint"),
}


def _v4_widen_text_columns(conn: Connection) -> None:
    """v4: values from suites and model servers become TEXT, so a 300-character model name
    sent by a gateway cannot fail a batch of results. SQLite never enforced the lengths."""
    if conn.dialect.name == "sqlite":
        return
    prep = conn.dialect.identifier_preparer
    for table, columns in _V4_WIDENED.items():
        for column in columns:
            conn.exec_driver_sql(
                f"ALTER TABLE {prep.quote(table)} ALTER COLUMN {prep.quote(column)} TYPE TEXT")


# Columns of the feature tables that were VARCHAR(n) until v5 and hold case ids, topics,
# suite and model names (a 500-character case id could not be accepted into a baseline).
_V5_WIDENED = {
    "baselines": ("suite", "accepted_by", "model"),
    "baseline_cases": ("case_id", "topic"),
    "suite_locks": ("name",),
    "schedule_state": ("suite",),
}


def _v5_widen_feature_columns(conn: Connection) -> None:
    """v5: the baseline, lock and schedule tables hold case ids, topics and suite names as
    TEXT too (v4 did it for runs and results). SQLite never enforced the lengths."""
    if conn.dialect.name == "sqlite":
        return
    prep = conn.dialect.identifier_preparer
    for table, columns in _V5_WIDENED.items():
        for column in columns:
            conn.exec_driver_sql(
                f"ALTER TABLE {prep.quote(table)} ALTER COLUMN {prep.quote(column)} TYPE TEXT")


def _v6_result_inputs(conn: Connection) -> None:
    """v6: results get `input_fp`, the fingerprint of what reached the model (attribution)."""
    add_column(conn, "results", Column("input_fp", String(64)))


# (version, what it does, step) in ascending order; the last version is SCHEMA_VERSION.
MIGRATIONS: list[tuple[int, str, Step]] = [
    (1, "create all tables", _v1_create_all),
    (2, "runs.group, runs.message, index runs(suite, started)", _v2_run_group_and_message),
    (3, "feature tables: pending_deliveries, baselines, baseline_cases, suite_locks, schedule_state",
     _v3_feature_tables),
    (4, "TEXT for case ids, topics, suite and model names (no length limit)", _v4_widen_text_columns),
    (5, "TEXT for case ids, topics and suite names in baselines, locks and schedule state", _v5_widen_feature_columns),
    (6, "results.input_fp", _v6_result_inputs),
]


def add_column(conn: Connection, table: str, column: Column) -> None:
    """ALTER TABLE … ADD COLUMN, quoted and typed for whatever database this is.

    SQLAlchemy Core has no portable "add column" construct; the dialect's own quoting and
    type compiler keep this right for SQLite and PostgreSQL (and reserved words like group).
    """
    prep = conn.dialect.identifier_preparer
    coltype = column.type.compile(dialect=conn.dialect)
    conn.exec_driver_sql(f"ALTER TABLE {prep.quote(table)} ADD COLUMN {prep.quote(column.name)} {coltype}")


def read_version(conn: Connection) -> int:
    """The stored layout version; 0 for an empty database."""
    tables = set(inspect(conn).get_table_names())
    if "meta" not in tables:
        if tables & {"runs", "results"}:
            raise HarnessError("store has harness tables but no schema version; it was not created by harness")
        return 0
    value = conn.execute(select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")).scalar()
    if value is None:
        raise HarnessError("store has a meta table but no schema_version row")
    return int(value)


def _write_version(conn: Connection, version: int) -> None:
    conn.execute(delete(schema.meta).where(schema.meta.c.key == "schema_version"))
    conn.execute(insert(schema.meta).values(key="schema_version", value=str(version)))


def _check_not_newer(version: int) -> None:
    if version > schema.SCHEMA_VERSION:
        raise ConfigError(
            f"store schema version {version} is newer than this harness ({schema.SCHEMA_VERSION}); upgrade harness"
        )


def _steps_after(version: int) -> list[Step]:
    if version == 0:
        return [MIGRATIONS[0][2]]  # creates the latest layout directly
    return [step for v, _, step in MIGRATIONS if v > version]


def migrate(engine: Engine) -> int:
    """Make the store's layout current; return the version it had before (0 if new)."""
    with engine.connect() as conn:
        # Cheap check first, without the write lock that an upgrade needs.
        with conn.begin():
            before = read_version(conn)
        _check_not_newer(before)
        if before == schema.SCHEMA_VERSION:
            return before
        # Take the write lock from the start (SQLite: BEGIN IMMEDIATE), then look again:
        # another process may have upgraded the store in between.
        conn.execution_options(store_write_lock=True)
        try:
            with conn.begin():
                before = read_version(conn)
                _check_not_newer(before)
                if before == schema.SCHEMA_VERSION:
                    return before
                for step in _steps_after(before):
                    step(conn)
                _write_version(conn, schema.SCHEMA_VERSION)
        except DBAPIError:
            # Two processes creating a new PostgreSQL store at once: the loser fails on
            # "table exists". If the winner finished the job, there is nothing left to do.
            with conn.begin():
                if read_version(conn) == schema.SCHEMA_VERSION:
                    return before
            raise
        return before

