"""OpenSLO v1: a suite's objectives as `kind: SLO` documents, and such documents read back.

Each objective becomes one SLO with an inline indicator, `budgetingMethod: Occurrences`
(every call, check, judgement or turn is an event) and a rolling `timeWindow`:

- a latency objective (`p99 turn_ms < 5000`) is a `thresholdMetric` with the objective
  `{op: lt, value: 5000, target: 0.99}`: 99% of turns under 5 s;
- an error rate (`< 0.1%`) or a pass rate (`>= 95%`) is a `ratioMetric` of good over total
  events with `target` the good share (0.999, 0.95).

OpenSLO has no window counted in runs: such a window is written as that many days (one run
a day) and kept exactly in the `harness/window` annotation, which reading back prefers.
"""

from __future__ import annotations

from typing import Any

from ..objective_spec import LATENCY, ObjectiveSpec, parse_target, parse_window

API_VERSION = "openslo/v1"
_OP = {"<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}
_OP_BACK = {v: k for k, v in _OP.items()}
SOURCE = "harness"


def _source(o: ObjectiveSpec, which: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"indicator": o.indicator, "events": which}
    for key in ("check", "rubric", "topic"):
        if getattr(o, key) is not None:
            spec[key] = getattr(o, key)
    return {"metricSource": {"type": SOURCE, "spec": spec}}


def _duration(o: ObjectiveSpec) -> str:
    w = o.window
    if w.runs is not None:
        return f"{w.runs}d"
    secs = int(w.seconds or 0)
    return f"{secs // 86400}d" if secs % 86400 == 0 else f"{secs // 3600}h"


def to_openslo(suite_name: str, o: ObjectiveSpec) -> dict[str, Any]:
    """One objective as an OpenSLO v1 SLO document."""
    annotations = {"harness/suite": suite_name, "harness/objective": o.describe(), "harness/window": str(o.window)}
    if o.indicator in LATENCY:
        sli = {"thresholdMetric": _source(o, o.stat_or_default)}
        objective: dict[str, Any] = {"displayName": o.describe(), "op": _OP[o.target.op], "value": o.target.value}
        if o.quantile is not None:
            objective["target"] = o.quantile
    else:
        sli = {"ratioMetric": {"counter": True, "good": _source(o, "good"), "total": _source(o, "total")}}
        share = o.target.value if o.indicator == "pass_rate" else 1 - o.target.value
        objective = {"displayName": o.describe(), "target": round(share, 12)}
        annotations["harness/target"] = str(o.target)
    spec: dict[str, Any] = {
        "description": o.description or f"{o.describe()} over {o.window}",
        "service": suite_name,
        "indicator": {"metadata": {"name": f"{suite_name}-{o.name}-sli"}, "spec": sli},
        "timeWindow": [{"duration": _duration(o), "isRolling": True}],
        "budgetingMethod": "Occurrences",
        "objectives": [objective],
    }
    return {"apiVersion": API_VERSION, "kind": "SLO",
            "metadata": {"name": f"{suite_name}-{o.name}", "displayName": o.name, "annotations": annotations},
            "spec": spec}


def export(suite: Any) -> list[dict[str, Any]]:
    return [to_openslo(suite.name, o) for o in suite.objectives]


def from_openslo(doc: dict[str, Any], where: str) -> dict[str, Any]:
    """An OpenSLO v1 SLO document as an `objectives:` item (a plain mapping), or ValueError
    naming what cannot be read."""
    if not isinstance(doc, dict) or doc.get("kind") != "SLO" or doc.get("apiVersion") != API_VERSION:
        raise ValueError(f"{where}: not an OpenSLO v1 SLO document (expected apiVersion: {API_VERSION}, kind: SLO)")
    meta = doc.get("metadata") or {}
    spec = doc.get("spec") or {}
    annotations = meta.get("annotations") or {}
    sli = ((spec.get("indicator") or {}).get("spec")) or {}
    objectives = spec.get("objectives") or []
    if spec.get("budgetingMethod", "Occurrences") != "Occurrences":
        raise ValueError(f"{where}: budgetingMethod {spec.get('budgetingMethod')!r} (only Occurrences is read)")
    if len(objectives) != 1:
        raise ValueError(f"{where}: expected one objective, found {len(objectives)}")
    obj = objectives[0]
    metric = sli.get("thresholdMetric") or (sli.get("ratioMetric") or {}).get("total")
    source = (metric or {}).get("metricSource") or {}
    if source.get("type") != SOURCE:
        raise ValueError(f"{where}: the indicator's metricSource is {source.get('type')!r}; only harness "
                         "indicators can be read back")
    src = source.get("spec") or {}
    name = meta.get("displayName") or str(meta.get("name", ""))
    suite = annotations.get("harness/suite")
    if suite and name.startswith(f"{suite}-"):
        name = name[len(suite) + 1:]
    out: dict[str, Any] = {"name": name, "indicator": src.get("indicator")}
    if "thresholdMetric" in sli:
        q = obj.get("target")
        stat = src.get("events") if src.get("events") in ("p50", "p90", "p95", "p99", "mean") else None
        if stat is None and q is not None:
            stat = f"p{round(float(q) * 100):d}"
        out["stat"] = stat
        out["target"] = f"{_OP_BACK.get(obj.get('op'), '<')} {obj.get('value'):g}"
    else:
        target = annotations.get("harness/target")
        if not target:
            share = float(obj.get("target"))
            target = f">= {share * 100:g}%" if src.get("indicator") == "pass_rate" else f"< {(1 - share) * 100:.6g}%"
        out["target"] = target
    for key in ("check", "rubric", "topic"):
        if src.get(key) is not None:
            out[key] = src[key]
    window = annotations.get("harness/window") or ((spec.get("timeWindow") or [{}])[0]).get("duration")
    if window:
        out["window"] = str(window)
    if spec.get("description") and not str(spec["description"]).endswith(f" over {out.get('window')}"):
        out["description"] = spec["description"]  # a description export made up is not kept
    ObjectiveSpec.model_validate({k: v for k, v in out.items() if v is not None})  # raises ValueError-like
    parse_target(out["target"])
    parse_window(out.get("window", "28d"))
    return {k: v for k, v in out.items() if v is not None}
