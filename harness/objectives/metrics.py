"""Objectives as metrics (Datadog gauges and counts) and as Datadog SLO definitions.

Plain dicts only: `harness.notify.datadog` turns them into the client's models and sends them.

| metric | type | what |
|---|---|---|
| harness.objective.sli | gauge | this run's figure: its p99 ms, its error or pass rate |
| harness.objective.window_sli | gauge | over the objective's window (good share of turns, error or pass rate, mean) |
| harness.objective.budget_left, .budget_consumed | gauge | share of the error budget (left < 0: overspent) |
| harness.objective.burn_rate | gauge | per burn-alert window, tagged `window:` |
| harness.objective.events, .good_events | count | this run's events: what a Datadog metric SLO counts |

Every series is tagged `objective:<name>` and `indicator:<indicator>` beside the run's tags.
"""

from __future__ import annotations

from typing import Any, Callable

from .lines import objective_results

TIMEFRAMES = ((7, "7d"), (30, "30d"), (90, "90d"))


def objective_series(extra: dict[str, Any] | None, ts: int, tags: list[str],
                     tag: Callable[[str, Any], str]) -> list[dict[str, Any]]:
    series: list[dict[str, Any]] = []
    for d in objective_results(extra):
        own = tags + [tag("objective", d.get("name")), tag("indicator", d.get("indicator"))]

        def add(name: str, kind: str, value: Any, extra_tags: list[str] = ()) -> None:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                series.append({"metric": name, "type": kind, "points": [{"timestamp": ts, "value": float(value)}],
                               "tags": own + list(extra_tags)})

        run = d.get("run") or {}
        add("harness.objective.sli", "gauge", run.get("value"))
        add("harness.objective.window_sli", "gauge", d.get("sli"))
        add("harness.objective.budget_left", "gauge", d.get("budget_left"))
        add("harness.objective.budget_consumed", "gauge", d.get("consumed"))
        seen = set()
        for a in d.get("alerts") or []:
            for w in (a.get("short") or {}, a.get("long") or {}):
                if w.get("window") not in seen:
                    seen.add(w.get("window"))
                    add("harness.objective.burn_rate", "gauge", w.get("burn"), [tag("window", w.get("window"))])
        if run.get("bad") is not None:
            add("harness.objective.events", "count", run.get("events"))
            add("harness.objective.good_events", "count", (run.get("events") or 0) - run["bad"])
    return series


def slo_definitions(extra: dict[str, Any] | None, suite: str, tag: Callable[[str, Any], str],
                    scope: list[str]) -> list[dict[str, Any]]:
    """One metric-based Datadog SLO per objective with a budget: good events over all events,
    from the counts above, with the objective's target as its threshold."""
    out = []
    for d in objective_results(extra):
        allowed = d.get("allowed")
        if not isinstance(allowed, (int, float)):
            continue  # a mean has no events to count
        flt = ",".join([tag("suite", suite), tag("objective", d.get("name")), *scope])
        window = str(d.get("window") or "")
        days = int(window[:-1]) if window.endswith("d") and window[:-1].isdigit() else 30
        timeframe = next((t for n, t in TIMEFRAMES if days <= n), "90d")
        target = min(round((1 - allowed) * 100, 6), 99.999)
        out.append({
            "key": f"{suite}/{d.get('name')}",
            "name": f"{suite} · {d.get('name')}",
            "description": f"{d.get('objective')} over {window} (harness; {d.get('unit', 'events')} as events)",
            "numerator": f"sum:harness.objective.good_events{{{flt}}}.as_count()",
            "denominator": f"sum:harness.objective.events{{{flt}}}.as_count()",
            "timeframe": timeframe,
            "target": target,
            "tags": [tag("suite", suite), tag("harness_objective", f"{suite}/{d.get('name')}")],
        })
    return out
