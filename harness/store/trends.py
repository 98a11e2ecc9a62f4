"""`store.trends`: the narrow reads of the trend report over a window of history.

The store may hold months of runs of thousands of cases, so these never load transcripts:
result columns (tags as raw JSON text), plus two JSON reads done inside the database where
it can (SQLite's `json_each`, PostgreSQL's `json_array_elements`): the judge score of each
result and the total time of each turn. Only (result id, number) pairs cross into Python.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Text, cast, select, text

from . import schema as db

if TYPE_CHECKING:
    from .store import Store

# The columns of `result_rows`, in order.
RESULT_COLUMNS = ("id", "run_id", "case_id", "topic", "tags", "repeat_index", "status", "model",
                  "tokens_in", "tokens_out", "cost")

_JSON_SQL = {
    "sqlite": {
        "judge": (
            "SELECT r.id AS id, AVG(CAST(json_extract(j.value, '$.score') AS REAL)) AS v "
            "FROM results r JOIN runs u ON u.run_id = r.run_id, json_each(CASE WHEN json_valid(r.checks) THEN r.checks ELSE '[]' END) j "
            "WHERE {where} AND json_extract(j.value, '$.name') = 'judge' "
            "AND COALESCE(json_extract(j.value, '$.skipped'), 0) = 0 "
            "AND COALESCE(json_extract(j.value, '$.error'), 0) = 0 "
            "AND json_extract(j.value, '$.score') IS NOT NULL GROUP BY r.id"
        ),
        # a damaged row (text that is not JSON) is read as empty, never fails the whole query
        # one json_extract per turn (each call parses the turn again); nulls dropped later
        "turns": (
            "SELECT r.id AS id, json_extract(t.value, '$.reply.total_ms') AS v "
            "FROM results r JOIN runs u ON u.run_id = r.run_id, json_each(CASE WHEN json_valid(r.transcript) THEN r.transcript ELSE '{{}}' END, '$.turns') t "
            "WHERE {where} AND r.transcript IS NOT NULL"
        ),
    },
    "postgresql": {
        "judge": (
            "SELECT r.id AS id, AVG((j->>'score')::float) AS v "
            "FROM results r JOIN runs u ON u.run_id = r.run_id "
            "CROSS JOIN LATERAL json_array_elements(r.checks::json) j "
            "WHERE {where} AND j->>'name' = 'judge' "
            "AND COALESCE((j->>'skipped')::boolean, false) = false "
            "AND COALESCE((j->>'error')::boolean, false) = false "
            "AND j->>'score' IS NOT NULL GROUP BY r.id"
        ),
        "turns": (
            "SELECT r.id AS id, (t->'reply'->>'total_ms')::float AS v "
            "FROM results r JOIN runs u ON u.run_id = r.run_id "
            "CROSS JOIN LATERAL json_array_elements(r.transcript::json->'turns') t "
            "WHERE {where} AND r.transcript IS NOT NULL AND t->'reply'->>'total_ms' IS NOT NULL"
        ),
    },
}


def _window(suite: str | None, since: float | None) -> tuple[list[Any], str, dict[str, Any]]:
    """The run filter, as SQLAlchemy conditions and as SQL text for the JSON queries."""
    conds, sql, params = [], ["1 = 1"], {}
    if suite is not None:
        conds.append(db.runs.c.suite == suite)
        sql.append("u.suite = :suite")
        params["suite"] = suite
    if since is not None:
        conds.append(db.runs.c.started >= since)
        sql.append("u.started >= :since")
        params["since"] = since
    return conds, " AND ".join(sql), params


def _unpack(what: str, rid: int, value: Any) -> list[tuple[int, float]]:
    if what == "judge":
        scores = [c.get("score") for c in value or [] if isinstance(c, dict) and c.get("name") == "judge"
                  and not c.get("skipped") and not c.get("error") and isinstance(c.get("score"), (int, float))]
        return [(rid, sum(scores) / len(scores))] if scores else []
    turns = (value or {}).get("turns") or [] if isinstance(value, dict) else []
    out = []
    for t in turns:
        ms = (t.get("reply") or {}).get("total_ms") if isinstance(t, dict) else None
        if isinstance(ms, (int, float)):
            out.append((rid, float(ms)))
    return out


class TrendReads:
    def __init__(self, store: Store) -> None:
        self._store = store

    def result_rows(self, suite: str | None, since: float | None) -> list[tuple[Any, ...]]:
        """One row per result in the window (columns `RESULT_COLUMNS`; tags as raw JSON text)."""
        r, u = db.results, db.runs
        conds, _, _ = _window(suite, since)
        cols = [r.c.id, r.c.run_id, r.c.case_id, r.c.topic, cast(r.c.tags, Text).label("tags"), r.c.repeat_index,
                r.c.status, r.c.model, r.c.tokens_in, r.c.tokens_out, r.c.cost]
        query = select(*cols).select_from(r.join(u, u.c.run_id == r.c.run_id)).where(*conds)
        with self._store._tx("read the history") as conn:
            return conn.execute(query).all()

    def judge_scores(self, suite: str | None, since: float | None) -> list[tuple[Any, Any]]:
        """(result id, mean judge score) for every judged result in the window."""
        return self._json_numbers("judge", suite, since)

    def turn_times(self, suite: str | None, since: float | None) -> list[tuple[Any, Any]]:
        """(result id, total ms) for every turn in the window (values may be None or text:
        the caller coerces them)."""
        return self._json_numbers("turns", suite, since)

    def _json_numbers(self, what: str, suite: str | None, since: float | None) -> list[tuple[Any, Any]]:
        _, where, params = _window(suite, since)
        sql = _JSON_SQL.get(self._store._engine.dialect.name, {}).get(what)
        with self._store._tx("read the history") as conn:
            if sql is not None:
                return conn.execute(text(sql.format(where=where)), params).all()
            # Any other database: read the one JSON column needed and unpack it here.
            r, u = db.results, db.runs
            conds, _, _ = _window(suite, since)
            col = r.c.checks if what == "judge" else r.c.transcript
            found: list[tuple[Any, Any]] = []
            query = select(r.c.id, col).select_from(r.join(u, u.c.run_id == r.c.run_id)).where(*conds)
            for rid, value in conn.execute(query):
                found.extend(_unpack(what, rid, value))
        return found
