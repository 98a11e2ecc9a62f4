"""Small repositories over the feature tables: `store.schedule_state`, `store.notifications`
and `store.baselines` (`store.locks` is in `locks.py`).

Each speaks only in plain values and the dataclasses below; database failures become
StoreError naming the store (never a password).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from .schema import baseline_cases, baselines, pending_deliveries, schedule_state

if TYPE_CHECKING:
    from .store import Store


# ---------------------------------------------------------------- the daemon's fires


class ScheduleState:
    """`store.schedule_state`: when the daemon last fired each suite (epoch seconds)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def last_fire(self, suite: str) -> float | None:
        t = schedule_state
        with self._store._tx(f"read the last fire of {suite}") as conn:
            return conn.execute(select(t.c.last_fire).where(t.c.suite == suite)).scalar()

    def record_fire(self, suite: str, when: float, run_id: str | None = None) -> None:
        values = {"last_fire": when, "run_id": run_id}
        change = update(schedule_state).where(schedule_state.c.suite == suite).values(**values)
        action = f"record the fire of {suite}"
        with self._store._tx(action) as conn:
            if conn.execute(change).rowcount:
                return
        try:
            with self._store._engine.begin() as conn:
                conn.execute(insert(schedule_state).values(suite=suite, **values))
        except IntegrityError:  # another daemon inserted it first
            with self._store._tx(action) as conn:
                conn.execute(change)
        except SQLAlchemyError as exc:
            raise self._store._error(action, exc) from None


# ---------------------------------------------------------------- deliveries kept for later


@dataclass
class Pending:
    id: int
    run_id: str
    destination: str
    payload: dict[str, Any]
    created_at: float
    attempts: int
    last_error: str | None


class PendingDeliveries:
    """`store.notifications`: deliveries that did not get through, kept until they do."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def add(self, run_id: str, destination: str, payload: dict[str, Any], attempts: int, error: str) -> int:
        """Keep a failed delivery; returns its id."""
        row = {"run_id": run_id, "destination": destination, "payload": payload, "created_at": time.time(),
               "attempts": attempts, "last_error": error}
        with self._store._tx("keep a pending delivery") as conn:
            return int(conn.execute(insert(pending_deliveries).values(**row)).inserted_primary_key[0])

    def pending(self, destination_prefix: str | None = None) -> list[Pending]:
        """Pending deliveries, oldest first."""
        t = pending_deliveries
        query = select(t).order_by(t.c.created_at, t.c.id)
        if destination_prefix:
            query = query.where(t.c.destination.startswith(destination_prefix, autoescape=True))
        with self._store._tx("read pending deliveries") as conn:
            rows = conn.execute(query).all()
        return [Pending(r.id, r.run_id, r.destination, dict(r.payload or {}), r.created_at, r.attempts, r.last_error)
                for r in rows]

    def done(self, pending_id: int) -> None:
        """The delivery got through: forget it."""
        with self._store._tx("forget a delivered pending delivery") as conn:
            conn.execute(delete(pending_deliveries).where(pending_deliveries.c.id == pending_id))

    def failed_again(self, pending_id: int, attempts: int, error: str, payload: dict[str, Any] | None = None) -> None:
        """Another try failed: count it, keep the error (and what is left to send)."""
        t = pending_deliveries
        values: dict[str, Any] = {"attempts": t.c.attempts + attempts, "last_error": error}
        if payload is not None:
            values["payload"] = payload
        with self._store._tx("update a pending delivery") as conn:
            conn.execute(update(t).where(t.c.id == pending_id).values(**values))


# ---------------------------------------------------------------- accepted baselines


@dataclass
class BaselineRow:
    """One accepted baseline as stored; `cases` maps case id to (topic, data) when read with them."""

    id: int
    suite: str
    run_id: str
    accepted_at: float
    accepted_by: str | None
    note: str | None
    git_sha: str | None
    model: str | None
    run_started: float
    serving: list[list[Any]] = field(default_factory=list)
    cases: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)


def _baseline_from(row: Any) -> BaselineRow:
    return BaselineRow(id=row.id, suite=row.suite, run_id=row.run_id, accepted_at=row.accepted_at,
                       accepted_by=row.accepted_by, note=row.note, git_sha=row.git_sha, model=row.model,
                       run_started=row.run_started, serving=list(row.serving or []))


class Baselines:
    """`store.baselines`: accepted baselines and their per-case data."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def add(self, row: dict[str, Any], cases: Sequence[tuple[str, str, dict[str, Any]]]) -> int:
        """Save a baseline (`row`: the `baselines` columns but id) with its (case id, topic, data); its id."""
        with self._store._tx("save the baseline") as conn:
            bid = conn.execute(insert(baselines).values(**row)).inserted_primary_key[0]
            if cases:
                conn.execute(insert(baseline_cases), [
                    {"baseline_id": bid, "case_id": case_id, "topic": topic, "data": data}
                    for case_id, topic, data in cases
                ])
        return int(bid)

    def latest(self, suite: str, *, with_cases: bool = True) -> BaselineRow | None:
        """The suite's latest accepted baseline, or None."""
        b, bc = baselines, baseline_cases
        with self._store._tx("read baselines") as conn:
            row = conn.execute(
                select(b).where(b.c.suite == suite).order_by(b.c.accepted_at.desc(), b.c.id.desc()).limit(1)
            ).first()
            if row is None:
                return None
            base = _baseline_from(row)
            if with_cases:
                for r in conn.execute(select(bc).where(bc.c.baseline_id == base.id).order_by(bc.c.id)):
                    base.cases[r.case_id] = (r.topic, dict(r.data or {}))
        return base

    def recent(self, suite: str | None = None, limit: int = 20) -> list[BaselineRow]:
        """Accepted baselines, newest first (without their cases)."""
        b = baselines
        query = select(b).order_by(b.c.accepted_at.desc(), b.c.id.desc()).limit(limit)
        if suite is not None:
            query = query.where(b.c.suite == suite)
        with self._store._tx("read baselines") as conn:
            rows = conn.execute(query).all()
        return [_baseline_from(r) for r in rows]
