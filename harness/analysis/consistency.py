"""Repeats of one case: reduce them to one pass/fail, and measure how much they agree.

A model asked the same question five times may answer five ways. The reducer says what
counts as the case passing (every time, most times, at least k times, once in k, a good
mean score); agreement says how stable the wording was, so a case whose answers scatter
more than they used to is flagged even when it still passes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..spec import ReducerSpec
from .observe import CaseObs, short

__all__ = ["ALL", "Reduced", "agreement", "consistency_entry", "reduce_case"]

ALL = ReducerSpec(name="all")
DEFAULT_MEAN_SCORE = 0.8


@dataclass(frozen=True)
class Reduced:
    status: str  # passed, failed, or error (no repeat reached the agent)
    passes: int
    executed: int
    score: float | None  # mean check score over executed repeats


def reduce_case(obs: CaseObs, reducer: ReducerSpec | None = None) -> Reduced:
    """One verdict for a case from its repeats. Infra errors are left out, never counted as fails."""
    reducer = reducer or ALL
    flags = [s == "passed" for s in obs.statuses if s in ("passed", "failed")]
    scores = [s for s, st in zip(obs.scores, obs.statuses) if st in ("passed", "failed") and s is not None]
    mean = sum(scores) / len(scores) if scores else None
    passes, n = sum(flags), len(flags)
    if n == 0:
        return Reduced("error", 0, 0, mean)
    name, value = reducer.name, reducer.value
    if name == "all":
        ok = passes == n
    elif name == "majority":
        ok = passes * 2 > n
    elif name == "at_least_k":
        ok = passes >= min(int(value or 1), n)  # fewer repeats ran than k: all of them must pass
    elif name == "pass@k":
        k = int(value) if value else n
        ok = any(flags[:k])
    else:  # mean_score
        threshold = DEFAULT_MEAN_SCORE if value is None else value
        ok = mean is not None and mean >= threshold
    return Reduced("passed" if ok else "failed", passes, n, mean)


def agreement(obs: CaseObs) -> tuple[float | None, list[list]]:
    """Share of repeats giving the most common normalised answer, and each answer with its count."""
    counts = obs.answer_counts
    total = sum(counts.values())
    if not total:
        return None, []
    distinct = [[short(a), n] for a, n in counts.most_common()]
    return distinct[0][1] / total, distinct


def consistency_entry(obs: CaseObs, reducer: ReducerSpec | None, baseline: CaseObs | None) -> dict:
    """The verdict's `consistency[case_id]`: agreement, distinct answers, and the flag."""
    agree, distinct = agreement(obs)
    before = agreement(baseline)[0] if baseline is not None and baseline.executed >= 2 else None
    reduced = reduce_case(obs, reducer)
    flag = agree is not None and before is not None and sum(n for _, n in distinct) >= 2 and agree < before - 1e-9
    return {
        "agreement": agree if agree is not None else 1.0,
        "distinct": distinct,
        "flag": bool(flag),
        "baseline_agreement": before,
        "repeats": len(obs.statuses),
        "reducer": (reducer or ALL).label(),
        "reduced": reduced.status,
        "passes": reduced.passes,
    }
