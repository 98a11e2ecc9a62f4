"""History for the trend report: per-period metrics, changed cases and flaky cases.

The store may hold months of runs of thousands of cases, so this module never loads the
history's transcripts. Trends come from the result columns (status, model, tokens, cost,
tags) plus two narrow JSON reads done inside the database where it can (SQLite's
`json_each`, PostgreSQL's `json_array_elements`): the judge score of each result and the
total time of each turn. Only the focus run is loaded whole, plus the baseline results of
the cases whose answers are diffed.

pandas is imported inside the functions: `harness --help` and the one-run reporters must
not pay for it.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, HarnessError
from ..records import CaseResult, RunInfo
from ..store import Store
from ..verdict import Verdict
from .summary import stored_verdict

if TYPE_CHECKING:
    import pandas as pd

DIMENSIONS = ("overall", "topic", "model", "suite", "tag")
METRICS = ("pass_rate", "judge_score", "p95_turn_ms", "error_rate", "tokens", "cost")
MAX_SERIES = 12  # lines per chart; more are unreadable (the rest are named in a note)
MAX_CHANGES = 150  # changed cases shown with a diff; the count of the rest is shown
MAX_FLAKY = 40
STRIP_RUNS = 30  # runs shown in a flaky case's history strip
CHANGE_ORDER = {"regressed": 0, "error": 1, "new": 2, "fixed": 3, "status": 4, "answer": 5}
_SINCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.I)
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "": 86400}


def parse_since(value: str) -> float:
    """`30d`, `12h`, `2w`, `90m`, `45s` (a bare number means days) → seconds."""
    m = _SINCE.match(value or "")
    if not m or float(m.group(1)) <= 0:
        raise ConfigError(f"--since {value!r}: expected a duration like 30d, 12h, 2w or 90m")
    return float(m.group(1)) * _UNIT_S[m.group(2).lower()]


# ---------------------------------------------------------------- records of the report


@dataclass(slots=True)
class CaseChange:
    """One case whose verdict or answer differs from the baseline run."""

    case_id: str
    topic: str
    tags: list[str]
    change: str  # regressed, fixed, error, new, status, answer, or the analysis' own word
    before: str | None  # status (or the analysis' value) in the baseline
    after: str | None
    current: CaseResult | None  # focus run, first repeat
    previous: CaseResult | None  # baseline run, first repeat


@dataclass(slots=True)
class FlakyCase:
    """A case whose verdict flips between repeats of a run or between runs."""

    case_id: str
    suite: str
    topic: str
    tags: list[str]
    runs: int
    flips: int  # pass↔fail changes between consecutive runs
    mixed_runs: int  # runs whose repeats disagreed
    pass_rate: float | None
    latest: str  # the case's status in its latest run
    history: list[tuple[str, str, str]]  # (label, run_id, status) oldest first
    consistency: dict[str, Any] | None = None  # from the analysis verdict, when present


@dataclass(slots=True)
class Trends:
    """Metric series per dimension, aligned on `points` (runs, or days for several suites)."""

    period: str  # "run" or "day"
    points: list[dict[str, Any]]  # x (epoch s), label, run_id, cls (verdict class), n
    dims: dict[str, dict[str, Any]]  # dim -> {"keys", "hidden" (names cut), "hidden_count", "metrics": {metric: {key: [v…]}}}


@dataclass(slots=True)
class TrendData:
    suite: str | None
    since: float | None  # epoch seconds of the window's start, or None for all history
    generated: float
    runs: list[RunInfo]  # newest first
    run_stats: dict[str, dict[str, Any]]  # run_id -> pass_rate, p95_turn_ms, judge_score, …
    focus: RunInfo | None
    focus_results: list[CaseResult]
    verdict: Verdict | None
    baseline: RunInfo | None
    changes: list[CaseChange]
    changes_total: int
    changes_source: str  # "verdict", "computed" or "none"
    flaky: list[FlakyCase]
    trends: Trends
    topics: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- reading the store


def _frame(rows: list[Any], names: list[str]) -> pd.DataFrame:
    """Rows to a DataFrame column by column (several times faster than row by row)."""
    import pandas as pd

    cols = list(zip(*rows)) if rows else [()] * len(names)
    return pd.DataFrame({n: list(c) for n, c in zip(names, cols)}, columns=names)


def _result_frame(store: Store, suite: str | None, since: float | None) -> pd.DataFrame:
    """One row per result in the window, without checks or transcripts."""
    import json

    from ..store.trends import RESULT_COLUMNS

    # tags as raw text: a history repeats a handful of tag lists, each parsed once below
    rows = store.trends.result_rows(suite, since)
    df = _frame(rows, list(RESULT_COLUMNS))
    parsed: dict[str, list[str]] = {}

    def tags(raw: str | None) -> list[str]:
        if raw not in parsed:
            try:
                value = json.loads(raw) if raw else []
            except ValueError:
                value = []
            parsed[raw] = [str(t) for t in value] if isinstance(value, list) else []
        return parsed[raw]

    df["tags"] = df["tags"].map(tags)
    return df


def _json_numbers(store: Store, what: str, suite: str | None, since: float | None) -> pd.DataFrame:
    """(id, v) pairs: the judge score per result, or the total ms of every turn. Judge
    scores and turn times live in JSON; the store unpacks them inside the database."""
    import pandas as pd

    read = store.trends.judge_scores if what == "judge" else store.trends.turn_times
    df = _frame(read(suite, since), ["id", "v"])
    df["v"] = pd.to_numeric(df["v"], errors="coerce")
    return df.dropna(subset=["v"])


def _read_history(store: Store, suite: str | None, since: float | None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The result rows, judge scores and turn times of the window. The three reads are
    independent and mostly spent inside the database, so they run side by side when the
    store can hand out one connection per thread (not an in-memory SQLite store)."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = [(_result_frame, (store, suite, since)), (_json_numbers, (store, "judge", suite, since)),
            (_json_numbers, (store, "turns", suite, since))]
    if not store.concurrent_reads:
        frame, judge, turns = (fn(*args) for fn, args in jobs)
        return frame, judge, turns
    with ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="trend-read") as pool:
        futures = [pool.submit(fn, *args) for fn, args in jobs]
        frame, judge, turns = (f.result() for f in futures)
    return frame, judge, turns


# ---------------------------------------------------------------- aggregation


def _verdict_of(run: RunInfo) -> Verdict | None:
    return stored_verdict(run)


def _fmt_label(epoch: float, with_time: bool) -> str:
    return time.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d", time.gmtime(epoch))


def _aggregate(df: pd.DataFrame, turns: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """The six metrics per group. Pass rate is passed ÷ (passed + failed), as everywhere
    else in the harness; error rate counts infra errors and cases that did not run."""

    g = df.groupby(by, sort=False, observed=True)
    out = g.agg(n=("id", "size"), passed=("is_passed", "sum"), judged=("is_judged", "sum"),
                errored=("is_error", "sum"), judge_score=("judge", "mean"), tokens=("tokens", "mean"),
                cost=("cost", "sum"), cost_n=("cost", "count"))
    out["pass_rate"] = (out["passed"] / out["judged"]).where(out["judged"] > 0)
    out["error_rate"] = out["errored"] / out["n"]
    out["cost"] = out["cost"].where(out["cost_n"] > 0)
    if len(turns):
        p95 = turns.groupby(by, sort=False, observed=True)["v"].quantile(0.95).rename("p95_turn_ms")
        out = out.join(p95)
    else:
        out["p95_turn_ms"] = float("nan")
    return out


def _round(metric: str, v: Any) -> float | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    v = float(v)
    if metric in ("pass_rate", "error_rate"):
        return round(v, 4)
    if metric == "judge_score":
        return round(v, 3)
    if metric == "p95_turn_ms":
        return round(v)
    if metric == "tokens":
        return round(v, 1)
    return float(f"{v:.4g}")


def _series(agg: pd.DataFrame, key: str, periods: list[Any]) -> dict[str, Any]:
    """Pivot (period, key) rows into metric → key → values aligned on `periods`."""
    sizes = agg.groupby(level=key)["n"].sum().sort_values(ascending=False)
    keys = [str(k) for k in sizes.index[:MAX_SERIES]]
    metrics: dict[str, dict[str, list[float | None]]] = {}
    for metric in METRICS:
        table = agg[metric].unstack(key)
        table = table.reindex(index=periods)
        table.columns = [str(c) for c in table.columns]
        metrics[metric] = {k: [_round(metric, v) for v in table[k].tolist()] if k in table.columns else [None] * len(periods)
                           for k in keys}
    rest = [str(k) for k in sizes.index[MAX_SERIES:]]
    return {"keys": keys, "hidden": rest[:50], "hidden_count": len(rest), "metrics": metrics}


def _build_trends(store: Store, runs: list[RunInfo], suite: str | None, since: float | None) -> tuple[Trends, dict[str, dict[str, Any]], pd.DataFrame]:
    import pandas as pd

    df, judge, turns = _read_history(store, suite, since)
    known = {r.run_id for r in runs}
    df = df[df["run_id"].isin(known)]
    several = len({r.suite for r in runs}) > 1
    run_rows = []
    for r in runs:
        x = r.started
        day = math.floor(x / 86400) * 86400
        v = _verdict_of(r)
        run_rows.append({"run_id": r.run_id, "suite": r.suite, "started": x, "run_model": r.model,
                         "period": day if several else x, "cls": v.name if v else ""})
    rdf = pd.DataFrame(run_rows, columns=["run_id", "suite", "started", "run_model", "period", "cls"])
    df = df.merge(rdf[["run_id", "suite", "period", "run_model", "started"]], on="run_id", how="inner")
    df["model"] = df["model"].fillna(df["run_model"]).fillna("unknown")
    df["is_passed"] = df["status"] == "passed"
    df["is_judged"] = df["status"].isin(["passed", "failed"])
    df["is_error"] = df["status"].isin(["error", "not_run"])
    tin, tout = df["tokens_in"].astype("float64"), df["tokens_out"].astype("float64")
    df["tokens"] = tin.fillna(0) + tout.fillna(0)
    df.loc[tin.isna() & tout.isna(), "tokens"] = float("nan")
    df["cost"] = df["cost"].astype("float64")
    df["overall"] = "all"

    df = df.merge(judge.rename(columns={"v": "judge"}), on="id", how="left") if len(judge) else df.assign(judge=float("nan"))
    base_cols = ["id", "run_id", "period", "overall", "topic", "model", "suite"]
    turns = turns.merge(df[base_cols], on="id", how="inner")

    tagged = df[["id", "tags"]].explode("tags").dropna().rename(columns={"tags": "tag"})
    tagged["tag"] = tagged["tag"].astype(str)
    df_tags = df.drop(columns=["tags"]).merge(tagged, on="id")
    turns_tags = turns.merge(tagged, on="id")

    period_rows = rdf.groupby("period", sort=True).agg(n=("run_id", "size"), run_id=("run_id", "last"), started=("started", "max"))
    periods = list(period_rows.index)
    cls_by_period: dict[Any, str] = {}
    for row in rdf.sort_values("started").itertuples():
        if row.cls and row.cls not in ("ok", "noise", "none"):
            cls_by_period[row.period] = row.cls
    points = [{"x": float(p), "label": _fmt_label(float(p), not several),
               "run_id": str(period_rows.loc[p, "run_id"]) if not several else None,
               "runs": int(period_rows.loc[p, "n"]), "cls": cls_by_period.get(p, "")} for p in periods]

    dims: dict[str, dict[str, Any]] = {}
    for dim in DIMENSIONS:
        frame, tframe = (df_tags, turns_tags) if dim == "tag" else (df, turns)
        if frame.empty:
            dims[dim] = {"keys": [], "hidden": [], "hidden_count": 0, "metrics": {m: {} for m in METRICS}}
            continue
        agg = _aggregate(frame, tframe, ["period", dim])
        dims[dim] = _series(agg, dim, periods)

    per_run = _aggregate(df, turns, ["run_id"]) if not df.empty else None
    run_stats: dict[str, dict[str, Any]] = {}
    if per_run is not None:
        for rid, row in per_run.iterrows():
            run_stats[str(rid)] = {m: _round(m, row[m]) for m in METRICS} | {"n": int(row["n"])}
    return Trends(period="day" if several else "run", points=points, dims=dims), run_stats, df


# ---------------------------------------------------------------- flaky cases


def _case_status(statuses: list[str]) -> str:
    """A case's verdict over its repeats: mixed when repeats disagree on pass/fail."""
    s = set(statuses)
    if "failed" in s and "passed" in s:
        return "mixed"
    if "failed" in s:
        return "failed"
    if "passed" in s and s <= {"passed"}:
        return "passed"
    if "passed" in s:
        return "passed"  # some repeats passed, the others hit infra errors
    return "error" if "error" in s else ("not_run" if s else "error")


def _flaky(df: pd.DataFrame, runs: list[RunInfo], consistency: dict[str, Any]) -> list[FlakyCase]:
    """Cases whose verdict flips: repeats of one run disagree, or the pass/fail verdict
    changes from run to run at least twice in the window. Cases the analysis flagged as
    inconsistent (answers differ between repeats) are listed too."""
    if df.empty:
        return []
    d = df[["suite", "case_id", "run_id", "started", "topic"]].copy()
    d["p"] = df["status"] == "passed"
    d["f"] = df["status"] == "failed"
    per = d.groupby(["suite", "case_id", "run_id"], sort=False).agg(
        started=("started", "first"), topic=("topic", "last"), passed=("p", "sum"), failed=("f", "sum"))
    per = per.reset_index().sort_values(["suite", "case_id", "started"], kind="stable")
    # 1 passed only, 2 failed only, 3 repeats disagree, 0 infra errors only
    per["ok"] = (per["passed"] > 0).astype("int64") + 2 * (per["failed"] > 0).astype("int64")
    judged = per[per["ok"] > 0].copy()
    judged["prev"] = judged.groupby(["suite", "case_id"], sort=False)["ok"].shift()
    judged["flip"] = judged["prev"].notna() & (judged["prev"] != judged["ok"])
    judged["mixed"] = judged["ok"] == 3
    keys = ["suite", "case_id"]
    stats = per.groupby(keys).agg(runs=("run_id", "size"), passed=("passed", "sum"), failed=("failed", "sum"),
                                   topic=("topic", "last"))
    stats = stats.join(judged.groupby(keys).agg(flips=("flip", "sum"), mixed=("mixed", "sum"))).fillna({"flips": 0, "mixed": 0})
    flagged = {str(k) for k, v in consistency.items() if isinstance(v, dict) and v.get("flag")}
    is_flagged = stats.index.get_level_values("case_id").isin(list(flagged))
    pick = stats[(stats["mixed"] > 0) | (stats["flips"] >= 2) | is_flagged].copy()
    if pick.empty:
        return []
    pick["score"] = (pick["mixed"] + pick["flips"]) / pick["runs"]
    pick = pick.sort_values(["score", "flips", "mixed"], ascending=False).head(MAX_FLAKY)
    tags = df.drop_duplicates("case_id").set_index("case_id")["tags"]
    labels = {r.run_id: _fmt_label(r.started, True) for r in runs}
    status_of = {0: "error", 1: "passed", 2: "failed", 3: "mixed"}
    chosen = per.merge(pick.reset_index()[keys], on=keys)
    histories = {k: g.tail(STRIP_RUNS) for k, g in chosen.groupby(keys, sort=False)}
    out = []
    for (suite, case_id), row in pick.iterrows():
        hist = histories[(suite, case_id)]
        history = [(labels.get(h.run_id, ""), str(h.run_id), status_of[int(h.ok)]) for h in hist.itertuples()]
        t = tags.get(case_id)
        judged_n = int(row["passed"] + row["failed"])
        c = consistency.get(case_id)
        out.append(FlakyCase(
            case_id=str(case_id), suite=str(suite), topic=str(row["topic"]), tags=[str(x) for x in t] if isinstance(t, list) else [],
            runs=int(row["runs"]), flips=int(row["flips"]), mixed_runs=int(row["mixed"]),
            pass_rate=float(row["passed"]) / judged_n if judged_n else None,
            latest=history[-1][2] if history else "error", history=history,
            consistency=c if isinstance(c, dict) else None))
    return out


# ---------------------------------------------------------------- changed cases


def _first_repeats(results: list[CaseResult]) -> dict[str, CaseResult]:
    first: dict[str, CaseResult] = {}
    for r in results:
        if r.case_id not in first or r.repeat_index < first[r.case_id].repeat_index:
            first[r.case_id] = r
    return first


def _statuses(results: list[CaseResult]) -> dict[str, str]:
    by: dict[str, list[str]] = {}
    for r in results:
        by.setdefault(r.case_id, []).append(r.status)
    return {k: _case_status(v) for k, v in by.items()}


def _answers(r: CaseResult | None) -> list[str]:
    if r is None or r.transcript is None:
        return []
    return [" ".join((t.reply.text or "").split()) for t in r.transcript.turns]


def _classify(before: str | None, after: str) -> str | None:
    if before is None:
        return "new" if after != "passed" else None
    if before == after:
        return None
    if after in ("failed", "mixed") and before == "passed":
        return "regressed"
    if after in ("error", "not_run"):
        return "error"
    if after == "passed" and before in ("failed", "mixed"):
        return "fixed"
    return "status"


def _computed_changes(focus: list[CaseResult], baseline: list[CaseResult]) -> list[CaseChange]:
    now, then = _statuses(focus), _statuses(baseline)
    cur, prev = _first_repeats(focus), _first_repeats(baseline)
    out = []
    for case_id, after in now.items():
        before = then.get(case_id)
        change = _classify(before, after)
        if change is None and before is not None and _answers(cur.get(case_id)) != _answers(prev.get(case_id)):
            change = "answer"
        if change is None:
            continue
        c = cur[case_id]
        out.append(CaseChange(case_id, c.topic, list(c.tags), change, before, after, c, prev.get(case_id)))
    out.sort(key=lambda ch: (CHANGE_ORDER.get(ch.change, 9), ch.topic, ch.case_id))
    return out


def _verdict_changes(items: list[Any], focus: list[CaseResult]) -> list[CaseChange]:
    cur = _first_repeats(focus)
    out = []
    for item in items:
        if not isinstance(item, dict) or not item.get("case_id"):
            continue
        case_id = str(item["case_id"])
        c = cur.get(case_id)
        out.append(CaseChange(
            case_id=case_id, topic=str(item.get("topic") or (c.topic if c else "")),
            tags=list(c.tags) if c else [], change=str(item.get("change") or "changed"),
            before=None if item.get("before") is None else str(item.get("before")),
            after=None if item.get("after") is None else str(item.get("after")),
            current=c, previous=None))
    return out


def _pick_baseline(store: Store, focus: RunInfo, verdict: Verdict | None) -> RunInfo | None:
    """The analysis' baseline when it names one, else the suite's previous run (a complete
    one if there is one)."""
    ref = verdict.baseline_run if verdict else None
    if ref:
        try:
            found = store.get_run(ref)
        except ConfigError:
            found = None
        if found is not None:
            return found
    earlier = [r for r in store.list_runs(suite=focus.suite, limit=50) if r.started < focus.started and r.run_id != focus.run_id]
    complete = [r for r in earlier if r.status == "complete"]
    return (complete or earlier or [None])[0]


# ---------------------------------------------------------------- entry point


def load_trend(store: Store, *, suite: str | None, since_s: float | None, focus_run: str | None = None,
               now: float | None = None) -> TrendData:
    """Everything the trend report shows, read from the store."""
    now = time.time() if now is None else now
    since = now - since_s if since_s else None
    runs = store.list_runs(suite=suite, limit=1_000_000, since=since)
    focus: RunInfo | None
    if focus_run is not None:
        focus = store.get_run(focus_run)
        if focus is None:
            raise HarnessError(f"run {focus_run!r} is not in the store {store.display_url}")
        if focus.run_id not in {r.run_id for r in runs} and (suite is None or focus.suite == suite):
            runs = sorted([*runs, focus], key=lambda r: (r.started, r.run_id), reverse=True)
    else:
        finished = [r for r in runs if r.status != "running"]
        focus = (finished or runs or [None])[0]

    if runs:
        trends, run_stats, frame = _build_trends(store, runs, suite, min(since or math.inf, min(r.started for r in runs)))
    else:
        trends, run_stats, frame = Trends(period="run", points=[], dims={}), {}, None

    focus_results = store.results(focus.run_id) if focus else []
    verdict = _verdict_of(focus) if focus else None
    baseline = _pick_baseline(store, focus, verdict) if focus else None
    changes: list[CaseChange] = []
    source = "none"
    if focus and verdict and verdict.changed_cases is not None:
        source = "verdict"
        changes = _verdict_changes(verdict.changed_cases, focus_results)
        if baseline is not None and changes:
            ids = [c.case_id for c in changes[:MAX_CHANGES]]
            prev = _first_repeats(store.results(baseline.run_id, case_ids=ids))
            for c in changes:
                c.previous = prev.get(c.case_id)
    elif focus and baseline is not None:
        source = "computed"
        changes = _computed_changes(focus_results, store.results(baseline.run_id))
    total = len(changes)

    consistency = (verdict.consistency if verdict else None) or {}
    flaky = _flaky(frame, runs, consistency) if frame is not None else []
    topic_counts: Counter[str] = Counter()
    tag_counts: Counter[str] = Counter()
    if frame is not None and not frame.empty:
        topic_counts.update(frame["topic"].astype(str).value_counts().to_dict())
        tag_counts.update(frame["tags"].explode().dropna().astype(str).value_counts().to_dict())
    for r in focus_results:
        topic_counts[r.topic] += 0
        for t in r.tags:
            tag_counts[t] += 0
    return TrendData(
        suite=suite, since=since, generated=now, runs=runs, run_stats=run_stats, focus=focus,
        focus_results=focus_results, verdict=verdict, baseline=baseline, changes=changes[:MAX_CHANGES],
        changes_total=total, changes_source=source, flaky=flaky, trends=trends,
        topics=sorted(topic_counts), tags=sorted(tag_counts))
