"""Deliveries that did not get through, kept in the store until they do.

A row holds the *redacted* payload exactly as it would have been sent, never a webhook
URL, token or key: the destination's credentials are read again from the suite when the
row is re-sent, so rotating a leaked key does not strand old rows, and the history
database (shared with the whole team) never holds a secret.

The rows live in the store (`store.notifications`, table `pending_deliveries`); this
module is the notifiers' way in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..store.features import Pending

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["Pending", "add", "done", "failed_again", "list_pending"]


def add(store: Store, run_id: str, destination: str, payload: dict[str, Any], attempts: int, error: str) -> int:
    """Keep a failed delivery; returns its id."""
    return store.notifications.add(run_id, destination, payload, attempts, error)


def list_pending(store: Store, destination_prefix: str | None = None) -> list[Pending]:
    """Pending deliveries, oldest first."""
    return store.notifications.pending(destination_prefix)


def done(store: Store, pending_id: int) -> None:
    """The delivery got through: forget it."""
    store.notifications.done(pending_id)


def failed_again(store: Store, pending_id: int, attempts: int, error: str,
                 payload: dict[str, Any] | None = None) -> None:
    """Another try failed: count it, keep the error (and what is left to send)."""
    store.notifications.failed_again(pending_id, attempts, error, payload)
