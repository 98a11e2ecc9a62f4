"""The judge's cache tables (`judge_verdicts`, `judge_steps`, `judge_meta`), wherever they live.

By default in their own SQLite file, `<root>/.harness/judge-cache.db` (WAL, a busy timeout:
CI shards share it); with a shared history store (PostgreSQL) in the store's own database,
via `store.judge_cache()`. Either way the tables are created when missing. Values cross
this boundary as plain dicts and strings; `harness.judge.cache` decides what they mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, delete, event, insert, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from ..errors import ConfigError
from .schema import judge_meta, judge_metadata, judge_steps, judge_verdicts
from .store import StoreError, _one_line, redact_url


def _make_engine(url_text: str) -> Engine:
    """An engine for `url`; a SQLite file gets its folder, WAL and a busy timeout."""
    try:
        url = make_url(url_text)
    except ArgumentError:
        raise ConfigError(f"judge cache URL {redact_url(url_text)!r} is not a valid SQLAlchemy database URL") from None
    try:
        if url.get_backend_name() != "sqlite":
            return create_engine(url, pool_pre_ping=True)
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
    except NoSuchModuleError:
        raise ConfigError(f"judge cache URL {redact_url(url)}: no SQLAlchemy driver for {url.drivername!r}") from None

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    return engine


class JudgeCacheTables:
    """Rows of the judge's cache. `open(url)` owns its engine; `store.judge_cache()` shares the store's."""

    def __init__(self, engine: Engine, *, owns_engine: bool) -> None:
        self._engine = engine
        self._owns_engine = owns_engine
        self.display_url = redact_url(engine.url)
        try:
            judge_metadata.create_all(engine)
        except SQLAlchemyError:
            # two runs starting at once on a fresh shared database (CI shards) may both try to
            # create the tables; whichever lost finds them there the second time
            try:
                judge_metadata.create_all(engine)
            except SQLAlchemyError as exc:
                raise self._error("create the judge cache tables", exc) from None

    @classmethod
    def open(cls, url: str) -> JudgeCacheTables:
        return cls(_make_engine(url), owns_engine=True)

    def _error(self, action: str, exc: BaseException) -> StoreError:
        return StoreError(f"judge cache {self.display_url}: could not {action}: {_one_line(exc)}")

    def _read(self, query: Any) -> Any:
        try:
            with self._engine.connect() as conn:
                return conn.execute(query).mappings().first()
        except SQLAlchemyError as exc:
            raise self._error("read", exc) from None

    def verdict(self, key: str) -> Mapping[str, Any] | None:
        """The stored verdict row (judge, rubric, scores as JSON text, reason, tokens, cost, created)."""
        return self._read(select(judge_verdicts).where(judge_verdicts.c.key == key))

    def steps(self, key: str) -> str | None:
        """The stored evaluation steps, as JSON text."""
        row = self._read(select(judge_steps.c.steps).where(judge_steps.c.key == key))
        return row["steps"] if row else None

    def meta(self, key: str) -> str | None:
        row = self._read(select(judge_meta.c.value).where(judge_meta.c.key == key))
        return row["value"] if row else None

    def write(
        self,
        verdicts: Sequence[dict[str, Any]] = (),
        steps: Sequence[dict[str, Any]] = (),
        meta: Mapping[str, str] | None = None,
    ) -> None:
        """Replace rows by key in one transaction (delete-then-insert: a portable upsert)."""
        try:
            with self._engine.begin() as conn:
                for table, rows in ((judge_verdicts, verdicts), (judge_steps, steps),
                                    (judge_meta, [{"key": k, "value": v} for k, v in (meta or {}).items()])):
                    if rows:
                        conn.execute(delete(table).where(table.c.key.in_([r["key"] for r in rows])))
                        conn.execute(insert(table), list(rows))
        except SQLAlchemyError as exc:
            raise self._error("write", exc) from None

    def close(self) -> None:
        if self._owns_engine:
            self._engine.dispose()
