"""When the daemon last fired each suite, kept in the suite's store.

The store outlives the daemon; this record is what lets a restarted daemon tell that a
fire was missed while it was down (see `catchup`). The rows live in the store
(`store.schedule_state`, table `schedule_state`); pass the suite's store.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..store import Store


def last_fire(store: Store, suite: str) -> datetime | None:
    """When `suite` was last fired by a daemon (UTC), or None if never."""
    value = store.schedule_state.last_fire(suite)
    return datetime.fromtimestamp(value, timezone.utc) if value is not None else None


def record_fire(store: Store, suite: str, when: datetime, run_id: str | None = None) -> None:
    """Remember that `suite` fired at `when`."""
    store.schedule_state.record_fire(suite, when.timestamp(), run_id)
