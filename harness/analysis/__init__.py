"""Analysis: compare a finished run with its baseline and history, and classify it.

    verdict = analyse_run(store, suite, run, results)   # a Verdict, also stored at run.extra["verdict"]
    code = verdict.cls.exit_code(code)                   # infra is 3, drift and regression 1

The verdict says in one line whether a red run is the provider (infra), the judge
(judge_drift), the model (drift), our change (regression) or noise, with the evidence:
topics with their pass rates and p-values, the cases that changed, and how consistent each
case's repeats were. The verdict is a `harness.verdict.Verdict`, decided by the ordered
table of rules in `rules.py`.
"""

from __future__ import annotations

from typing import Any

from ..records import CaseResult, RunInfo
from ..spec import AnalysisSpec, ReducerSpec, Suite
from ..store import Store
from ..verdict import Evidence, Verdict, VerdictClass
from .baseline import Baseline, accept_baseline, list_baselines, load_baseline
from .compare import CaseDiff, Comparison, Reference, compare, diff_cases
from .consistency import Reduced, agreement, consistency_entry, reduce_case
from .history import CasePoint, case_history
from .observe import CaseObs, observe_results
from .rules import RULES, classify
from .window import PastRun, load_observations, trailing_window

__all__ = [
    "RULES",
    "Baseline",
    "CaseDiff",
    "CaseObs",
    "Evidence",
    "CasePoint",
    "Comparison",
    "PastRun",
    "Reduced",
    "Reference",
    "Verdict",
    "VerdictClass",
    "accept_baseline",
    "agreement",
    "analyse_run",
    "build_reference",
    "case_history",
    "classify",
    "compare",
    "consistency_entry",
    "diff_cases",
    "list_baselines",
    "load_baseline",
    "load_observations",
    "observe_results",
    "reduce_case",
    "save_run_extra",
    "trailing_window",
]


def _topic_rates(cases: dict[str, CaseObs]) -> dict[str, float]:
    tally: dict[str, list[int]] = {}
    for obs in cases.values():
        t = tally.setdefault(obs.topic, [0, 0])
        t[0] += obs.passed
        t[1] += obs.executed
    return {topic: p / n for topic, (p, n) in tally.items() if n}


def build_reference(store: Store, suite_name: str, window: list[PastRun], spec: AnalysisSpec, *,
                    accepting: bool = False) -> Reference:
    """The baseline the suite asks for (falling back to the previous healthy run) plus healthy history.

    `accepting`: the run being compared becomes the accepted baseline (`run --accept-baseline`),
    so a fall-back to the previous run is not labelled "no accepted baseline yet"."""
    healthy = [p for p in window if p.healthy]  # newest first
    ref: Reference
    baseline = load_baseline(store, suite_name) if spec.baseline == "accepted" else None
    if baseline is not None:
        ref = Reference("accepted baseline", baseline.run_id, baseline.git_sha, baseline.cases)
    elif spec.baseline != "none" and healthy:
        prev = healthy[0]
        label = ("previous run" if spec.baseline == "previous" else
                 "previous run (this run becomes the accepted baseline)" if accepting else
                 "previous run (no accepted baseline yet)")
        ref = Reference(label, prev.run.run_id, prev.run.git_sha, prev.cases)
    else:
        ref = Reference("trailing window", None, healthy[0].run.git_sha if healthy else None, {})
    history = [p for p in healthy if p.run.run_id != ref.run_id]
    ref.history = [p.cases for p in reversed(history)]
    rates: dict[str, list[float]] = {}
    for cases in ([ref.cases] if ref.cases else []) + ref.history:
        for topic, rate in _topic_rates(cases).items():
            rates.setdefault(topic, []).append(rate)
    ref.history_rates = rates
    return ref


def analyse_run(
    store: Store,
    suite: Suite,
    run: RunInfo,
    results: list[CaseResult],
    *,
    reducers: dict[str, ReducerSpec | None] | None = None,
    save: bool = True,
    accepting: bool = False,
) -> Verdict:
    """Classify a run against its baseline and trailing window; store and return the verdict.

    `reducers` maps case ids to their own reducer (a case's `reducer:`); others use the
    suite's. The verdict is set at `run.extra["verdict"]` and, with `save`, written to the
    run's row, so reporters and notifiers read the same thing later. `accepting`: the run is
    about to become the suite's accepted baseline (the reference's wording says so).
    """
    spec = suite.analysis
    default = suite.reducer
    per_case = {k: v for k, v in (reducers or {}).items() if v is not None}
    current = observe_results(results)
    window = trailing_window(store, run, spec.window)
    ref = build_reference(store, suite.name, window, spec, accepting=accepting)
    code_changed = run.git_sha != ref.git_sha if run.git_sha and ref.git_sha else None
    cmp = compare(current, ref, per_case, spec, default=default, code_changed=code_changed)
    verdict = classify(run, cmp, ref, spec)
    verdict.consistency = {
        cid: consistency_entry(obs, per_case.get(cid) or default, ref.cases.get(cid))
        for cid, obs in sorted(current.items())
        if len(obs.statuses) > 1
    }
    flagged = [cid for cid, c in verdict.consistency.items() if c["flag"]]
    if flagged:
        verdict.evidence.append(Evidence(
            "consistency",
            f"{len(flagged)} case(s) answer less consistently than in the baseline: "
            f"{', '.join(flagged[:8])}{' …' if len(flagged) > 8 else ''}",
            {"cases": flagged},
        ))
    calls = run.extra.get("calls")
    if isinstance(calls, dict) and calls.get("spent"):
        r = calls.get("repeat") or {}
        verdict.evidence.append(Evidence(
            "calls", f"{calls['spent']} model calls for {calls.get('cases')} cases (adaptive repeat "
                     f"{r.get('min')}–{r.get('max')}: more calls only where a case moved)", dict(calls)))
    run.extra["verdict"] = verdict.to_dict()
    if save:
        save_run_extra(store, run.run_id, run.extra)
    return verdict


def save_run_extra(store: Store, run_id: str, extra: dict[str, Any]) -> None:
    """Replace a run's `extra` (secrets scrubbed by the store)."""
    store.set_run_extra(run_id, extra)

