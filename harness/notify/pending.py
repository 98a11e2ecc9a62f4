"""Deliveries that did not get through, kept in the store until they do.

A row holds the *redacted* payload exactly as it would have been sent, never a webhook
URL, token or key: the destination's credentials are read again from the suite when the
row is re-sent, so rotating a leaked key does not strand old rows, and the history
database (shared with the whole team) never holds a secret.

The table lives on the store's engine, created with `checkfirst=True` so it appears in
stores made before it existed; it has its own MetaData so the store's migrations can
adopt it later without this module changing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Column, Double, Integer, MetaData, String, Table, Text, delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from ..store import StoreError

metadata = MetaData()

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


@dataclass
class Pending:
    id: int
    run_id: str
    destination: str
    payload: dict[str, Any]
    created_at: float
    attempts: int
    last_error: str | None


def _engine(store: Any):
    engine = store.engine
    try:
        metadata.create_all(engine, checkfirst=True)
    except SQLAlchemyError as exc:
        raise StoreError(f"store {store.display_url}: cannot create pending_deliveries: {_first(exc)}") from None
    return engine


def _first(exc: BaseException) -> str:
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def add(store: Any, run_id: str, destination: str, payload: dict[str, Any], attempts: int, error: str) -> int:
    """Keep a failed delivery; returns its id."""
    engine = _engine(store)
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
    engine = _engine(store)
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
    with _engine(store).begin() as conn:
        conn.execute(delete(pending_deliveries).where(pending_deliveries.c.id == pending_id))


def failed_again(store: Any, pending_id: int, attempts: int, error: str,
                 payload: dict[str, Any] | None = None) -> None:
    """Another try failed: count it, keep the error (and what is left to send)."""
    values: dict[str, Any] = {"attempts": pending_deliveries.c.attempts + attempts, "last_error": error}
    if payload is not None:
        values["payload"] = payload
    with _engine(store).begin() as conn:
        conn.execute(update(pending_deliveries).where(pending_deliveries.c.id == pending_id).values(**values))
