"""The significance tests behind a verdict, each asking "is the current run worse?".

scipy is imported inside the functions, and only when there is something to test:
importing scipy.stats costs 0.5–1 s, and a run where nothing failed (the common case)
gets its p-values of exactly 1 without it. Every test is one-sided (a drop), because an
improvement is never a reason to wake anyone up.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["binomial_excess", "fisher_drop", "holm", "mann_whitney_drop"]


def fisher_drop(cur_pass: int, cur_fail: int, ref_pass: int, ref_fail: int) -> float | None:
    """p-value that the current pass rate is lower than the reference's (Fisher's exact test).

    None when either side has nothing to compare.
    """
    if cur_pass + cur_fail == 0 or ref_pass + ref_fail == 0:
        return None
    if cur_fail == 0 or ref_pass == 0:
        # the current run already has every pass its row or the pass column allows, so
        # P(as few passes or fewer) is 1
        return 1.0
    from scipy.stats import fisher_exact

    _, p = fisher_exact([[cur_pass, cur_fail], [ref_pass, ref_fail]], alternative="less")
    return float(p)


def mann_whitney_drop(current: Sequence[float], reference: Sequence[float]) -> float | None:
    """p-value that current scores are stochastically lower than the reference's (Mann-Whitney U)."""
    if len(current) < 2 or len(reference) < 2:
        return None
    if len(set(current) | set(reference)) == 1:
        return 1.0  # every score equal: nothing moved (scipy would divide by zero)
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(current, reference, alternative="less").pvalue)


def binomial_excess(k: int, n: int, p0: float) -> float | None:
    """p-value of seeing k or more events in n trials when each happens with probability p0."""
    if n <= 0:
        return None
    if k <= 0:
        return 1.0  # zero or more events: certain
    from scipy.stats import binomtest

    return float(binomtest(k, n, min(max(p0, 0.0), 1.0), alternative="greater").pvalue)


def holm(pvalues: dict[str, float]) -> dict[str, float]:
    """Holm–Bonferroni adjusted p-values: many cases tested at once must not each get alpha."""
    ordered = sorted(pvalues.items(), key=lambda kv: kv[1])
    m = len(ordered)
    out: dict[str, float] = {}
    running = 0.0
    for i, (key, p) in enumerate(ordered):
        running = max(running, min(1.0, (m - i) * p))
        out[key] = running
    return out

