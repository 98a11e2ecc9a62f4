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
    inputs: list[str] = field(default_factory=list)  # distinct input fingerprints (harness.analysis.inputs)
    versions: list[str] = field(default_factory=list)  # distinct versions the service under test reported

    def note_inputs(self, fp: str | None) -> None:
        if fp and fp not in self.inputs:
            self.inputs.append(fp)

    def note_version(self, version: Any) -> None:
        if version and isinstance(version, str) and version not in self.versions:
            self.versions.append(version)

    def count(self, status: str) -> int:
        return self.statuses.count(status)

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
            "inputs": self.inputs,
            "versions": self.versions,
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
        obs.inputs = [str(x) for x in data.get("inputs") or []]
        obs.versions = [str(x) for x in data.get("versions") or []]
        return obs


# A repeat as the fold below reads it, whether it comes from a fresh record or a stored row:
# each check as (name, score, weight, counts) where counts = neither skipped nor in error,
# and each reply as (kind, text, total_ms, tokens, cost, route, model, fingerprint), where the
# model is the deployment that served when a gateway names it (model@api-base host).
_Check = tuple[str, float, float, bool]
_Reply = tuple[str, str, "float | None", int, float, "str | None", "str | None", "str | None"]


def _fold(obs: CaseObs, status: str, checks: list[_Check], replies: list[_Reply], outage_transfer: bool) -> None:
    """Fold one repeat into a case's observation.

    A call no model served is an infra error whatever its checks said: the agent never had
    the chance to be right or wrong, so it must not count against its pass rate.
    """
    if outage_transfer or any(r[5] == NO_ROUTE for r in replies):
        obs.outage += 1
        if status in ("passed", "failed"):
            status = "error"
    obs.statuses.append(status)
    if status in ("passed", "failed"):
        used = [(score, weight) for _, score, weight, counts in checks if counts]
        total = sum(w for _, w in used)
        obs.scores.append(sum(sc * w for sc, w in used) / total if used and total > 0 else None)
        # the agent's side of the call, normalised: what "the same answer" means between
        # repeats; the greeting is left out (it is recorded, not generated), and caller words
        spoken = [r[1] for r in replies if r[0] != "greeting"]
        obs.answers.append(normalize_text("\n".join(spoken)) if spoken else None)
        obs.judge_scores.extend(score for name, score, _, counts in checks if counts and name in JUDGE_CHECKS)
    else:
        obs.scores.append(None)
        obs.answers.append(None)
    for kind, _, total_ms, tokens, cost, route, model, fingerprint in replies:
        if kind == "greeting":
            continue
        if total_ms is not None:
            obs.turn_ms.append(total_ms)
        obs.tokens += tokens
        obs.cost += cost
        obs.serving[(route, model, fingerprint)] += 1


def add_row(obs: CaseObs, status: str, checks: list[dict[str, Any]], transcript: dict[str, Any] | None) -> None:
    """Fold one repeat, as stored (plain dicts), into a case's observation."""
    replies: list[_Reply] = []
    outage_transfer = False
    if transcript:
        for t in transcript.get("turns", []):
            r = t.get("reply") or {}
            obs.note_version(r.get("service_version"))
            replies.append((t.get("kind"), r.get("text") or "",
                            float(r["total_ms"]) if r.get("total_ms") is not None else None,
                            int(r.get("tokens_in") or 0) + int(r.get("tokens_out") or 0), float(r.get("cost") or 0.0),
                            r.get("route"), r.get("deployment") or r.get("model"), r.get("fingerprint")))
        outcome = transcript.get("outcome") or {}
        outage_transfer = bool(outcome.get("transferred") and outcome.get("transfer_reason") == "outage")
    _fold(obs, status, [(c.get("name"), float(c.get("score", 0.0)), float(c.get("weight", 1.0)),
                         not c.get("skipped") and not c.get("error")) for c in checks],
          replies, outage_transfer)


def add_result(obs: CaseObs, r: CaseResult) -> None:
    """Fold one fresh result into a case's observation: the same as `add_row` on its stored
    form, read straight from the record (a run's own analysis does this for every result)."""
    t = r.transcript
    replies: list[_Reply] = []
    outage_transfer = False
    if t is not None:
        for turn in t.turns:
            a = turn.reply
            obs.note_version(a.service_version)
            replies.append((turn.kind, a.text or "", a.total_ms, (a.tokens_in or 0) + (a.tokens_out or 0),
                            a.cost or 0.0, a.route, a.deployment or a.model, a.fingerprint))
        outage_transfer = bool(t.outcome.transferred and t.outcome.transfer_reason == "outage")
    _fold(obs, r.status, [(c.name, c.score, c.weight, not c.skipped and not c.error) for c in r.checks],
          replies, outage_transfer)
    obs.note_inputs(r.inputs)


def observe_results(results: Iterable[CaseResult]) -> dict[str, CaseObs]:
    """Per-case observations of fresh results (repeats sorted by repeat index)."""
    out: dict[str, CaseObs] = {}
    for r in sorted(results, key=lambda r: (r.case_id, r.repeat_index)):
        obs = out.get(r.case_id)
        if obs is None:
            obs = out[r.case_id] = CaseObs(r.case_id, r.topic)
        add_result(obs, r)
    return out


def short(answer: str | None) -> str | None:
    if answer is None:
        return None
    return answer if len(answer) <= MAX_ANSWER_CHARS else answer[: MAX_ANSWER_CHARS - 1] + "…"
