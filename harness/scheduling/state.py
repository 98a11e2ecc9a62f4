"""When the daemon last fired each suite, kept in the suite's store.

The store outlives the daemon; this record is what lets a restarted daemon tell that a
fire was missed while it was down (see `catchup`). The table, `schedule_state`, is
defined in `harness.store.schema` and created by the store's migrations when the store is
opened; pass that store's engine.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..store.schema import schedule_state


def last_fire(engine: Engine, suite: str) -> datetime | None:
    """When `suite` was last fired by a daemon (UTC), or None if never."""
    with engine.connect() as conn:
        value = conn.execute(select(schedule_state.c.last_fire).where(schedule_state.c.suite == suite)).scalar()
    return datetime.fromtimestamp(value, timezone.utc) if value is not None else None


def record_fire(engine: Engine, suite: str, when: datetime, run_id: str | None = None) -> None:
    """Remember that `suite` fired at `when`."""
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
