"""The HTML trend page's burn-down charts: each objective's budget left after each run.

Read from what each run kept (`run.extra["objectives"]["results"]`), aligned on the trend
page's points, in the shape its charts already draw ({keys, metrics: {metric: {key: [v…]}}}).
"""

from __future__ import annotations

from typing import Any

from .lines import objective_results


def budget_series(runs: list[Any], points: list[dict[str, Any]]) -> dict[str, Any] | None:
    """{keys: objective names, labels, metrics: {"budget_left": {name: [left or None per point]}}},
    or None when no run on the page has objectives."""
    by_run = {r.run_id: objective_results(r.extra if isinstance(r.extra, dict) else None) for r in runs}
    keys: list[str] = []
    labels: dict[str, str] = {}
    for r in runs:  # newest first: the current objectives lead
        for d in by_run.get(r.run_id) or []:
            name = str(d.get("name"))
            if name not in labels and d.get("budget_left") is not None:
                keys.append(name)
                labels[name] = f"{d.get('objective', '')} over {d.get('window', '')}"
    if not keys:
        return None
    series: dict[str, list[float | None]] = {k: [None] * len(points) for k in keys}
    for i, p in enumerate(points):
        for d in by_run.get(p.get("run_id")) or []:
            left = d.get("budget_left")
            name = str(d.get("name"))
            if name in series and isinstance(left, (int, float)) and not isinstance(left, bool):
                series[name][i] = left
    return {"keys": keys, "labels": labels, "metrics": {"budget_left": series}}
