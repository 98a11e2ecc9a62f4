"""Deliveries that did not get through, kept in the store until they do.

A row holds the *redacted* payload exactly as it would have been sent, never a webhook
URL, token or key: the destination's credentials are read again from the suite when the
row is re-sent, so rotating a leaked key does not strand old rows, and the history
database (shared with the whole team) never holds a secret.

The table, `pending_deliveries`, is defined in `harness.store.schema` and created by the
store's migrations when the store is opened; this module only reads and writes it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from ..store import StoreError
from ..store.schema import pending_deliveries


@dataclass
class Pending:
    id: int
    run_id: str
    destination: str
    payload: dict[str, Any]
    created_at: float
    attempts: int
    last_error: str | None


def _first(exc: BaseException) -> str:
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def add(store: Any, run_id: str, destination: str, payload: dict[str, Any], attempts: int, error: str) -> int:
    """Keep a failed delivery; returns its id."""
    engine = store.engine
    row = {"run_id": run_id, "destination": destination, "payload": payload, "created_at": time.time(),
           "attempts": attempts, "last_error": error}
    try:
        with engine.begin() as conn:
            result = conn.execute(insert(pending_deliveries).values(**row))
            return int(result.inserted_primary_key[0])
    except SQLAlchemyError as exc:
        raise StoreError(f"store {store.display_url}: cannot keep a pending delivery: {_first(exc)}") from None


def list_pending(store: Any, destination_prefix: str | None = None) -> list[Pending]:
    """Pending deliveries, oldest first."""
    engine = store.engine
    t = pending_deliveries
    query = select(t).order_by(t.c.created_at, t.c.id)
    if destination_prefix:
        query = query.where(t.c.destination.startswith(destination_prefix, autoescape=True))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [Pending(r.id, r.run_id, r.destination, dict(r.payload or {}), r.created_at, r.attempts, r.last_error)
            for r in rows]


def done(store: Any, pending_id: int) -> None:
    """The delivery got through: forget it."""
    with store.engine.begin() as conn:
        conn.execute(delete(pending_deliveries).where(pending_deliveries.c.id == pending_id))


def failed_again(store: Any, pending_id: int, attempts: int, error: str,
                 payload: dict[str, Any] | None = None) -> None:
    """Another try failed: count it, keep the error (and what is left to send)."""
    values: dict[str, Any] = {"attempts": pending_deliveries.c.attempts + attempts, "last_error": error}
    if payload is not None:
        values["payload"] = payload
    with store.engine.begin() as conn:
        conn.execute(update(pending_deliveries).where(pending_deliveries.c.id == pending_id).values(**values))
