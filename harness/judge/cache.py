"""The judge's memory: verdicts, generated evaluation steps and the judge's last fingerprint.

An unchanged answer judged by an unchanged judge against an unchanged rubric gets the
same verdict, so tomorrow's run should not pay for it again. Rows live in any SQLAlchemy
database (by default `<root>/.harness/judge-cache.db`, SQLite in WAL mode) in tables
prefixed `judge_`, so they can share a PostgreSQL database with the run history. The
tables and their statements belong to the store (`harness.store.judge_cache`).

Scores are stored, not pass/fail: the pass is recomputed against the threshold the check
asks for today. New rows are buffered and written in one transaction per batch, so a run
of hundreds of judged answers does not pay one commit per answer; `flush()` (called by
the service's `aclose`) writes the rest. Losing unflushed rows to a crash only costs a
re-judge.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..store.judge_cache import JudgeCacheTables

FLUSH_EVERY = 200


@dataclass(slots=True)
class CachedVerdict:
    scores: list[float]
    reason: str
    judge: str = ""
    rubric: str = ""
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost: float | None = None
    created: float = field(default_factory=time.time)


def default_url(root: str | Path) -> str:
    return f"sqlite:///{Path(root).resolve() / '.harness' / 'judge-cache.db'}"


class JudgeCache:
    """Verdicts and steps by key; reads go to memory first, then the database."""

    def __init__(self, url_or_tables: str | JudgeCacheTables):
        """`url_or_tables`: a SQLAlchemy URL of the cache's own database, or the tables in a
        shared history store (`store.judge_cache()`)."""
        if isinstance(url_or_tables, str):
            from ..store.judge_cache import JudgeCacheTables

            url_or_tables = JudgeCacheTables.open(url_or_tables)
        self.tables = url_or_tables
        self._verdicts: dict[str, CachedVerdict] = {}
        self._steps: dict[str, list[str]] = {}
        self._pending_verdicts: dict[str, CachedVerdict] = {}
        self._pending_steps: dict[str, tuple[str, list[str]]] = {}
        self._pending_meta: dict[str, str] = {}

    # --- verdicts ---------------------------------------------------------------------
    def get_verdict(self, key: str) -> CachedVerdict | None:
        hit = self._verdicts.get(key)
        if hit is not None:
            return hit
        row = self.tables.verdict(key)
        if row is None:
            return None
        try:
            scores = [float(s) for s in json.loads(row["scores"])]
        except (ValueError, TypeError):
            return None  # a damaged row is a miss, not a crash
        hit = CachedVerdict(scores=scores, reason=row["reason"], judge=row["judge"], rubric=row["rubric"],
                            tokens_in=row["tokens_in"], tokens_out=row["tokens_out"], cost=row["cost"],
                            created=row["created"])
        self._verdicts[key] = hit
        return hit

    def put_verdict(self, key: str, verdict: CachedVerdict) -> None:
        self._verdicts[key] = verdict
        self._pending_verdicts[key] = verdict
        self._maybe_flush()

    # --- generated evaluation steps -------------------------------------------------------
    def get_steps(self, key: str) -> list[str] | None:
        hit = self._steps.get(key)
        if hit is not None:
            return hit
        raw = self.tables.steps(key)
        if raw is None:
            return None
        try:
            found = [str(s) for s in json.loads(raw)]
        except (ValueError, TypeError):
            return None
        if not found:
            return None
        self._steps[key] = found
        return found

    def put_steps(self, key: str, judge: str, found: list[str]) -> None:
        self._steps[key] = list(found)
        self._pending_steps[key] = (judge, list(found))
        self._maybe_flush()

    # --- small facts (the judge's last fingerprint) -------------------------------------
    def get_meta(self, key: str) -> str | None:
        if key in self._pending_meta:
            return self._pending_meta[key]
        return self.tables.meta(key)

    def set_meta(self, key: str, value: str) -> None:
        self._pending_meta[key] = value

    # --- writing ------------------------------------------------------------------------
    def _maybe_flush(self) -> None:
        if len(self._pending_verdicts) + len(self._pending_steps) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        """Write buffered rows in one transaction (delete-then-insert: portable upsert)."""
        if not (self._pending_verdicts or self._pending_steps or self._pending_meta):
            return
        v, s, m = self._pending_verdicts, self._pending_steps, self._pending_meta
        self._pending_verdicts, self._pending_steps, self._pending_meta = {}, {}, {}
        self.tables.write(
            verdicts=[
                {"key": k, "judge": x.judge, "rubric": x.rubric, "scores": json.dumps(x.scores),
                 "reason": x.reason, "tokens_in": x.tokens_in, "tokens_out": x.tokens_out, "cost": x.cost,
                 "created": x.created}
                for k, x in v.items()
            ],
            steps=[
                {"key": k, "judge": j, "steps": json.dumps(found, ensure_ascii=False), "created": time.time()}
                for k, (j, found) in s.items()
            ],
            meta=m,
        )

    def close(self) -> None:
        self.flush()
        self.tables.close()
