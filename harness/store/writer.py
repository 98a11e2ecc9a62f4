"""Group commit of case results on a background thread.

The runner finishes cases on the event loop, hundreds per second at full concurrency;
a database commit per result would make the store the bottleneck, and a blocking write on
the loop would stall every call in flight. So `add` only appends to a buffer, and one
thread writes whatever has piled up in a single transaction. The thread lingers a moment
(`linger_s`, 50 ms) after the first result of a batch before it writes: a transaction costs
about a millisecond of CPU whatever its size, and that CPU is taken from the runner (the
GIL), so at a thousand results a second the linger turns ~200 small transactions into ~20.
A result is still durable within a tenth of a second; `flush` and `close` do not wait.

A write that fails is retried briefly, then the batch is written row by row, so one value
the database refuses costs only its own row. A row that still cannot be written is kept and
raised from `flush`/`close` (and from the next `add`), so results are never dropped without
a word; with `spill=True` (what `harness run` uses) it goes instead to a spill file beside
the store (JSON lines, `Store.spill_results`), the writer carries on, and `problem` says how
many and where.
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
# Row by row stops trying after this many rows in a row failed: the store itself is down
# (a full disk), not one odd value, and each further try would only cost time.
_MAX_FAILED_ROWS_IN_A_ROW = 20


class ResultWriter:
    """Writes one run's results to the store in batches, off the caller's thread."""

    def __init__(self, store: Store, run_id: str, *, max_batch: int = 500, linger_s: float = 0.05,
                 spill: bool = False) -> None:
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
        self._spill = spill
        self._spilled = 0  # kept in the spill file
        self._unsaved = 0  # neither stored nor spilled (the spill file could not be written either)
        self._spill_path: str | None = None
        self._spill_reason: str | None = None
        self._store_down = False  # the last batch failed row by row too: do not retry each row
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
        return self._added - self._written - self._spilled - self._unsaved

    @property
    def spilled(self) -> int:
        """Results the store refused that were kept in the spill file instead."""
        return self._spilled

    @property
    def unsaved(self) -> int:
        """Results neither the store nor the spill file could take."""
        return self._unsaved

    @property
    def spill_path(self) -> str | None:
        return self._spill_path

    @property
    def problem(self) -> str | None:
        """One line on results that did not reach the store (spill mode), else None."""
        if not (self._spilled or self._unsaved):
            return None
        parts = []
        if self._spilled:
            parts.append(f"{self._spilled} results could not be written to the store and were kept in "
                         f"{self._spill_path}")
        if self._unsaved:
            parts.append(f"{self._unsaved} results could be written neither to the store nor to a spill file")
        return "; ".join(parts) + f" ({self._spill_reason})"

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
                ok = self._cond.wait_for(lambda: self._done() >= target or self._error is not None, timeout)
            finally:
                self._flushing -= 1
            if self._error is not None:
                raise self._error
            if not ok:
                raise StoreError(
                    f"store {self._store.display_url}: {target - self._done()} results of run "
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

    def _done(self) -> int:
        return self._written + self._spilled + self._unsaved

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
            written, failed, error = self._write(batch)
            spilled = unsaved = 0
            if failed and self._spill:
                spilled, unsaved = self._spill_out(failed, error)
                failed = []
            with self._cond:
                self._written += written
                self._spilled += spilled
                self._unsaved += unsaved
                if failed:
                    # Keep the unwritten results in place, stop writing, tell everyone.
                    self._pending[:0] = failed
                    self._error = error
                self._cond.notify_all()
            if failed:
                return

    def _write(self, batch: list[CaseResult]) -> tuple[int, list[CaseResult], HarnessError | None]:
        """(rows written, rows that could not be, the error): the batch at once, else row by row."""
        error = self._write_batch(batch, retry=not self._store_down)
        if error is None:
            self._store_down = False
            return len(batch), [], None
        if len(batch) == 1:
            return 0, batch, error
        failed: list[CaseResult] = []
        in_a_row = 0
        limit = 1 if self._store_down else _MAX_FAILED_ROWS_IN_A_ROW
        for i, result in enumerate(batch):
            row_error = self._write_batch([result], retry=False)
            if row_error is None:
                in_a_row = 0
                continue
            error = row_error
            failed.append(result)
            in_a_row += 1
            if in_a_row >= limit:
                failed.extend(batch[i + 1:])
                break
        self._store_down = len(failed) == len(batch)
        return len(batch) - len(failed), failed, error

    def _spill_out(self, failed: list[CaseResult], error: HarnessError | None) -> tuple[int, int]:
        reason = error.line() if error is not None else "the store refused them"
        self._spill_reason = self._spill_reason or reason
        path, kept, problem = self._store.spill_results(self._run_id, failed, reason=reason)
        if kept:
            self._spill_path = str(path)
        if problem and problem not in self._spill_reason:
            self._spill_reason = f"{self._spill_reason}; {problem}"
        return kept, len(failed) - kept

    def _write_batch(self, batch: list[CaseResult], *, retry: bool = True) -> HarnessError | None:
        for pause in (*(_RETRY_PAUSES_S if retry else ()), None):
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
        if self._closed:
            return
        try:
            self.close()
        except HarnessError:
            pass  # the process is ending; the run will be shown as incomplete
