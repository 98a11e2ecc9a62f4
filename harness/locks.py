"""A lock per suite, kept in the store, so one suite never runs twice at once.

A cron daemon and a CI job (or two daemons on two hosts) may share one store. Whoever
starts a run of a suite first takes the suite's row in `suite_locks`; the other sees who
holds it and stays out. The holder refreshes a heartbeat while it runs, so a holder that
died (killed job, lost host) gives the lock up after `stale_after` seconds; on the same
host a dead process id frees it at once.

A holder that only *looked* dead (a paused VM, a stalled network) may find on its next
heartbeat that another process took the lock over. It then sets `lost` (with `lost_to`,
the new holder) and calls `on_lost`: the pipeline stops starting cases, keeps what already
finished and ends the run with `lost_message`, never writing over the new holder's work.

The rows live in the store (`store.locks`, table `suite_locks`); pass a store opened with
`Store.open`.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import ExitCode, HarnessError
from .store.locks import LockInfo

if TYPE_CHECKING:
    from .store import Store

__all__ = ["DEFAULT_STALE_AFTER_S", "LockHeld", "LockInfo", "SuiteLock", "holder"]

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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours, or cannot tell: assume alive
        return True
    return True


def holder(store: Store, name: str) -> LockInfo | None:
    """Who holds the lock `name` right now (None if nobody)."""
    return store.locks.holder(name)


class SuiteLock:
    """The lock on one suite, held by this object.

        with SuiteLock(store, "daily-drift", run_id=run_id):
            ...   # raises LockHeld if another process holds it

    While held, a daemon thread refreshes the heartbeat every `stale_after / 4` seconds.
    `on_lost` is called (on that thread) if a heartbeat finds the lock taken over.
    """

    def __init__(
        self,
        store: Store,
        name: str,
        *,
        run_id: str | None = None,
        stale_after: float = DEFAULT_STALE_AFTER_S,
        heartbeat_every: float | None = None,
        on_lost: Callable[[], object] | None = None,
    ) -> None:
        if stale_after <= 0:
            raise ValueError("stale_after must be positive")
        self.store = store
        self.name = name
        self.run_id = run_id
        self.stale_after = stale_after
        self.heartbeat_every = heartbeat_every or max(0.2, stale_after / 4)
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.owner = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self.on_lost = on_lost
        self.lost = False  # set when a heartbeat found the lock taken over
        self.lost_to: LockInfo | None = None  # who took it, as seen when we noticed
        self.lost_at: float | None = None
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
        mine = LockInfo(name=self.name, owner=self.owner, host=self.host, pid=self.pid,
                        run_id=self.run_id, acquired=now, heartbeat=now)
        locks = self.store.locks
        if locks.insert(mine):
            return self._taken()
        # somebody holds it (or held it and died): look closer
        current = locks.holder(self.name)
        if current is None:
            return self.try_acquire()  # released in between; try again
        if current.owner == self.owner:
            return self._taken()
        if not self._is_stale(current, now):
            return current
        # Take over, but only if the row is still exactly the stale one we looked at.
        if locks.take_over(current, mine):
            return self._taken()
        return locks.holder(self.name) or self.try_acquire()

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
            self.store.locks.release(self.name, self.owner)
        except HarnessError:
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

    def check(self) -> bool:
        """Refresh the heartbeat now; False (and `lost` set) if the lock was taken over.
        A store that cannot be reached says nothing either way: True."""
        if self.lost:
            return False
        if not self._held:
            return True
        try:
            still = self.store.locks.beat(self.name, self.owner, time.time())
        except HarnessError:
            return True  # a dropped connection: try again next beat, the lock is not stale yet
        if not still:
            self._lose()
        return still

    def lost_message(self, done: int, planned: int) -> str:
        """One line for a run that lost its lock: who took it, when, and how far we got."""
        who = self.lost_to
        by = f"run {who.run_id}" if who is not None and who.run_id else "another process"
        if who is not None:
            by += f" ({who.host}, pid {who.pid})"
        at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(who.acquired if who is not None else self.lost_at))
        return f"lock on suite {self.name!r} taken over by {by} at {at}; stopped after {done} of {planned} cases"

    def _lose(self) -> None:
        self.lost_at = time.time()
        try:
            self.lost_to = self.store.locks.holder(self.name)
        except HarnessError:
            self.lost_to = None
        self.lost = True
        self._held = False  # never delete the new holder's row on release
        if self.on_lost is not None:
            self.on_lost()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_every):
            if not self.check():
                return  # taken over after we looked stale: `on_lost` stops the run
