"""The `suite_locks` table: who runs which suite right now (used by `harness.locks`).

Every statement is a single INSERT, UPDATE or DELETE with its condition in the WHERE
clause, so taking a lock is atomic on SQLite and PostgreSQL alike without a read-then-write
race (and without SQLite's lock-upgrade deadlock).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from .schema import suite_locks

if TYPE_CHECKING:
    from .store import Store


@dataclass(frozen=True)
class LockInfo:
    name: str
    owner: str
    host: str
    pid: int
    run_id: str | None
    acquired: float
    heartbeat: float


class Locks:
    """`store.locks`: the rows of `suite_locks`. Database failures raise StoreError."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def holder(self, name: str) -> LockInfo | None:
        """Who holds the lock `name` right now (None if nobody)."""
        with self._store._tx(f"read the lock {name!r}") as conn:
            row = conn.execute(select(suite_locks).where(suite_locks.c.name == name)).first()
        return LockInfo(**row._asdict()) if row else None

    def insert(self, info: LockInfo) -> bool:
        """Take a free lock; False when somebody holds it (or held it and died)."""
        try:
            with self._store._engine.begin() as conn:
                conn.execute(insert(suite_locks).values(**asdict(info)))
        except IntegrityError:
            return False
        except SQLAlchemyError as exc:
            raise self._store._error(f"take the lock {info.name!r}", exc) from None
        return True

    def take_over(self, stale: LockInfo, info: LockInfo) -> bool:
        """Take the lock from a stale holder, only if its row is still exactly `stale`."""
        with self._store._tx(f"take over the lock {info.name!r}") as conn:
            done = conn.execute(
                update(suite_locks)
                .where(suite_locks.c.name == stale.name, suite_locks.c.owner == stale.owner,
                       suite_locks.c.heartbeat == stale.heartbeat)
                .values(**asdict(info))
            )
        return done.rowcount == 1

    def beat(self, name: str, owner: str, now: float) -> bool:
        """Refresh the holder's heartbeat; False when `owner` no longer holds the lock."""
        with self._store._tx(f"refresh the lock {name!r}") as conn:
            done = conn.execute(
                update(suite_locks)
                .where(suite_locks.c.name == name, suite_locks.c.owner == owner)
                .values(heartbeat=now)
            )
        return done.rowcount == 1

    def release(self, name: str, owner: str) -> None:
        """Delete the lock row if `owner` still holds it."""
        with self._store._tx(f"release the lock {name!r}") as conn:
            conn.execute(delete(suite_locks).where(suite_locks.c.name == name, suite_locks.c.owner == owner))
