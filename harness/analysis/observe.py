"""What analysis needs from a run, per case: counts, answers, scores, latency, routes.

A run's results carry whole transcripts; comparing fifteen runs with each other needs only
a few numbers and the normalised answers per case. `CaseObs` is that summary. It is built
the same way from fresh `CaseResult`s, from stored result rows and from a baseline row, so
every comparison compares like with like.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..normalize import normalize_text
from ..records import CaseResult

JUDGE_CHECKS = frozenset({"judge", "call_judge"})
NO_ROUTE = "none"  # the route a reply reports when no model served it
MAX_ANSWER_CHARS = 300  # stored and shown answers are cut here; comparison uses the whole text


@dataclass
class CaseObs:
    """One case in one run (all its repeats)."""

    case_id: str
    topic: str
    statuses: list[str] = field(default_factory=list)  # per repeat, in repeat order
    scores: list[float | None] = field(default_factory=list)  # per repeat: weighted mean check score
    answers: list[str | None] = field(default_factory=list)  # per repeat: normalised agent text
    judge_scores: list[float] = field(default_factory=list)
    turn_ms: list[float] = field(default_factory=list)
    tokens: int = 0
    cost: float = 0.0
    outage: int = 0  # repeats where no model served and the caller was handed over
    # (route, model, fingerprint) -> replies served
    serving: Counter = field(default_factory=Counter)

    def count(self, status: str) -> int:
        return sum(1 for s in self.statuses if s == status)

    @property
    def passed(self) -> int:
        return self.count("passed")

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def executed(self) -> int:
        return self.passed + self.failed

    @property
    def answer_counts(self) -> Counter:
        return Counter(a for a in self.answers if a is not None)

    # -- serialisation (baseline rows)
    def to_dict(self) -> dict[str, Any]:
        return {
            "statuses": self.statuses,
            "scores": self.scores,
            "answers": self.answers,
            "judge_scores": self.judge_scores,
            "turn_ms": self.turn_ms,
            "tokens": self.tokens,
            "cost": self.cost,
            "outage": self.outage,
            "serving": [[r, m, f, n] for (r, m, f), n in self.serving.items()],
        }

    @classmethod
    def from_dict(cls, case_id: str, topic: str, data: dict[str, Any]) -> "CaseObs":
        obs = cls(case_id, topic)
        obs.statuses = list(data.get("statuses") or [])
        obs.scores = list(data.get("scores") or [])
        obs.answers = list(data.get("answers") or [])
        obs.judge_scores = [float(x) for x in data.get("judge_scores") or []]
        obs.turn_ms = [float(x) for x in data.get("turn_ms") or []]
        obs.tokens = int(data.get("tokens") or 0)
        obs.cost = float(data.get("cost") or 0.0)
        obs.outage = int(data.get("outage") or 0)
        obs.serving = Counter({(r, m, f): int(n) for r, m, f, n in data.get("serving") or []})
        return obs


def answer_of(transcript: dict[str, Any] | None) -> str | None:
    """The agent's side of a call, normalised: what "the same answer" means between repeats.

    The greeting is left out (it is recorded, not generated) and so are caller words.
    """
    if not transcript:
        return None
    texts = [t["reply"].get("text") or "" for t in transcript.get("turns", []) if t.get("kind") != "greeting"]
    return normalize_text("\n".join(texts)) if texts else None


def _check_score(checks: list[dict[str, Any]]) -> float | None:
    used = [c for c in checks if not c.get("skipped") and not c.get("error")]
    weight = sum(float(c.get("weight", 1.0)) for c in used)
    if not used or weight <= 0:
        return None
    return sum(float(c.get("score", 0.0)) * float(c.get("weight", 1.0)) for c in used) / weight


def _served_by_no_model(transcript: dict[str, Any] | None) -> bool:
    """No model answered: a reply routed "none", or the caller handed over because of an outage."""
    if not transcript:
        return False
    if any((t.get("reply") or {}).get("route") == NO_ROUTE for t in transcript.get("turns", [])):
        return True
    outcome = transcript.get("outcome") or {}
    return bool(outcome.get("transferred") and outcome.get("transfer_reason") == "outage")


def add_row(obs: CaseObs, status: str, checks: list[dict[str, Any]], transcript: dict[str, Any] | None) -> None:
    """Fold one repeat (as stored: plain dicts) into a case's observation.

    A call no model served is an infra error whatever its checks said: the agent never had
    the chance to be right or wrong, so it must not count against its pass rate.
    """
    if _served_by_no_model(transcript):
        obs.outage += 1
        if status in ("passed", "failed"):
            status = "error"
    obs.statuses.append(status)
    executed = status in ("passed", "failed")
    obs.scores.append(_check_score(checks) if executed else None)
    obs.answers.append(answer_of(transcript) if executed else None)
    for c in checks:
        if executed and c.get("name") in JUDGE_CHECKS and not c.get("skipped") and not c.get("error"):
            obs.judge_scores.append(float(c.get("score", 0.0)))
    if not transcript:
        return
    for t in transcript.get("turns", []):
        reply = t.get("reply") or {}
        if t.get("kind") == "greeting":
            continue
        if reply.get("total_ms") is not None:
            obs.turn_ms.append(float(reply["total_ms"]))
        obs.tokens += int(reply.get("tokens_in") or 0) + int(reply.get("tokens_out") or 0)
        obs.cost += float(reply.get("cost") or 0.0)
        obs.serving[(reply.get("route"), reply.get("model"), reply.get("fingerprint"))] += 1


def observe_results(results: Iterable[CaseResult]) -> dict[str, CaseObs]:
    """Per-case observations of fresh results (repeats sorted by repeat index)."""
    out: dict[str, CaseObs] = {}
    for r in sorted(results, key=lambda r: (r.case_id, r.repeat_index)):
        obs = out.setdefault(r.case_id, CaseObs(r.case_id, r.topic))
        # read-only views: the analysis never changes a result, so nothing needs copying
        checks = [c.to_dict(copy_values=False) for c in r.checks]
        add_row(obs, r.status, checks,
                r.transcript.to_dict(copy_values=False) if r.transcript is not None else None)
    return out


def short(answer: str | None) -> str | None:
    if answer is None:
        return None
    return answer if len(answer) <= MAX_ANSWER_CHARS else answer[: MAX_ANSWER_CHARS - 1] + "…"
