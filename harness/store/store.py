"""The history store: runs and their case results, in SQLite (default) or any SQLAlchemy URL.

Every result is written here before any reporter sees it, so the store is what survives a
crash. It speaks SQLAlchemy Core only, with portable types, so the same code serves a
one-file SQLite history on a laptop and a shared PostgreSQL history for a team. The only
database-specific parts are SQLite's connection pragmas and the "upsert" spelling, which
SQLAlchemy provides per dialect.

A run left `running` by a process that died (killed CI job, OOM, Ctrl-C twice) is shown
as `incomplete` when read, and `mark_stale_running` writes that down.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from pydantic_core import PydanticSerializationError, to_json
from sqlalchemy import Connection, Engine, create_engine, delete, event, func, insert, select, tuple_, update
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from ..errors import ConfigError, ExitCode, HarnessError
from ..normalize import without_surrogates
from ..records import AgentReply, CaseResult, CheckResult, Outcome, RunInfo, Transcript, Turn
from . import migrations, schema

RUN_STATUSES = ("running", "complete", "incomplete", "aborted")
DEAD_PROCESS_MESSAGE = "the process running it stopped before the run finished"

# Keys whose values are never stored, whatever the caller passed (matched anywhere in the
# key). "token" but not "tokens", so max_tokens and tokens_in stay readable.
_SECRET_KEY = re.compile(r"api[_-]?key|token(?!s)|secret|authori[sz]ation|password|passwd|webhook|credential", re.I)
# user:password@ inside any URL-looking string value.
# bounded scheme length and a word boundary keep this linear on long texts without URLs
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]{0,30}://[^/:@\s]{0,256}:)(?P<pw>[^@\s/]{1,512})@", re.I)
REDACTED = "***"


class StoreError(HarnessError):
    """The store could not be reached or written; one line naming the URL (no password)."""

    exit_code = ExitCode.UNREACHABLE


def scrub_secrets(value: Any) -> Any:
    """A copy of `value` with secret-named keys and URL passwords replaced by ***.

    The caller already leaves secrets out of run metadata; this is the second line of
    defence, because a store row outlives every log and is shared with the whole team.
    """
    if isinstance(value, dict):
        return {
            k: (REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) and v not in (None, "") else scrub_secrets(v))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [scrub_secrets(v) for v in value]
    if isinstance(value, str):
        if "://" not in value or "@" not in value:
            return value
        return _URL_PASSWORD.sub(lambda m: f"{m['head']}{REDACTED}@", value)
    return value


def redact_url(url: str | URL) -> str:
    """A database URL safe to print: the password (if any) becomes ***."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}{REDACTED}@", url)


def _json_dumps(value: Any) -> str:
    # UTF-8 as it is (like ensure_ascii=False) keeps Japanese transcripts readable in the
    # database and a third of the size; an odd value in an agent's state becomes its str()
    # so it cannot lose a result. pydantic's serializer writes a result's JSON in a sixth of
    # json.dumps's time, on the writer thread that shares the GIL with the run.
    try:
        return to_json(value, fallback=str).decode()
    except PydanticSerializationError:  # bytes that are not UTF-8, a lone surrogate, and the like
        return json.dumps(without_surrogates(value), ensure_ascii=False, default=str)


class UnreadableJSON(dict):
    """What a stored JSON value that does not parse reads as: empty (a run's counts, a
    result's checks), so one damaged row costs only itself. `raw` keeps the stored text."""

    def __init__(self, raw: Any) -> None:
        super().__init__()
        self.raw = raw


def _json_loads(text: Any) -> Any:
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return UnreadableJSON(text)


_NOTED: set[str] = set()


def _note_unreadable(what: str, row: Any, columns: tuple[str, ...]) -> None:
    """One line on stderr, once per damaged row and column, naming them."""
    for column in columns:
        if isinstance(getattr(row, column, None), UnreadableJSON):
            line = f"warning: store: {what}: column {column} is not valid JSON; read as empty"
            if line not in _NOTED:
                _NOTED.add(line)
                print(line, file=sys.stderr, flush=True)


def _one_line(exc: BaseException) -> str:
    inner = getattr(exc, "orig", None) or exc
    text = str(inner).strip().splitlines()
    return text[0] if text else type(inner).__name__


# ---------------------------------------------------------------- process liveness


def _this_process() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def _process_dead(extra: dict[str, Any]) -> bool:
    """True only when we can tell: the run was written on this host by a pid that is gone."""
    proc = extra.get("process") if isinstance(extra, dict) else None
    if not isinstance(proc, dict) or proc.get("host") != socket.gethostname():
        return False
    pid = proc.get("pid")
    return isinstance(pid, int) and not _pid_alive(pid)


def _as_seen(info: RunInfo) -> RunInfo:
    """A `running` run whose process is dead is reported as the incomplete run it is."""
    if info.status == "running" and _process_dead(info.extra):
        info.status = "incomplete"
        info.message = info.message or DEAD_PROCESS_MESSAGE
    return info


# ---------------------------------------------------------------- rows <-> records

_T = TypeVar("_T")


def _build(cls: type[_T], data: dict[str, Any]) -> _T:
    """Build a dataclass from stored JSON, ignoring keys a newer harness may have added."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


def _transcript_from(data: dict[str, Any] | None) -> Transcript | None:
    if data is None or isinstance(data, UnreadableJSON):
        return None
    turns = [
        Turn(
            index=t["index"],
            caller=t.get("caller"),
            reply=_build(AgentReply, t.get("reply") or {"text": ""}),
            kind=t.get("kind", "say"),
        )
        for t in data.get("turns", [])
    ]
    return Transcript(turns=turns, outcome=_build(Outcome, data.get("outcome") or {}))


# Field names, read once: `dataclasses.asdict` deep-copies every value and was most of
# the cost of writing a result. The shapes below are exactly those of the records' to_dict().
_REPLY_FIELDS = tuple(f.name for f in fields(AgentReply))
_OUTCOME_FIELDS = tuple(f.name for f in fields(Outcome))
_CHECK_FIELDS = tuple(f.name for f in fields(CheckResult))


def _fields_dict(obj: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {n: getattr(obj, n) for n in names}


def _transcript_dict(t: Transcript) -> dict[str, Any]:
    return {
        "turns": [
            {"index": turn.index, "kind": turn.kind, "caller": turn.caller, "reply": _fields_dict(turn.reply, _REPLY_FIELDS)}
            for turn in t.turns
        ],
        "outcome": _fields_dict(t.outcome, _OUTCOME_FIELDS),
    }


_RESULT_KEYS = ("run_id", "case_id", "repeat_index")
_UPSERTS: dict[str, Any] = {}


def _upsert_statement(dialect: str) -> Any:
    """INSERT … ON CONFLICT (run, case, repeat) DO UPDATE for SQLite or PostgreSQL.

    Built once per dialect: building it (a proxy column per `excluded` value) cost as much
    CPU as writing a batch of fifty results, on the thread that shares the GIL with the run.
    """
    stmt = _UPSERTS.get(dialect)
    if stmt is None:
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        t = schema.results
        ins = dialect_insert(t)
        changed = {c.name: ins.excluded[c.name] for c in t.c if c.name not in ("id", *_RESULT_KEYS)}
        stmt = _UPSERTS[dialect] = ins.on_conflict_do_update(index_elements=list(_RESULT_KEYS), set_=changed)
    return stmt


def _result_row(run_id: str, r: CaseResult) -> dict[str, Any]:
    t = r.transcript
    totals = t.totals() if t is not None else {}
    return {
        "run_id": run_id,
        "case_id": r.case_id,
        "topic": r.topic,
        "tags": list(r.tags),
        "repeat_index": r.repeat_index,
        "status": r.status,
        "error": r.error,
        "error_kind": r.error_kind,
        "started": r.started,
        "duration_ms": r.duration_ms,
        "source": r.source,
        "model": t.model if t is not None else None,
        "fingerprint": t.fingerprint if t is not None else None,
        "tokens_in": totals.get("tokens_in"),
        "tokens_out": totals.get("tokens_out"),
        "cost": totals.get("cost"),
        "checks": [_fields_dict(c, _CHECK_FIELDS) for c in r.checks],
        "transcript": _transcript_dict(t) if t is not None else None,
        "input_fp": r.inputs,
    }


_RESULT_JSON = ("tags", "checks", "transcript")
_RUN_JSON = ("target", "counts", "extra")


def _result_from_row(row: Any) -> CaseResult:
    _note_unreadable(f"result {row.case_id} of run {row.run_id}", row, _RESULT_JSON)
    return CaseResult(
        case_id=row.case_id,
        topic=row.topic,
        tags=list(row.tags or []),
        repeat_index=row.repeat_index,
        status=row.status,
        checks=[_build(CheckResult, c) for c in (row.checks or [])],
        transcript=_transcript_from(row.transcript),
        error=row.error,
        error_kind=row.error_kind,
        started=row.started,
        duration_ms=row.duration_ms,
        source=row.source,
        inputs=row.input_fp,
    )


def _run_from_row(row: Any) -> RunInfo:
    _note_unreadable(f"run {row.run_id}", row, _RUN_JSON)
    return RunInfo(
        run_id=row.run_id,
        suite=row.suite,
        suite_file=row.suite_file or "",
        target=dict(row.target or {}),
        model=row.model,
        git_sha=row.git_sha,
        host=row.host or "",
        started=row.started,
        ended=row.ended,
        status=row.status,
        exit_code=row.exit_code,
        planned=row.planned or 0,
        counts=dict(row.counts or {}),
        group=row.group,
        message=row.message,
        extra=dict(row.extra or {}),
    )


def _dedupe_last(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the last row per (case, repeat): one statement may not upsert a key twice."""
    by_key = {(r["run_id"], r["case_id"], r["repeat_index"]): r for r in rows}
    return list(by_key.values())


# ---------------------------------------------------------------- engine


def _sqlite_engine(url: URL) -> Engine:
    in_memory = url.database in (None, "", ":memory:")
    if in_memory:
        # One shared connection, or every thread would see its own empty database.
        engine = create_engine(
            url, json_serializer=_json_dumps, json_deserializer=_json_loads, poolclass=StaticPool,
            connect_args={"check_same_thread": False}
        )
    else:
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, json_serializer=_json_dumps, json_deserializer=_json_loads,
                               connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (below) so DDL is transactional too; the
        # sqlite3 module would otherwise run ALTER TABLE outside any transaction.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        # WAL: readers (reports) never block the writer; NORMAL sync is durable against
        # a killed process (only a power cut can lose the last commits).
        for pragma in ("busy_timeout=30000", "journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A transaction that reads and then writes must hold the write lock from the start,
        # or SQLite fails it at once instead of waiting for busy_timeout.
        immediate = conn.get_execution_options().get("store_write_lock")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _make_engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    return create_engine(url, json_serializer=_json_dumps, json_deserializer=_json_loads, pool_pre_ping=True)


def default_url(root: str | os.PathLike[str] = ".") -> str:
    """Where history lives when a suite names no store: <root>/.harness/history.db."""
    path = (Path(root).expanduser().resolve() / ".harness" / "history.db").as_posix()
    return f"sqlite:///{path}"


# ---------------------------------------------------------------- the store


class Store:
    """Runs and case results in one database. Thread-safe; open once per process."""

    def __init__(self, engine: Engine, *, root: str = ".") -> None:
        from .features import Baselines, PendingDeliveries, ScheduleState
        from .locks import Locks
        from .objectives import ObjectiveRecords
        from .trends import TrendReads

        self._engine = engine
        self.display_url = redact_url(engine.url)
        database = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
        if database and database != ":memory:":
            self.spill_dir = Path(database).expanduser().parent
        else:
            self.spill_dir = Path(root).expanduser() / ".harness"
        self.locks = Locks(self)
        self.schedule_state = ScheduleState(self)
        self.notifications = PendingDeliveries(self)
        self.baselines = Baselines(self)
        self.trends = TrendReads(self)
        self.objectives = ObjectiveRecords(self)

    @classmethod
    def open(cls, url: str | None, *, root: str = ".") -> Store:
        """Open (creating or upgrading as needed) the store at `url`; None means the
        default SQLite file under `root`."""
        raw = url or default_url(root)
        try:
            parsed = make_url(raw)
        except ArgumentError:
            raise ConfigError(f"store URL {redact_url(raw)!r} is not a valid SQLAlchemy database URL") from None
        try:
            engine = _make_engine(parsed)
        except NoSuchModuleError:
            raise ConfigError(
                f"store URL {redact_url(parsed)}: no SQLAlchemy driver for {parsed.drivername!r}"
            ) from None
        except (ImportError, SQLAlchemyError, OSError) as exc:
            raise StoreError(f"cannot open store {redact_url(parsed)}: {_one_line(exc)}") from None
        store = cls(engine, root=root)
        try:
            migrations.migrate(engine)
        except HarnessError:
            engine.dispose()
            raise
        except SQLAlchemyError as exc:
            engine.dispose()
            raise StoreError(f"cannot open store {store.display_url}: {_one_line(exc)}") from None
        return store

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for tests and tooling that inspect the database itself.
        harness's own code outside this package calls the named methods instead."""
        return self._engine

    @property
    def shared(self) -> bool:
        """True when the store is a database server (PostgreSQL …) rather than a SQLite file."""
        return self._engine.dialect.name != "sqlite"

    @property
    def concurrent_reads(self) -> bool:
        """Whether independent reads may run side by side on threads (not for an in-memory
        SQLite store, whose one shared connection would serialise or corrupt them)."""
        return not isinstance(self._engine.pool, StaticPool)

    def judge_cache(self, root: str | None = None) -> Any:
        """The judge's cache tables (see `store.judge_cache`): in this store's own database
        when it is a server (PostgreSQL), which every runner sharing the history reaches, or
        when no `root` is given; else in their own SQLite file beside a SQLite history,
        `<root>/.harness/judge-cache.db`. The caller closes them."""
        from .judge_cache import JudgeCacheTables, default_url

        if root is None or self.shared:
            return JudgeCacheTables(self._engine, owns_engine=False)
        return JudgeCacheTables.open(default_url(root))

    def _error(self, action: str, exc: BaseException) -> StoreError:
        return StoreError(f"store {self.display_url}: could not {action}: {_one_line(exc)}")

    @contextmanager
    def _tx(self, action: str, *, write_lock: bool = False) -> Iterator[Connection]:
        try:
            with self._engine.connect() as conn:
                if write_lock:
                    conn.execution_options(store_write_lock=True)
                with conn.begin():
                    yield conn
        except SQLAlchemyError as exc:
            raise self._error(action, exc) from None

    # -- writing

    def start_run(self, info: RunInfo) -> None:
        """Record a new run as `running`, together with the process writing it."""
        extra = scrub_secrets(dict(info.extra))
        extra.setdefault("process", _this_process())
        row = {
            "run_id": info.run_id,
            "suite": info.suite,
            "suite_file": info.suite_file,
            "target": scrub_secrets(info.target),
            "model": info.model,
            "git_sha": info.git_sha,
            "host": info.host,
            "started": info.started or time.time(),
            "ended": info.ended,
            "status": info.status,
            "exit_code": info.exit_code,
            "planned": info.planned,
            "counts": dict(info.counts),
            "group": info.group,
            "message": info.message,
            "extra": extra,
        }
        with self._tx(f"start run {info.run_id}", write_lock=True) as conn:
            exists = conn.execute(select(schema.runs.c.run_id).where(schema.runs.c.run_id == info.run_id)).first()
            if exists:
                raise HarnessError(f"run {info.run_id} is already in the store {self.display_url}")
            conn.execute(insert(schema.runs).values(**row))

    def add_results(self, run_id: str, results: Sequence[CaseResult]) -> None:
        """Write results in one transaction. Writing the same (case, repeat) again replaces
        it, so a retried batch never doubles a result."""
        if not results:
            return
        rows = _dedupe_last([_result_row(run_id, r) for r in results])
        with self._tx(f"write {len(rows)} results of run {run_id}") as conn:
            self._upsert_results(conn, rows)

    def spill_results(self, run_id: str, results: Sequence[CaseResult], *, reason: str) -> tuple[Path, int, str | None]:
        """Append results the store refused to `<spill_dir>/spill-<run_id>.jsonl`, one JSON
        object a line (the row the store would have held, plus why it is here).

        Returns (path, how many were kept, why the others were not or None). A line that
        does not fit (the disk is full) is cut off again, so the file holds whole lines only.
        """
        path = self.spill_dir / f"spill-{run_id}.jsonl"
        kept = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # unbuffered: a write the disk refuses half way is cut back to the last whole line
            # here, not left in a buffer that a later flush would write out in part
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                for r in results:
                    row = _result_row(run_id, r)
                    row["spill_reason"] = reason
                    line = memoryview((_json_dumps(row) + "\n").encode("utf-8", "surrogatepass"))
                    start = os.lseek(fd, 0, os.SEEK_END)
                    try:
                        while line:
                            line = line[os.write(fd, line):]
                    except OSError:
                        os.ftruncate(fd, start)
                        raise
                    kept += 1
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            return path, kept, f"spill file {path}: {exc.strerror or exc}"
        return path, kept, None

    @staticmethod
    def _upsert_results(conn: Connection, rows: list[dict[str, Any]]) -> None:
        t = schema.results
        dialect = conn.dialect.name
        if dialect in ("sqlite", "postgresql"):
            conn.execute(_upsert_statement(dialect), rows)
            return
        # Any other database: remove the old copies, then insert, in the same transaction.
        wanted = [(r["run_id"], r["case_id"], r["repeat_index"]) for r in rows]
        conn.execute(delete(t).where(tuple_(t.c.run_id, t.c.case_id, t.c.repeat_index).in_(wanted)))
        conn.execute(insert(t), rows)

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        ended: float,
        exit_code: int | None,
        counts: dict[str, int],
        message: str | None = None,
    ) -> None:
        """Close a run: final status, end time, exit code and counts."""
        if status not in RUN_STATUSES:
            raise HarnessError(f"run status {status!r} is not one of {', '.join(RUN_STATUSES)}")
        values = {"status": status, "ended": ended, "exit_code": exit_code, "counts": dict(counts)}
        if message is not None:
            values["message"] = message
        with self._tx(f"finish run {run_id}") as conn:
            done = conn.execute(update(schema.runs).where(schema.runs.c.run_id == run_id).values(**values))
            if done.rowcount == 0:
                raise HarnessError(f"run {run_id} is not in the store {self.display_url}")

    def mark_stale_running(self, older_than_s: float) -> int:
        """Write `incomplete` on runs whose process died; return how many.

        On this host a dead pid is proof. A run from another host (or with no process
        recorded) is taken as dead when nothing was written for it for `older_than_s`.
        """
        cutoff = time.time() - older_than_s
        r, res = schema.runs, schema.results
        last_result = (
            select(func.max(res.c.started)).where(res.c.run_id == r.c.run_id).correlate(r).scalar_subquery()
        )
        with self._tx("mark stale runs", write_lock=True) as conn:
            rows = conn.execute(
                select(r.c.run_id, r.c.started, r.c.extra, r.c.message, last_result.label("last"))
                .where(r.c.status == "running")
            ).all()
            stale = []
            for row in rows:
                extra = dict(row.extra or {})
                proc = extra.get("process")
                here = isinstance(proc, dict) and proc.get("host") == socket.gethostname()
                if here:
                    dead = _process_dead(extra)
                else:
                    dead = max(row.started, row.last or 0.0) < cutoff
                if dead:
                    stale.append(row)
            for row in stale:
                conn.execute(
                    update(r)
                    .where(r.c.run_id == row.run_id, r.c.status == "running")
                    .values(status="incomplete", message=row.message or DEAD_PROCESS_MESSAGE)
                )
        return len(stale)

    # -- reading

    def get_run(self, ref: str) -> RunInfo | None:
        """A run by id, unique id prefix, "latest" or "latest:<suite>"; None if no match."""
        r = schema.runs
        if ref == "latest" or ref.startswith("latest:"):
            query = select(r).order_by(r.c.started.desc()).limit(1)
            if ref.startswith("latest:"):
                query = query.where(r.c.suite == ref.split(":", 1)[1])
            with self._tx("read runs") as conn:
                row = conn.execute(query).first()
            return _as_seen(_run_from_row(row)) if row else None
        with self._tx("read runs") as conn:
            row = conn.execute(select(r).where(r.c.run_id == ref)).first()
            if row is None and ref:
                matches = conn.execute(
                    select(r).where(r.c.run_id.startswith(ref, autoescape=True)).order_by(r.c.started.desc()).limit(6)
                ).all()
                if len(matches) > 1:
                    ids = ", ".join(m.run_id for m in matches[:5])
                    more = ", …" if len(matches) > 5 else ""
                    raise ConfigError(f"run id prefix {ref!r} matches several runs ({ids}{more}); give more of it")
                row = matches[0] if matches else None
        return _as_seen(_run_from_row(row)) if row else None

    def list_runs(self, suite: str | None = None, limit: int = 50, since: float | None = None) -> list[RunInfo]:
        """Runs, newest first."""
        r = schema.runs
        query = select(r).order_by(r.c.started.desc(), r.c.run_id.desc()).limit(limit)
        if suite is not None:
            query = query.where(r.c.suite == suite)
        if since is not None:
            query = query.where(r.c.started >= since)
        with self._tx("read runs") as conn:
            rows = conn.execute(query).all()
        return [_as_seen(_run_from_row(row)) for row in rows]

    def results(self, run_id: str, *, case_ids: Sequence[str] | None = None) -> list[CaseResult]:
        """Every result of a run (or only those of `case_ids`), in the order they were first written."""
        t = schema.results
        query = select(t).where(t.c.run_id == run_id)
        with self._tx(f"read results of run {run_id}") as conn:
            if case_ids is None:
                rows = conn.execute(query.order_by(t.c.id)).all()
            else:
                rows = []
                ids = list(case_ids)
                for i in range(0, len(ids), 500):  # bounded IN lists, for any database
                    rows += conn.execute(query.where(t.c.case_id.in_(ids[i : i + 500]))).all()
                rows.sort(key=lambda row: row.id)
        return [_result_from_row(row) for row in rows]

    def group_run_ids(self, group: str, *, suite: str | None = None) -> list[str]:
        """The ids of a run group's runs (optionally of one suite), oldest first."""
        r = schema.runs
        query = select(r.c.run_id).where(r.c.group == group).order_by(r.c.started, r.c.run_id)
        if suite is not None:
            query = query.where(r.c.suite == suite)
        with self._tx(f"read the runs of group {group}") as conn:
            return [row.run_id for row in conn.execute(query)]

    def case_statuses(self, run_id: str) -> list[tuple[str, str]]:
        """(case id, status) of every result of a run: two columns, no records rebuilt, so
        asking which cases of 5,000 failed stays cheap."""
        t = schema.results
        with self._tx(f"read results of run {run_id}") as conn:
            return [(row.case_id, row.status) for row in conn.execute(
                select(t.c.case_id, t.c.status).where(t.c.run_id == run_id))]

    def observation_rows(self, run_ids: Sequence[str], case_id: str | None = None) -> Iterator[Any]:
        """What analysis reads of results, streamed: named tuples of (run_id, case_id, topic,
        repeat_index, status, checks, transcript, input_fp), ordered by run, case and repeat."""
        if not run_ids:
            return
        t = schema.results
        query = (
            select(t.c.run_id, t.c.case_id, t.c.topic, t.c.repeat_index, t.c.status, t.c.checks, t.c.transcript,
                   t.c.input_fp)
            .where(t.c.run_id.in_(list(run_ids)))
            .order_by(t.c.run_id, t.c.case_id, t.c.repeat_index)
        )
        if case_id is not None:
            query = query.where(t.c.case_id == case_id)
        with self._tx("read results") as conn:
            yield from conn.execute(query)

    def set_run_extra(self, run_id: str, extra: dict[str, Any]) -> None:
        """Replace a run's `extra` (secrets scrubbed), e.g. to add the analysis verdict."""
        r = schema.runs
        with self._tx(f"save the verdict of run {run_id}") as conn:
            conn.execute(update(r).where(r.c.run_id == run_id).values(extra=scrub_secrets(dict(extra))))

    def schema_version(self) -> int:
        with self._tx("read the schema version") as conn:
            return migrations.read_version(conn)

    # -- lifetime

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.display_url})"
