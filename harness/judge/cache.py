"""The judge's memory: verdicts, generated evaluation steps and the judge's last fingerprint.

An unchanged answer judged by an unchanged judge against an unchanged rubric gets the
same verdict, so tomorrow's run should not pay for it again. Rows live in any SQLAlchemy
database (by default `<root>/.harness/judge-cache.db`, SQLite in WAL mode) in tables
prefixed `judge_`, so they can share a PostgreSQL database with the run history.

Scores are stored, not pass/fail: the pass is recomputed against the threshold the check
asks for today. New rows are buffered and written in one transaction per batch, so a run
of hundreds of judged answers does not pay one commit per answer; `flush()` (called by
the service's `aclose`) writes the rest. Losing unflushed rows to a crash only costs a
re-judge.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, create_engine, delete, event, insert, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

FLUSH_EVERY = 200

_meta = MetaData()
verdicts = Table(
    "judge_verdicts", _meta,
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
steps = Table(
    "judge_steps", _meta,
    Column("key", String(64), primary_key=True),
    Column("judge", Text, nullable=False),
    Column("steps", Text, nullable=False),  # JSON list of strings
    Column("created", Float, nullable=False),
)
meta = Table(
    "judge_meta", _meta,
    Column("key", String(200), primary_key=True),
    Column("value", Text, nullable=False),
)


@dataclass(slots=True)
class CachedVerdict:
    scores: list[float]
    reason: str
    judge: str = ""
    rubric: str = ""
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost: float | None = None
    created: float = field(default_factory=time.time)


def default_url(root: str | Path) -> str:
    return f"sqlite:///{Path(root).resolve() / '.harness' / 'judge-cache.db'}"


def make_engine(url_or_engine: str | Engine) -> Engine:
    """An engine for `url`; a SQLite file gets its folder, WAL and a busy timeout (CI shards share it)."""
    if isinstance(url_or_engine, Engine):
        return url_or_engine
    url = make_url(url_or_engine)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # noqa: ANN001 — DB-API connection
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


class JudgeCache:
    """Verdicts and steps by key; reads go to memory first, then the database."""

    def __init__(self, url_or_engine: str | Engine):
        self._owns_engine = not isinstance(url_or_engine, Engine)
        self.engine = make_engine(url_or_engine)
        try:
            _meta.create_all(self.engine)
        except SQLAlchemyError:
            # two runs starting at once on a fresh shared database (CI shards) may both try to
            # create the tables; whichever lost finds them there the second time
            _meta.create_all(self.engine)
        self._verdicts: dict[str, CachedVerdict] = {}
        self._steps: dict[str, list[str]] = {}
        self._pending_verdicts: dict[str, CachedVerdict] = {}
        self._pending_steps: dict[str, tuple[str, list[str]]] = {}
        self._pending_meta: dict[str, str] = {}

    # --- verdicts ---------------------------------------------------------------------
    def get_verdict(self, key: str) -> CachedVerdict | None:
        hit = self._verdicts.get(key)
        if hit is not None:
            return hit
        with self.engine.connect() as conn:
            row = conn.execute(select(verdicts).where(verdicts.c.key == key)).mappings().first()
        if row is None:
            return None
        try:
            scores = [float(s) for s in json.loads(row["scores"])]
        except (ValueError, TypeError):
            return None  # a damaged row is a miss, not a crash
        hit = CachedVerdict(scores=scores, reason=row["reason"], judge=row["judge"], rubric=row["rubric"],
                            tokens_in=row["tokens_in"], tokens_out=row["tokens_out"], cost=row["cost"],
                            created=row["created"])
        self._verdicts[key] = hit
        return hit

    def put_verdict(self, key: str, verdict: CachedVerdict) -> None:
        self._verdicts[key] = verdict
        self._pending_verdicts[key] = verdict
        self._maybe_flush()

    # --- generated evaluation steps -------------------------------------------------------
    def get_steps(self, key: str) -> list[str] | None:
        hit = self._steps.get(key)
        if hit is not None:
            return hit
        with self.engine.connect() as conn:
            row = conn.execute(select(steps.c.steps).where(steps.c.key == key)).first()
        if row is None:
            return None
        try:
            found = [str(s) for s in json.loads(row[0])]
        except (ValueError, TypeError):
            return None
        if not found:
            return None
        self._steps[key] = found
        return found

    def put_steps(self, key: str, judge: str, found: list[str]) -> None:
        self._steps[key] = list(found)
        self._pending_steps[key] = (judge, list(found))
        self._maybe_flush()

    # --- small facts (the judge's last fingerprint) -------------------------------------
    def get_meta(self, key: str) -> str | None:
        if key in self._pending_meta:
            return self._pending_meta[key]
        with self.engine.connect() as conn:
            row = conn.execute(select(meta.c.value).where(meta.c.key == key)).first()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._pending_meta[key] = value

    # --- writing ------------------------------------------------------------------------
    def _maybe_flush(self) -> None:
        if len(self._pending_verdicts) + len(self._pending_steps) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        """Write buffered rows in one transaction (delete-then-insert: portable upsert)."""
        if not (self._pending_verdicts or self._pending_steps or self._pending_meta):
            return
        v, s, m = self._pending_verdicts, self._pending_steps, self._pending_meta
        self._pending_verdicts, self._pending_steps, self._pending_meta = {}, {}, {}
        with self.engine.begin() as conn:
            if v:
                conn.execute(delete(verdicts).where(verdicts.c.key.in_(list(v))))
                conn.execute(insert(verdicts), [
                    {"key": k, "judge": x.judge, "rubric": x.rubric, "scores": json.dumps(x.scores),
                     "reason": x.reason, "tokens_in": x.tokens_in, "tokens_out": x.tokens_out, "cost": x.cost,
                     "created": x.created}
                    for k, x in v.items()
                ])
            if s:
                conn.execute(delete(steps).where(steps.c.key.in_(list(s))))
                conn.execute(insert(steps), [
                    {"key": k, "judge": j, "steps": json.dumps(found, ensure_ascii=False), "created": time.time()}
                    for k, (j, found) in s.items()
                ])
            if m:
                conn.execute(delete(meta).where(meta.c.key.in_(list(m))))
                conn.execute(insert(meta), [{"key": k, "value": val} for k, val in m.items()])

    def close(self) -> None:
        self.flush()
        if self._owns_engine:
            self.engine.dispose()
