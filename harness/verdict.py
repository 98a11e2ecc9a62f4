"""A run's verdict as one typed value: its class, its headline, its evidence.

    v = Verdict.from_stored(run.extra.get("verdict"))   # None when the run has none
    v.cls.exit_code(code), v.cls.style, v.cls.emoji      # what every surface shows
    run.extra["verdict"] = v.to_dict()                   # the stored shape, written here only

A class carries everything a surface needs to show it (exit code, colour per surface,
wording), so no reporter or notifier keeps its own table: adding a class is adding one
member here. The analysis stage builds verdicts (`harness.analysis.rules`); notifiers
derive a plain one from the counts when a run has none (`Verdict.from_counts`).

The stored shape is the JSON object older versions wrote at `runs.extra["verdict"]`;
`from_dict` reads any of them, and a stored value it cannot make sense of reads as
`unknown` with a note saying why, never as an exception.

This module sits beside `records`: it imports nothing but `errors`, so every layer from
the store up can use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .errors import ExitCode

__all__ = ["Evidence", "Verdict", "VerdictClass"]


class VerdictClass(str, Enum):
    """The classes of verdict, in order of blame, with how each is shown.

    Per member: the exit code it forces (None: the checks' own code stands), whether a run
    of it says what normal looks like (a healthy reference for later runs), whether it
    alerts (Slack's class triggers), the console style, the HTML tone (a CSS class
    `v-<tone>`), the Slack emoji, the Datadog event alert type (None: no event), a label
    and a one-line description.
    """

    forced_exit: ExitCode | None
    healthy: bool
    alerting: bool
    style: str
    tone: str
    emoji: str
    alert: str | None
    label: str
    description: str

    def __new__(cls, value: str, forced_exit: ExitCode | None, healthy: bool, alerting: bool, style: str,
                tone: str, emoji: str, alert: str | None, label: str, description: str) -> VerdictClass:
        obj = str.__new__(cls, value)
        obj._value_ = value
        obj.forced_exit = forced_exit
        obj.healthy = healthy
        obj.alerting = alerting
        obj.style = style
        obj.tone = tone
        obj.emoji = emoji
        obj.alert = alert
        obj.label = label
        obj.description = description
        return obj

    INFRA = ("infra", ExitCode.UNREACHABLE, False, True, "bold yellow", "err", ":construction:", "warning",
             "infra", "errors dominate: timeouts, 429, 5xx, the circuit breaker, an outage — not the agent")
    FALLBACK = ("fallback", None, False, True, "bold yellow", "err", ":twisted_rightwards_arrows:", "warning",
                "primary down", "infra: the primary route was down and a fallback served a real share of replies; "
                "the service stayed up (the checks' own exit code stands)")
    JUDGE_DRIFT = ("judge_drift", ExitCode.FAILED, False, True, "bold magenta", "drift", ":scales:", "warning",
                   "judge drift", "the judge disagrees with its labelled canaries; its scores are not trusted")
    DRIFT = ("drift", ExitCode.FAILED, False, True, "bold yellow", "drift", ":warning:", "warning",
             "drift", "the model moved: behaviour changed beyond the reference's variation with our inputs "
                      "unchanged (worse, better, or answers changed with the pass rate held), or a new fingerprint")
    MIXED = ("mixed", ExitCode.FAILED, False, True, "bold yellow", "drift", ":twisted_rightwards_arrows:", "warning",
             "mixed", "our inputs and the model's behaviour both changed: the cases on each side are named")
    REGRESSION = ("regression", ExitCode.FAILED, False, True, "bold red", "fail", ":red_circle:", "error",
                  "regression", "a significant drop where our inputs changed and the model did not")
    FAILING = ("failing", None, True, True, "bold red", "fail", ":x:", "error",
               "failing", "cases fail and nothing moved against the reference (a first run with failures too)")
    NOISE = ("noise", None, True, False, "bold green", "pass", ":large_blue_circle:", "info",
             "noise", "differences within the variance the history shows")
    OK = ("ok", None, True, False, "bold green", "pass", ":white_check_mark:", None,
          "ok", "nothing moved")
    UNKNOWN = ("unknown", None, False, False, "bold magenta", "other", ":grey_question:", "warning",
               "unknown", "a stored verdict this version cannot read")

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    def exit_code(self, checks: ExitCode) -> ExitCode:
        """The run's exit code: the one this class forces, else the checks' own."""
        return self.forced_exit if self.forced_exit is not None else checks

    def gate_exit_code(self) -> ExitCode:
        """The run's exit code on the verdict alone (a suite's `analysis: {gate: verdict}`): a
        drift suite against a live model whose cases never all pass is red when something
        moved or the service was down, not every day its known failures fail again."""
        if self.forced_exit is not None:
            return self.forced_exit
        if self is VerdictClass.FALLBACK:
            return ExitCode.UNREACHABLE
        return ExitCode.OK

    @classmethod
    def parse(cls, value: Any) -> VerdictClass | None:
        """The class named by a stored string (older spellings included); None if unknown."""
        if isinstance(value, VerdictClass):
            return value
        if not isinstance(value, str):
            return None
        text = value.strip().lower()
        text = _ALIASES.get(text, text)
        try:
            return cls(text)
        except ValueError:
            return None


_ALIASES = {"pass": "ok", "passed": "ok", "judge-drift": "judge_drift", "failed": "failing"}


@dataclass
class Evidence:
    """One finding behind a verdict: what kind, one readable line, and the figures behind it
    (p-values, shares, case ids …), stored flat beside `kind` and `detail`."""

    kind: str
    detail: str
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def cases(self) -> list[str]:
        ids = self.figures.get("cases")
        return [str(c) for c in ids] if isinstance(ids, list) else []

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "detail": self.detail, **self.figures}

    @classmethod
    def from_stored(cls, value: Any) -> Evidence:
        if isinstance(value, Evidence):
            return value
        if isinstance(value, Mapping):
            figures = {str(k): v for k, v in value.items() if k not in ("kind", "detail")}
            detail = value.get("detail")
            return cls(str(value.get("kind") or ""), detail if isinstance(detail, str) else
                       ("" if detail is None else str(detail)), figures)
        return cls("", "" if value is None else str(value))  # older verdicts listed bare lines


# keys of the stored dict, in the order they are written
_KEYS = ("class", "headline", "evidence", "topics", "changed_cases", "baseline_run", "reference", "same_code",
         "infra_share", "latency", "usage", "consistency", "note")


@dataclass
class Verdict:
    """A run's verdict. `to_dict`/`from_dict` are the only place its stored shape is written."""

    cls: VerdictClass
    headline: str = ""
    evidence: list[Evidence] = field(default_factory=list)
    topics: dict[str, Any] = field(default_factory=dict)  # topic → figures (pass rates, p-value …)
    changed_cases: list[dict[str, Any]] | None = None  # None: the verdict does not say (an older one)
    baseline_run: str | None = None
    reference: str | None = None  # the reference's label ("accepted baseline", "previous run" …)
    same_code: bool | None = None
    infra_share: float | None = None
    latency: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    consistency: dict[str, Any] | None = None  # case id → agreement between its repeats
    note: str | None = None  # why a stored verdict reads as unknown
    raw_class: str | None = None  # the stored class this version does not know
    extra: dict[str, Any] = field(default_factory=dict)  # stored keys this version does not know, kept

    @property
    def name(self) -> str:
        """The class as shown: the stored spelling of a class this version does not know."""
        return self.raw_class if self.cls is VerdictClass.UNKNOWN and self.raw_class else self.cls.value

    @property
    def case_ids(self) -> list[str]:
        """Cases named by any evidence item, in order, once."""
        return list(dict.fromkeys(c for e in self.evidence for c in e.cases))

    def evidence_of(self, kind: str) -> list[Evidence]:
        return [e for e in self.evidence if e.kind == kind]

    def exit_code(self, checks: ExitCode) -> ExitCode:
        return self.cls.exit_code(checks)

    # ---------------------------------------------------------------- the stored shape

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "class": self.name,
            "headline": self.headline,
            "evidence": [e.to_dict() for e in self.evidence],
            "topics": self.topics,
        }
        if self.changed_cases is not None:
            out["changed_cases"] = self.changed_cases
        out["baseline_run"] = self.baseline_run
        for key in ("reference", "same_code", "infra_share", "latency", "usage", "consistency", "note"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        """Read a stored verdict of this or an older version; what cannot be read becomes a note."""
        notes: list[str] = []
        raw = data.get("class") or data.get("kind")  # very old verdicts said `kind`
        vc = VerdictClass.parse(raw)
        raw_class = None
        if vc is None:
            vc = VerdictClass.UNKNOWN
            if isinstance(raw, str) and raw.strip():
                raw_class = raw
                notes.append(f"unknown verdict class {raw!r}")
            else:
                notes.append("the stored verdict has no class")
        headline = data.get("headline")
        if headline is not None and not isinstance(headline, str):
            notes.append("its headline is not text")
            headline = str(headline)
        evidence = data.get("evidence")
        if evidence is None:
            evidence = []
        elif not isinstance(evidence, (list, tuple)):
            evidence = [evidence]

        def typed(key: str, kind: type, label: str) -> Any:
            value = data.get(key)
            if value is None or isinstance(value, kind):
                return value
            notes.append(f"its {label} could not be read")
            return None

        share = data.get("infra_share")
        stored_note = data.get("note") if isinstance(data.get("note"), str) else None
        if vc is VerdictClass.UNKNOWN and stored_note:
            notes.insert(0, stored_note)
        same_code = data.get("same_code")
        changed = typed("changed_cases", list, "changed cases")
        baseline = data.get("baseline_run")
        if isinstance(baseline, Mapping):  # some older verdicts stored the baseline run itself
            baseline = baseline.get("run_id")
        v = cls(
            cls=vc,
            headline=headline or "",
            evidence=[Evidence.from_stored(e) for e in evidence],
            topics=typed("topics", dict, "topics") or {},
            changed_cases=None if changed is None else [c for c in changed if isinstance(c, dict)],
            baseline_run=None if baseline is None else str(baseline),
            reference=str(data["reference"]) if data.get("reference") is not None else None,
            same_code=same_code if isinstance(same_code, bool) else None,
            infra_share=float(share) if isinstance(share, (int, float)) and not isinstance(share, bool) else None,
            latency=typed("latency", dict, "latency"),
            usage=typed("usage", dict, "usage"),
            consistency=typed("consistency", dict, "consistency"),
            raw_class=raw_class,
            extra={str(k): v for k, v in data.items() if k not in _KEYS and k != "kind"},
        )
        if vc is VerdictClass.UNKNOWN:
            v.note = "; ".join(dict.fromkeys(notes))
            if not v.headline:
                v.headline = f"unknown: {v.note}"
        elif notes:
            v.note = "; ".join(notes)
        return v

    @classmethod
    def from_stored(cls, value: Any) -> Verdict | None:
        """The verdict at `run.extra["verdict"]`: None when there is none, `unknown` with a note
        when what is stored is not a verdict this version can read."""
        if value is None or value == {} or value == "":
            return None
        if isinstance(value, Verdict):
            return value
        if isinstance(value, Mapping):
            return cls.from_dict(value)
        if isinstance(value, str):  # very old runs stored the class alone
            return cls.from_dict({"class": value})
        note = f"the stored verdict is a {type(value).__name__}, not an object"
        return cls(VerdictClass.UNKNOWN, headline=f"unknown: {note}", note=note)

    @classmethod
    def of_extra(cls, extra: Any) -> Verdict | None:
        """The verdict stored in a run's `extra` (None when there is none)."""
        return cls.from_stored(extra.get("verdict")) if isinstance(extra, Mapping) else None

    # ---------------------------------------------------------------- without analysis

    @classmethod
    def from_counts(cls, status: str, message: str | None, counts: Mapping[str, int]) -> Verdict:
        """A plain verdict from counts alone: ok, failing, or infra (aborted, or errors dominate)."""
        passed, failed = counts.get("passed", 0), counts.get("failed", 0)
        executed = passed + failed + counts.get("error", 0)
        errors = counts.get("error", 0) + counts.get("not_run", 0)
        parts = [f"{passed}/{executed} passed"]
        for key, word in (("failed", "failed"), ("error", "errors"), ("not_run", "not run")):
            if counts.get(key):
                parts.append(f"{counts[key]} {word}")
        headline = ", ".join(parts)
        if status == "aborted" or (errors and errors >= passed + failed):
            vc = VerdictClass.INFRA
            if message:
                headline = f"{message} ({headline})"
        elif executed and passed == executed and not counts.get("not_run"):
            vc = VerdictClass.OK
        else:
            vc = VerdictClass.FAILING
        return cls(vc, headline, changed_cases=[])

    @classmethod
    def for_run(cls, status: str, message: str | None, extra: Any, counts: Mapping[str, int]) -> tuple[Verdict, bool]:
        """The run's stored verdict, or one derived from `counts` when it has none (or one
        without a class); the flag says whether it was derived. A stored verdict without a
        headline takes the counts' line."""
        derived = cls.from_counts(status, message, counts)
        stored = cls.of_extra(extra)
        if stored is None or (stored.cls is VerdictClass.UNKNOWN and stored.raw_class is None):
            return derived, True
        if not stored.headline:
            stored.headline = derived.headline
        return stored, False
