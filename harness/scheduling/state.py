"""When the daemon last fired each suite, kept in the suite's store.

The store outlives the daemon; this record is what lets a restarted daemon tell that a
fire was missed while it was down (see `catchup`).
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone

from sqlalchemy import Column, Double, Engine, MetaData, String, Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..locks import create_table_once

_metadata = MetaData()

# Not in the store's migrations yet: created on first use (checkfirst), harmless to repeat.
schedule_state = Table(
    "schedule_state",
    _metadata,
    Column("suite", String(200), primary_key=True),
    Column("last_fire", Double, nullable=False),  # epoch seconds
    Column("run_id", String(128)),
)

_created: set[int] = set()
_lock = threading.Lock()


def ensure_table(engine: Engine) -> None:
    with _lock:
        if id(engine) not in _created:
            create_table_once(engine, schedule_state)
            _created.add(id(engine))


def last_fire(engine: Engine, suite: str) -> datetime | None:
    """When `suite` was last fired by a daemon (UTC), or None if never."""
    ensure_table(engine)
    with engine.connect() as conn:
        value = conn.execute(select(schedule_state.c.last_fire).where(schedule_state.c.suite == suite)).scalar()
    return datetime.fromtimestamp(value, timezone.utc) if value is not None else None


def record_fire(engine: Engine, suite: str, when: datetime, run_id: str | None = None) -> None:
    """Remember that `suite` fired at `when`."""
    ensure_table(engine)
    values = {"last_fire": when.timestamp(), "run_id": run_id}
    change = update(schedule_state).where(schedule_state.c.suite == suite).values(**values)
    with engine.begin() as conn:
        if conn.execute(change).rowcount:
            return
    try:
        with engine.begin() as conn:
            conn.execute(insert(schedule_state).values(suite=suite, **values))
    except IntegrityError:  # another daemon inserted it first
        with engine.begin() as conn:
            conn.execute(change)
