"""A lock per suite, kept in the store, so one suite never runs twice at once.

A cron daemon and a CI job (or two daemons on two hosts) may share one store. Whoever
starts a run of a suite first takes the suite's row in `suite_locks`; the other sees who
holds it and stays out. The holder refreshes a heartbeat while it runs, so a holder that
died (killed job, lost host) gives the lock up after `stale_after` seconds; on the same
host a dead process id frees it at once.

Every statement is a single INSERT, UPDATE or DELETE with its condition in the WHERE
clause, so taking a lock is atomic on SQLite and PostgreSQL alike without a read-then-write
race (and without SQLite's lock-upgrade deadlock).

The table, `suite_locks`, is defined in `harness.store.schema` and created by the store's
migrations: pass the engine of a store opened with `Store.open`.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from .errors import ExitCode, HarnessError
from .store.schema import suite_locks

DEFAULT_STALE_AFTER_S = 600.0


class LockHeld(HarnessError):
    """Another process is running this suite; the new run stays out."""

    exit_code = ExitCode.UNREACHABLE

    def __init__(self, holder: "LockInfo"):
        self.holder = holder
        super().__init__(
            f"suite {holder.name!r} is already running (run {holder.run_id or '?'} on {holder.host}, "
            f"pid {holder.pid}, for {time.time() - holder.acquired:.0f} s); not starting a second run"
        )


@dataclass(frozen=True)
class LockInfo:
    name: str
    owner: str
    host: str
    pid: int
    run_id: str | None
    acquired: float
    heartbeat: float


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours, or cannot tell: assume alive
        return True
    return True


def holder(engine: Engine, name: str) -> LockInfo | None:
    """Who holds the lock `name` right now (None if nobody)."""
    with engine.connect() as conn:
        row = conn.execute(select(suite_locks).where(suite_locks.c.name == name)).first()
    return LockInfo(**row._asdict()) if row else None


class SuiteLock:
    """The lock on one suite, held by this object.

        with SuiteLock(store.engine, "daily-drift", run_id=run_id):
            ...   # raises LockHeld if another process holds it

    While held, a daemon thread refreshes the heartbeat every `stale_after / 4` seconds.
    """

    def __init__(
        self,
        engine: Engine,
        name: str,
        *,
        run_id: str | None = None,
        stale_after: float = DEFAULT_STALE_AFTER_S,
        heartbeat_every: float | None = None,
    ) -> None:
        if stale_after <= 0:
            raise ValueError("stale_after must be positive")
        self.engine = engine
        self.name = name
        self.run_id = run_id
        self.stale_after = stale_after
        self.heartbeat_every = heartbeat_every or max(0.2, stale_after / 4)
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.owner = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self.lost = False  # set when a heartbeat found the lock taken over
        self._held = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def held(self) -> bool:
        return self._held

    # -- taking and giving back

    def try_acquire(self) -> LockInfo | None:
        """Take the lock if it is free or stale; return None on success, else the holder."""
        now = time.time()
        row = {"name": self.name, "owner": self.owner, "host": self.host, "pid": self.pid,
               "run_id": self.run_id, "acquired": now, "heartbeat": now}
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(suite_locks).values(**row))
            return self._taken()
        except IntegrityError:
            pass  # somebody holds it (or held it and died): look closer below
        current = holder(self.engine, self.name)
        if current is None:
            return self.try_acquire()  # released in between; try again
        if current.owner == self.owner:
            return self._taken()
        if not self._is_stale(current, now):
            return current
        # Take over, but only if the row is still exactly the stale one we looked at.
        with self.engine.begin() as conn:
            done = conn.execute(
                update(suite_locks)
                .where(suite_locks.c.name == self.name, suite_locks.c.owner == current.owner,
                       suite_locks.c.heartbeat == current.heartbeat)
                .values(**row)
            )
        if done.rowcount == 1:
            return self._taken()
        return holder(self.engine, self.name) or self.try_acquire()

    def acquire(self) -> None:
        """Take the lock or raise LockHeld naming the holder."""
        current = self.try_acquire()
        if current is not None:
            raise LockHeld(current)

    def release(self) -> None:
        """Give the lock back (only if this object still holds it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if not self._held:
            return
        self._held = False
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(suite_locks).where(suite_locks.c.name == self.name,
                                                       suite_locks.c.owner == self.owner))
        except SQLAlchemyError:
            pass  # the store is gone; the heartbeat stops, so the lock goes stale by itself

    def __enter__(self) -> "SuiteLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- internals

    def _is_stale(self, info: LockInfo, now: float) -> bool:
        if info.host == self.host and not _pid_alive(info.pid):
            return True
        return now - info.heartbeat > self.stale_after

    def _taken(self) -> None:
        self._held = True
        self.lost = False
        self._stop.clear()
        if self._thread is None:
            self._thread = threading.Thread(target=self._beat, name=f"harness-lock-{self.name}", daemon=True)
            self._thread.start()
        return None

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_every):
            try:
                with self.engine.begin() as conn:
                    done = conn.execute(
                        update(suite_locks)
                        .where(suite_locks.c.name == self.name, suite_locks.c.owner == self.owner)
                        .values(heartbeat=time.time())
                    )
            except SQLAlchemyError:
                continue  # a dropped connection: try again next beat, the lock is not stale yet
            if done.rowcount == 0:
                self.lost = True  # taken over after we looked stale; the run goes on, say so
                return
