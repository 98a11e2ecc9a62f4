"""Group commit of case results on a background thread.

The runner finishes cases on the event loop, hundreds per second at full concurrency;
a database commit per result would make the store the bottleneck, and a blocking write on
the loop would stall every call in flight. So `add` only appends to a buffer, and one
thread writes whatever has piled up in a single transaction. The thread lingers a moment
(`linger_s`, 50 ms) after the first result of a batch before it writes: a transaction costs
about a millisecond of CPU whatever its size, and that CPU is taken from the runner (the
GIL), so at a thousand results a second the linger turns ~200 small transactions into ~20.
A result is still durable within a tenth of a second; `flush` and `close` do not wait.

A write that fails is retried briefly, then kept and raised from `flush`/`close` (and from
the next `add`), so results are never dropped without a word.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
import time

from ..errors import HarnessError
from ..records import CaseResult
from .store import Store, StoreError

_RETRY_PAUSES_S = (0.1, 0.5)  # for a store that hiccups (a dropped PostgreSQL connection)


class ResultWriter:
    """Writes one run's results to the store in batches, off the caller's thread."""

    def __init__(self, store: Store, run_id: str, *, max_batch: int = 500, linger_s: float = 0.05) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._store = store
        self._run_id = run_id
        self._max_batch = max_batch
        self._linger_s = linger_s
        self._flushing = 0  # callers waiting in flush(): the thread must not linger for them
        self._cond = threading.Condition()
        self._pending: list[CaseResult] = []
        self._added = 0
        self._written = 0
        self._error: HarnessError | None = None
        self._closing = False
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=f"harness-writer-{run_id}", daemon=True)
        self._thread.start()
        # A daemon thread dies silently at interpreter exit; flush first if nobody closed us.
        atexit.register(self._close_at_exit)

    @property
    def added(self) -> int:
        return self._added

    @property
    def written(self) -> int:
        """Results known to be committed."""
        return self._written

    @property
    def pending(self) -> int:
        return self._added - self._written

    def add(self, result: CaseResult) -> None:
        """Queue one result; returns at once. Raises if an earlier write failed."""
        with self._cond:
            if self._error is not None:
                raise self._error
            if self._closing:
                raise HarnessError(f"result writer for run {self._run_id} is closed")
            self._pending.append(result)
            self._added += 1
            if len(self._pending) == 1 or len(self._pending) >= self._max_batch:
                self._cond.notify_all()  # the thread waits only for a first result or a full batch

    def flush(self, timeout: float | None = None) -> None:
        """Block until every result added so far is committed (or raise why it is not)."""
        with self._cond:
            target = self._added
            self._flushing += 1
            self._cond.notify_all()
            try:
                ok = self._cond.wait_for(lambda: self._written >= target or self._error is not None, timeout)
            finally:
                self._flushing -= 1
            if self._error is not None:
                raise self._error
            if not ok:
                raise StoreError(
                    f"store {self._store.display_url}: {target - self._written} results of run "
                    f"{self._run_id} still not written after {timeout:g} s"
                )

    def close(self) -> None:
        """Flush, stop the thread, and raise a write error if one happened."""
        if self._closed:
            if self._error is not None:
                raise self._error
            return
        try:
            self.flush()
        finally:
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            self._thread.join()
            self._closed = True
            atexit.unregister(self._close_at_exit)

    async def aflush(self) -> None:
        """`flush` for the event loop: waits in a worker thread, never blocks the loop."""
        await asyncio.to_thread(self.flush)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> ResultWriter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- the thread

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._closing)
                if not self._pending:
                    return  # closing, nothing left
                if self._linger_s > 0:
                    self._cond.wait_for(
                        lambda: self._closing or self._flushing or len(self._pending) >= self._max_batch,
                        self._linger_s,
                    )
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
            error = self._write(batch)
            with self._cond:
                if error is None:
                    self._written += len(batch)
                else:
                    # Keep the unwritten results in place, stop writing, tell everyone.
                    self._pending[:0] = batch
                    self._error = error
                self._cond.notify_all()
            if error is not None:
                return

    def _write(self, batch: list[CaseResult]) -> HarnessError | None:
        for pause in (*_RETRY_PAUSES_S, None):
            try:
                self._store.add_results(self._run_id, batch)
                return None
            except HarnessError as exc:
                error: HarnessError = exc
            except Exception as exc:  # a bug or odd data must still surface, not kill the thread quietly
                return StoreError(
                    f"store {self._store.display_url}: could not write results of run {self._run_id}: "
                    f"{type(exc).__name__}: {exc}"
                )
            if pause is not None:
                time.sleep(pause)
        return error

    def _close_at_exit(self) -> None:
        try:
            self.close()
        except HarnessError:
            pass  # the process is ending; the run will be shown as incomplete
