"""Did behaviour move beyond what the reference's own variation explains, which way, and whose doing?

Per case, what it did now is set against what it did in the reference (the baseline and the
healthy runs of the trailing window, each with its repeats):

- **check outcomes**: the reduced pass/fail before and now; across cases a paired exact test
  (McNemar) says whether flips lean one way: worse, or better;
- **answers**: new when the reference was word-for-word stable and today differs, or — where
  the reference itself varied — when today's answer is further from every reference answer
  than the reference's answers were from each other (a paraphrase-tolerant word distance);
- **structure** (the answer's shape: a JSON object's keys, a bracketed or quoted form) and
  **refusals** ("I'm sorry, I can't …", "this is subjective"): new values the reference never had;
- **length** and **tokens**: paired signed-rank tests of today's median against the reference's,
  per case, with a minimum effect. Latency is evidence beside the verdict, never a class of its
  own: how fast the service answers is an objective (harness.objectives), not behaviour.

Variation is measured, never assumed: how often a case's answer (its shape, its refusal)
moves anyway is counted on the reference itself — each healthy run against the ones before it,
each repeat against the other repeats — and the count of moved cases today is tested against
that rate (a one-sided binomial test). With one reference run and no repeats nothing is
measured yet; the rate is then taken as one half and the evidence says so.

Each signal yields a p-value; the signals of one run are corrected together by Holm's method
(`MULTIPLE_TESTING`), so testing nine things at once does not give nine chances of a false alarm.

Attribution reads the input fingerprints (`harness.analysis.inputs`): a case whose inputs are
the reference's and whose behaviour moved is on the model's side; a case whose inputs changed
is on ours; when its model identity (model name, fingerprint) changed too, it is on both.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from statistics import median
from typing import Any

from .observe import NO_ROUTE, CaseObs

__all__ = ["CaseBehaviour", "MULTIPLE_TESTING", "Signal", "SideSignals", "case_behaviour", "side_signals",
           "is_refusal", "shape_of", "word_distance"]

MULTIPLE_TESTING = "Holm"
MIN_FLIP_SHARE = 0.025  # net flips under this share of the cases never make a direction
MIN_LENGTH_RATIO = 1.25  # a median length (tokens) change smaller than this is not worth a verdict
PRIOR_TRIALS = 2.0  # how many trials' worth a case's rate of moving leans on the suite's overall rate
MAX_DISTINCT = 8  # reference answers a case's spread is measured on (the most recent distinct ones)

REFUSAL = re.compile(
    r"\b(?:i'?m sorry|i am sorry|i apologi[sz]e|i can(?:no|')t (?:help|assist|answer|provide|do)|i am unable|i'm unable"
    r"|as an ai|i (?:do not|don't) have (?:personal )?(?:opinions|preferences|beliefs|feelings)"
    r"|(?:this|that|it) is (?:a )?(?:highly )?subjective|i must decline)|申し訳(?:ございません|ありません)|お答えできません",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w+")
_OPEN, _CLOSE = "[{(<*#`\"'", "]})>*`\"'"


@lru_cache(maxsize=65536)
def is_refusal(text: str) -> bool:
    return REFUSAL.search(text) is not None


@lru_cache(maxsize=65536)
def shape_of(text: str) -> str:
    """The answer's structure: a JSON object's keys, else the brackets or quotes around it."""
    t = text.strip()
    if t[:1] in ("{", "["):
        try:
            value = json.loads(t)
        except ValueError:
            value = None
        if isinstance(value, dict):
            return "json{" + ",".join(sorted(map(str, value))) + "}"
        if isinstance(value, list):
            return "json[]"
    head = t[:1] if t[:1] and t[:1] in _OPEN else ""
    tail = t[-1:] if t[-1:] and t[-1:] in _CLOSE else ""
    return f"{head}…{tail}"


@lru_cache(maxsize=65536)
def _words(text: str) -> tuple[dict[str, int], int]:
    """An answer's words with their counts, and how many (cached: the reference's answers repeat)."""
    counts: dict[str, int] = {}
    for w in _WORD.findall(text):
        counts[w] = counts.get(w, 0) + 1
    return counts, sum(counts.values())


def word_distance(a: tuple[dict[str, int], int], b: tuple[dict[str, int], int]) -> float:
    """1 − the multiset Jaccard similarity of two answers' words (0: same words, 1: none shared)."""
    (ca, na), (cb, nb) = a, b
    if not na and not nb:
        return 0.0
    if len(ca) > len(cb):
        ca, cb = cb, ca
    inter = sum(min(n, cb[w]) for w, n in ca.items() if w in cb)
    union = na + nb - inter
    return 1.0 - inter / union if union else 0.0


def _majority(flags: list[bool]) -> bool:
    return bool(flags) and sum(flags) * 2 > len(flags)


def _answers(obs: CaseObs) -> list[str]:
    return [a for a in obs.answers if a is not None]


class _Answers:
    """A reference's answers to one case, and whether a new one is outside their variation."""

    def __init__(self, texts: list[str]):
        distinct = list(dict.fromkeys(texts))[-MAX_DISTINCT:]
        self.key = tuple(distinct)
        self.seen = set(texts)
        self.stable = len(set(texts)) == 1
        self.words = [_words(t) for t in distinct]
        spread = 0.0
        if len(self.words) > 1:
            for i, w in enumerate(self.words):
                spread = max(spread, min(word_distance(w, o) for j, o in enumerate(self.words) if j != i))
        self.spread = spread

    def new(self, text: str) -> bool:
        if text in self.seen:
            return False
        if self.stable or not self.words:
            return True  # word-for-word stable before: any difference is a change
        w = _words(text)
        return min(word_distance(w, o) for o in self.words) > self.spread + 1e-9


def _moved_answers(now: list[str], ref: list[str]) -> bool:
    if not now or not ref:
        return False
    pool = _Answers(ref)
    return _majority([pool.new(a) for a in now])


def _moved_values(now: list[Any], ref: list[Any]) -> bool:
    if not now or not ref:
        return False
    seen = set(ref)
    return _majority([v not in seen for v in now])


FEATURES = ("answer", "shape", "refusal")


def _feature_values(obs: CaseObs) -> dict[str, list[Any]]:
    texts = _answers(obs)
    return {"answer": texts, "shape": [shape_of(t) for t in texts], "refusal": [is_refusal(t) for t in texts]}


def _moved(feature: str, now: list[Any], ref: list[Any]) -> bool:
    return _moved_answers(now, ref) if feature == "answer" else _moved_values(now, ref)


def _null(pooled: list[dict[str, list[Any]]]) -> dict[str, tuple[int, int]]:
    """(moves, trials) per feature on the reference itself: each run against the ones before it,
    and each repeat of a run against its other repeats."""
    out: dict[str, tuple[int, int]] = {}
    for feature in FEATURES:
        events = trials = 0
        before: list[Any] = []
        pool: _Answers | None = None
        for t, p in enumerate(pooled):
            values = p[feature]
            if t and before and values:
                trials += 1
                if feature == "answer":
                    if pool is None or pool.key != tuple(list(dict.fromkeys(before))[-MAX_DISTINCT:]) \
                            or len(pool.seen) != len(set(before)):
                        pool = _Answers(before)
                    events += _majority([pool.new(a) for a in values])
                else:
                    events += _moved_values(values, before)
            before.extend(values)
        for p in pooled[-3:]:  # repeats: the newest few reference runs are enough
            values = p[feature]
            if len(values) > 1:
                for i, v in enumerate(values):
                    trials += 1
                    events += _moved(feature, [v], values[:i] + values[i + 1:])
        out[feature] = (events, trials)
    return out


def _median_len(texts: list[str]) -> float | None:
    return median(_words(t)[1] or 1 for t in texts) if texts else None


def _log_ratio(now: float | None, before: float | None) -> float | None:
    if now is None or before is None or now <= 0 or before <= 0:
        return None
    return math.log(now / before)


def _identity(obs: CaseObs) -> set[tuple[Any, Any]]:
    return {(m, f) for (r, m, f) in obs.serving if r != NO_ROUTE and (m or f)}


@dataclass
class CaseBehaviour:
    case_id: str
    topic: str
    before: str | None  # reduced status in the baseline
    after: str
    moved: dict[str, bool] = field(default_factory=dict)  # feature -> moved beyond the reference
    null: dict[str, tuple[int, int]] = field(default_factory=dict)  # feature -> (moves, trials) on the reference
    compared: bool = False  # the case has answers now and in the reference
    refusing: tuple[bool, bool] | None = None  # (before, now): most answers refuse
    length: float | None = None  # log(median words now / median words before)
    tokens: float | None = None  # log(tokens per call now / before)
    latency: tuple[float, float] | None = None  # (median turn ms now, before)
    ref_calls: int = 0  # calls of this case in the reference that reached the model
    ref_failed: int = 0  # … and failed
    ours: bool | None = None  # our inputs changed (None: not known)
    known: bool = False  # both sides carry input fingerprints (else `ours` came from the git sha)
    model_changed: bool = False  # the model identity that answered is new for this case
    # (reference, now): the versions the service under test reported, when they differ
    versions: tuple[list[str], list[str]] | None = None

    @property
    def side(self) -> str:
        """model, ours or both."""
        if not self.ours:
            return "model"
        return "both" if self.model_changed else "ours"

    @property
    def any_moved(self) -> bool:
        return any(self.moved.values()) or self.flipped is not None

    @property
    def flipped(self) -> str | None:
        if self.before == "passed" and self.after == "failed":
            return "worse"
        if self.before == "failed" and self.after == "passed":
            return "better"
        return None


def case_behaviour(case_id: str, topic: str, before: str | None, after: str, now: CaseObs,
                   pooled: list[CaseObs], code_changed: bool | None) -> CaseBehaviour:
    """What one case did now against its reference observations (oldest first)."""
    b = CaseBehaviour(case_id, topic, before, after)
    b.ref_calls = sum(p.executed for p in pooled)
    b.ref_failed = sum(p.failed for p in pooled)
    values = [_feature_values(p) for p in pooled]
    current = _feature_values(now)
    ref_all = {f: [v for p in values for v in p[f]] for f in FEATURES}
    b.compared = bool(current["answer"] and ref_all["answer"])
    if b.compared:
        b.moved = {f: _moved(f, current[f], ref_all[f]) for f in FEATURES}
        b.null = _null(values)
        b.refusing = (_majority(ref_all["refusal"]), _majority(current["refusal"]))
        b.length = _log_ratio(_median_len(current["answer"]), _median_len(ref_all["answer"]))
    tok_now = now.tokens / now.executed if now.executed else None
    ref_calls = sum(p.executed for p in pooled)
    tok_ref = sum(p.tokens for p in pooled) / ref_calls if ref_calls else None
    b.tokens = _log_ratio(tok_now, tok_ref)
    ms_ref = [m for p in pooled for m in p.turn_ms]
    if now.turn_ms and ms_ref:
        b.latency = (median(now.turn_ms), median(ms_ref))
    ref_inputs = set(pooled[0].inputs) if pooled else set()
    if pooled and now.inputs and ref_inputs:
        b.ours = not (set(now.inputs) & ref_inputs)
        b.known = True
    else:
        b.ours = code_changed  # results stored before input fingerprints: the git sha is all there is
    ref_versions = sorted({v for p in pooled for v in p.versions})
    if now.versions and ref_versions and set(now.versions) != set(ref_versions):
        b.versions = (ref_versions, sorted(now.versions))
    ref_identity = set().union(*(_identity(p) for p in pooled)) if pooled else set()
    now_identity = _identity(now)
    b.model_changed = bool(ref_identity and now_identity and not now_identity <= ref_identity)
    return b


# ---------------------------------------------------------------- signals over a set of cases


@dataclass
class Signal:
    """One way behaviour can move, tested over a set of cases."""

    name: str  # outcome_worse, outcome_better, answers, shape, refusals, length, tokens, latency
    direction: str  # worse, better, changed, shorter, longer, slower, faster, more, fewer
    detail: str
    p_value: float | None  # raw
    effect_ok: bool  # the effect is large enough to matter
    cases: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    adjusted: float | None = None  # after the multiple-testing correction

    def significant(self, alpha: float) -> bool:
        return self.effect_ok and self.adjusted is not None and self.adjusted < alpha


@dataclass
class SideSignals:
    """Every signal over one set of cases, corrected together."""

    cases: int
    signals: list[Signal]
    alpha: float

    @property
    def significant(self) -> list[Signal]:
        return [s for s in self.signals if s.significant(self.alpha)]

    @property
    def moved(self) -> bool:
        return bool(self.significant)

    def has(self, name: str) -> bool:
        return any(s.name == name for s in self.significant)

    @property
    def direction(self) -> str:
        """worse, better, or changed (the pass rate held)."""
        worse, better = self.has("outcome_worse"), self.has("outcome_better")
        if worse and better:
            return "changed both ways"
        if worse:
            return "worse"
        if better:
            return "better"
        return "changed, pass rate unchanged"

    @property
    def moved_cases(self) -> list[str]:
        return list(dict.fromkeys(c for s in self.significant for c in s.cases))


def _binom_greater(k: int, n: int, p: float) -> float:
    if n <= 0 or k <= 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(k, n, min(max(p, 0.0), 1.0), alternative="greater").pvalue)


def _signed_rank(values: list[float]) -> float | None:
    diffs = [v for v in values if v != 0.0]
    if len(diffs) < 6:
        return None
    from scipy.stats import wilcoxon

    return float(wilcoxon(diffs).pvalue)


def _holm(signals: list[Signal]) -> None:
    tested = sorted((s for s in signals if s.p_value is not None), key=lambda s: s.p_value)
    m, running = len(tested), 0.0
    for i, s in enumerate(tested):
        running = max(running, min(1.0, (m - i) * s.p_value))
        s.adjusted = running


def _novelty_signal(name: str, feature: str, label: str, cases: list[CaseBehaviour]) -> Signal | None:
    """Cases whose `feature` moved, against each case's own rate of moving in the reference.

    A case's rate is its moves over its trials, shrunk toward the suite's overall rate (two
    trials' worth), so a word-for-word stable case and one that always varies are not held to
    one rate; the count of moved cases is then tested against the sum of those rates (a
    Poisson-binomial, normal approximation with continuity correction). Nothing measured at
    all: one half each, by an exact binomial test.
    """
    compared = [c for c in cases if c.compared]
    if not compared:
        return None
    moved = [c.case_id for c in compared if c.moved.get(feature)]
    events = sum(c.null[feature][0] for c in compared)
    trials = sum(c.null[feature][1] for c in compared)
    measured = trials > 0
    if measured:
        overall = (events + 1) / (trials + 2)
        rates = [(c.null[feature][0] + PRIOR_TRIALS * overall) / (c.null[feature][1] + PRIOR_TRIALS) for c in compared]
        p = _poisson_binomial_greater(len(moved), rates)
        how = f"the reference's own variation moves {overall * 100:.1f}% ({events} of {trials}), measured per case"
    else:
        overall = 0.5
        p = _binom_greater(len(moved), len(compared), overall)
        how = "variation not measured yet (one reference run without repeats): up to 50% assumed"
    detail = f"{label} changed in {len(moved)} of {len(compared)} cases; {how}; p={p:.3g}"
    return Signal(name, "changed", detail, p, len(moved) >= 2, moved,
                  {"moved": len(moved), "compared": len(compared), "null_rate": overall, "measured": measured})


def _fisher_greater(k: int, n: int, k_ref: int, n_ref: int) -> float:
    """p that k of n is a higher share than k_ref of n_ref (Fisher's exact test, one-sided)."""
    if k <= 0 or n <= 0 or n_ref <= 0:
        return 1.0
    from scipy.stats import fisher_exact

    return float(fisher_exact([[k, n - k], [k_ref, n_ref - k_ref]], alternative="greater")[1])


def _poisson_binomial_greater(k: int, rates: list[float]) -> float:
    """P(X ≥ k) for a sum of independent Bernoulli(rates), by the normal approximation."""
    if k <= 0:
        return 1.0
    mean = sum(rates)
    var = sum(r * (1 - r) for r in rates)
    if var <= 0:
        return 0.0 if k > mean else 1.0
    return 0.5 * math.erfc((k - 0.5 - mean) / math.sqrt(2 * var))


def _outcome_signals(cases: list[CaseBehaviour]) -> list[Signal]:
    """Check outcomes that flipped, each way. With the reference's own variation measured (two or
    more calls of most cases), today's flips are tested against each case's rate of the unusual
    outcome in the reference (shrunk toward the suite's); with one reference call a case, by the
    paired exact test (McNemar), which needs no rate: flips that lean one way."""
    down = [c.case_id for c in cases if c.flipped == "worse"]
    up = [c.case_id for c in cases if c.flipped == "better"]
    judged = [c for c in cases if c.before in ("passed", "failed") and c.after in ("passed", "failed")]
    calls = sorted(c.ref_calls for c in judged)
    measured = bool(calls) and calls[len(calls) // 2] >= 2
    out = []
    for name, direction, mine, other, usual in (("outcome_worse", "worse", down, up, "passed"),
                                                ("outcome_better", "better", up, down, "failed")):
        if measured:
            pool = [c for c in judged if c.before == usual]
            unusual = sum(c.ref_failed if usual == "passed" else c.ref_calls - c.ref_failed for c in pool)
            calls = sum(c.ref_calls for c in pool)
            p = _fisher_greater(len(mine), len(pool), unusual, calls) if pool else None
            how = f"against the reference's own flip rate {unusual / calls * 100 if calls else 0:.1f}% (Fisher)"
        else:
            n = len(mine) + len(other)
            p = _binom_greater(len(mine), n, 0.5) if n else None
            how = "paired exact test"
        detail = (f"{len(mine)} case(s) that {'passed' if direction == 'worse' else 'failed'} in the reference "
                  f"{'fail' if direction == 'worse' else 'pass'} now, {len(other)} the other way ({how}"
                  + (f", p={p:.3g})" if p is not None else ")"))
        big = len(mine) - len(other) >= max(2, MIN_FLIP_SHARE * len(judged))
        out.append(Signal(name, direction, detail, p, big, mine,
                          {"flipped": len(mine), "flipped_back": len(other), "measured": measured}))
    return out


def _refusal_signal(cases: list[CaseBehaviour]) -> Signal | None:
    pairs = [c for c in cases if c.refusing is not None]
    if not pairs:
        return None
    up = [c.case_id for c in pairs if c.refusing == (False, True)]
    down = [c.case_id for c in pairs if c.refusing == (True, False)]
    n = len(up) + len(down)
    if not n:
        return None
    more = len(up) >= len(down)
    k = len(up) if more else len(down)
    p = min(1.0, 2 * _binom_greater(k, n, 0.5))
    before = sum(1 for c in pairs if c.refusing[0])
    now = sum(1 for c in pairs if c.refusing[1])
    detail = f"refusals {before} → {now} of {len(pairs)} cases ({len(up)} began, {len(down)} stopped; p={p:.3g})"
    return Signal("refusals", "more refusals" if more else "fewer refusals", detail, p, abs(len(up) - len(down)) >= 2,
                  up if more else down, {"before": before, "now": now})


def _ratio_signal(name: str, label: str, values: list[tuple[str, float]], up: str, down: str) -> Signal | None:
    ratios = [v for _, v in values]
    p = _signed_rank(ratios)
    if p is None:
        return None
    mid = median(ratios)
    factor = math.exp(mid)
    direction = up if mid > 0 else down
    ids = [cid for cid, v in values if (v > 0) == (mid > 0) and abs(v) >= math.log(MIN_LENGTH_RATIO)]
    detail = f"{label} ×{factor:.2f} (median over {len(values)} cases; signed-rank p={p:.3g})"
    return Signal(name, direction, detail, p, abs(mid) >= math.log(MIN_LENGTH_RATIO), ids, {"factor": factor})


def side_signals(cases: list[CaseBehaviour], alpha: float, latency_shift: float) -> SideSignals:
    """Every signal over `cases`, corrected together (Holm)."""
    signals: list[Signal] = list(_outcome_signals(cases))
    for name, feature, label in (("answers", "answer", "answers"), ("shape", "shape", "answer structure")):
        s = _novelty_signal(name, feature, label, cases)
        if s is not None:
            signals.append(s)
    for s in (
        _refusal_signal(cases),
        _ratio_signal("length", "answer length", [(c.case_id, c.length) for c in cases if c.length is not None],
                      "longer", "shorter"),
        _ratio_signal("tokens", "tokens per call", [(c.case_id, c.tokens) for c in cases if c.tokens is not None],
                      "more tokens", "fewer tokens"),
    ):
        if s is not None:
            signals.append(s)
    _holm(signals)
    return SideSignals(len(cases), signals, alpha)
