"""Adaptive repeats: one call per case, more only where "did this case change?" is still open.

A suite's `repeat: {min: 1, max: 5}` runs `min` calls per case, then, round by round, one
more call for each case whose answer or outcome differs from what the reference did —
until the difference is settled (it kept happening, and the reference's own variation makes
that unlikely by chance: rate^k < alpha) or it went back to normal, or `max` is reached.
Stable cases that behave as before cost one call; the calls go where the question is.
"""

from __future__ import annotations

from typing import Any

from .behaviour import _Answers, _null, _feature_values
from .observe import CaseObs

__all__ = ["Rounds", "more_repeats"]


def _settled(hits: int, k: int, rate: float, alpha: float) -> bool:
    """k calls, `hits` of them unusual: settled when all were usual, or all unusual and that
    many in a row is unlikely at the reference's rate."""
    return hits == 0 or (hits == k and rate ** k < alpha)


def more_repeats(now: CaseObs, pooled: list[CaseObs], most: int, alpha: float = 0.05) -> bool:
    """Whether a case wants another call: its answers or outcome differ from the reference and
    the difference is not settled yet, and it has had fewer than `most` calls."""
    k = len(now.statuses)
    if k >= most or not pooled:
        return False
    answers = [a for a in now.answers if a is not None]
    if len(answers) < now.executed or not answers:
        return False  # errors: infra, not a question another call settles
    ref_answers = [a for p in pooled for a in p.answers if a is not None]
    if ref_answers:
        pool = _Answers(ref_answers)
        hits = sum(pool.new(a) for a in answers)
        events, trials = _null([_feature_values(p) for p in pooled])["answer"]
        rate = (events + 1) / (trials + 2) if trials else 0.5
        if not _settled(hits, len(answers), rate, alpha):
            return True
    ref_pass = sum(p.passed for p in pooled)
    ref_n = sum(p.executed for p in pooled)
    if ref_n:
        usual_pass = ref_pass * 2 >= ref_n
        unusual = now.failed if usual_pass else now.passed
        rate = ((ref_n - ref_pass) if usual_pass else ref_pass) / ref_n
        rate = (rate * ref_n + 1) / (ref_n + 2)
        if not _settled(unusual, now.executed, rate, alpha):
            return True
    return False


class Rounds:
    """The extra rounds of one run with `repeat: {min, max}`: after each, the cases that want
    another call (`more_repeats`) against the reference the run will be judged by."""

    def __init__(self, store: Any, suite: Any, run: Any, items: list[Any], most: int):
        from . import build_reference
        from .window import trailing_window

        self.most = most
        self.alpha = suite.analysis.alpha
        self.ref = build_reference(store, suite.name, trailing_window(store, run, suite.analysis.window),
                                   suite.analysis)
        self.compiled = {it.compiled.case.id: it.compiled for it in items}

    def next_round(self, results: list[Any]) -> list[Any]:
        from ..runner import WorkItem
        from .observe import observe_results

        now = observe_results(results)
        return [WorkItem(self.compiled[cid], len(obs.statuses)) for cid, obs in now.items()
                if cid in self.compiled and more_repeats(obs, self.ref.pooled(cid), self.most, self.alpha)]
