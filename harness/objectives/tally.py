"""A run's tally: the few numbers every objective's indicator is computed from.

A run is counted once, when it finishes, from the results in memory; the tally is kept in
the run's row (`extra["objectives"]["tally"]`), so `harness slo status` over 90 days of
10,000-case runs reads 90 small mappings instead of 900,000 transcripts. A run made before
the suite had objectives (or before a latency limit was set) is counted from its stored
rows once and its tally kept.

    {"v": 1,
     "calls":   {topic: [passed, failed, error, not_run]},
     "checks":  {check name: [evaluated, failed]},        # skipped and errored checks left out
     "judge":   {rubric or "": [judged, failed]},
     "latency": {"turn": {"n", "sum", "p50", "p90", "p95", "p99", "over": {"<5000": n}}, "first": …}}

(`first`, not `first_token_ms`: a key naming a token is masked wherever run data is stored.)

Latency counts caller turns the agent answered (the greeting and replies after a hang-up
are not the service's pace), as the call's own pace does.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from typing import Any

from ..percentiles import quantile
from ..objective_spec import JUDGE_CHECKS, LATENCY, QUANTILES, ObjectiveSpec

VERSION = 1
KEYS = {"first_token_ms": "first", "turn_ms": "turn"}  # indicator -> key of `latency`
_STATUSES = ("passed", "failed", "error", "not_run")

# (status, topic, [(check name, passed, skipped, error, rubric)], [(first_token_ms, total_ms)])
Row = tuple[str, str, list[tuple[str, bool, bool, bool, Any]], list[tuple[Any, Any]]]


def limits(objectives: Iterable[ObjectiveSpec]) -> dict[str, set[str]]:
    """The latency limits a tally must count turns over, per latency key: {"turn": {"<5000"}}."""
    out: dict[str, set[str]] = {}
    for o in objectives:
        if o.indicator in LATENCY:
            out.setdefault(KEYS[o.indicator], set()).add(limit_key(o))
    return out


def limit_key(o: ObjectiveSpec) -> str:
    return f"{o.target.op}{o.target.value:g}"


def missing(tally: dict[str, Any] | None, wanted: dict[str, set[str]]) -> bool:
    """True when `tally` cannot answer every objective (absent, older, or a limit not counted)."""
    if not isinstance(tally, dict) or tally.get("v") != VERSION:
        return True
    lat = tally.get("latency") or {}
    return any(not keys <= set((lat.get(ind) or {}).get("over") or {}) for ind, keys in wanted.items()
               if (lat.get(ind) or {}).get("n"))


def rows_of_results(results: Iterable[Any]) -> Iterable[Row]:
    """CaseResult records as tally rows."""
    for r in results:
        checks = [(c.name, c.passed, c.skipped, c.error, (c.args or {}).get("rubric")) for c in r.checks]
        turns = []
        t = r.transcript
        if t is not None:
            turns = [(x.reply.first_token_ms, x.reply.total_ms) for x in t.turns
                     if x.index >= 1 and x.reply.attempts > 0]
        yield r.status, r.topic, checks, turns


def rows_of_stored(rows: Iterable[tuple[str, str, Any, Any]]) -> Iterable[Row]:
    """Stored (status, topic, checks JSON, transcript JSON) rows as tally rows."""
    for status, topic, checks, transcript in rows:
        cs = [(c.get("name", ""), bool(c.get("passed")), bool(c.get("skipped")), bool(c.get("error")),
               (c.get("args") or {}).get("rubric")) for c in (checks or []) if isinstance(c, dict)]
        turns = []
        for x in (transcript or {}).get("turns") or []:
            reply = x.get("reply") or {}
            if x.get("index", 0) >= 1 and reply.get("attempts", 1) > 0:
                turns.append((reply.get("first_token_ms"), reply.get("total_ms")))
        yield status, topic, cs, turns


def count(rows: Iterable[Row], wanted: dict[str, set[str]]) -> dict[str, Any]:
    """The tally of one run's rows, counting turns over each latency limit in `wanted`."""
    calls: dict[str, list[int]] = {}
    checks: dict[str, list[int]] = {}
    judge: dict[str, list[int]] = {}
    first: list[float] = []
    turn: list[float] = []
    for status, topic, cs, turns in rows:
        per = calls.get(topic)
        if per is None:
            per = calls[topic] = [0, 0, 0, 0]
        per[_STATUSES.index(status) if status in _STATUSES else 2] += 1
        for name, passed, skipped, error, rubric in cs:
            if skipped or error:
                continue
            c = checks.get(name)
            if c is None:
                c = checks[name] = [0, 0]
            c[0] += 1
            c[1] += not passed
            if name in JUDGE_CHECKS or rubric is not None:  # a labelled judge check keeps its rubric
                j = judge.get(rubric or "")
                if j is None:
                    j = judge[rubric or ""] = [0, 0]
                j[0] += 1
                j[1] += not passed
        for ft, total in turns:
            if ft is not None:
                first.append(float(ft))
            if total is not None:
                turn.append(float(total))
    latency = {"first": _latency(first, wanted.get("first", set())),
               "turn": _latency(turn, wanted.get("turn", set()))}
    return {"v": VERSION, "calls": calls, "checks": checks, "judge": judge, "latency": latency}


def _latency(values: list[float], keys: set[str]) -> dict[str, Any]:
    values.sort()
    out: dict[str, Any] = {"n": len(values), "sum": sum(values)}
    if values:
        for stat, q in QUANTILES.items():
            out[stat] = quantile(values, q)
    out["over"] = {k: _over(values, k) for k in sorted(keys)}
    return out


def _over(values: list[float], key: str) -> int:
    """Turns that miss a limit: over `<5000` is >= 5000, over `<=5000` is > 5000."""
    op, limit = (key[:2], float(key[2:])) if key.startswith("<=") else (key[:1], float(key[1:]))
    i = bisect_right(values, limit) if op == "<=" else bisect_left(values, limit)
    return len(values) - i


def events(o: ObjectiveSpec, tally: dict[str, Any]) -> tuple[int, int]:
    """(events, bad events) of one run for an objective; (0, 0) when the run has none."""
    ind = o.indicator
    if ind in LATENCY:
        lat = (tally.get("latency") or {}).get(KEYS[ind]) or {}
        n = int(lat.get("n") or 0)
        return n, int((lat.get("over") or {}).get(limit_key(o), 0)) if n else 0
    if ind in ("pass_rate", "infra_error_rate"):
        n = bad = 0
        for topic, (passed, failed, error, not_run) in (tally.get("calls") or {}).items():
            if o.topic is not None and topic != o.topic:
                continue
            if ind == "pass_rate":  # a call that never reached the agent is infra's, not quality's
                n += passed + failed
                bad += failed
            else:
                n += passed + failed + error + not_run
                bad += error + not_run
        return n, bad
    if ind == "check_fail_rate":
        n = bad = 0
        for name, (evaluated, failed) in (tally.get("checks") or {}).items():
            if name == o.check or name == f"not {o.check}":
                n += evaluated
                bad += failed
        return n, bad
    n = bad = 0  # judge_fail_rate
    for rubric, (judged, failed) in (tally.get("judge") or {}).items():
        if o.rubric is None or rubric == o.rubric:
            n += judged
            bad += failed
    return n, bad


def run_value(o: ObjectiveSpec, tally: dict[str, Any]) -> float | None:
    """The run's own figure: its p99 turn time, its mean, its error or pass rate."""
    if o.indicator in LATENCY:
        lat = (tally.get("latency") or {}).get(KEYS[o.indicator]) or {}
        if not lat.get("n"):
            return None
        if o.stat_or_default == "mean":
            return lat["sum"] / lat["n"]
        return lat.get(o.stat_or_default)
    n, bad = events(o, tally)
    if not n:
        return None
    return (n - bad) / n if o.indicator == "pass_rate" else bad / n


def latency_sum(o: ObjectiveSpec, tally: dict[str, Any]) -> tuple[int, float]:
    lat = (tally.get("latency") or {}).get(KEYS[o.indicator]) or {}
    return int(lat.get("n") or 0), float(lat.get("sum") or 0.0)
