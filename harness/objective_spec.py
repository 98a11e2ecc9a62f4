"""What a user writes: `objectives:` and `budget_policy:` in a suite file.

    objectives:
      - {name: answer-time, indicator: turn_ms, stat: p99, target: "< 5000", window: 28d}
      - {name: availability, indicator: infra_error_rate, target: "< 0.1%"}
      - {name: reservations, indicator: pass_rate, topic: reservation, target: ">= 95%"}
    budget_policy: {slow_down: 25%, freeze: 50%, post_mortem: 100%, gate: true}

The models check each value on its own (pydantic positions those errors); the loader
(`harness.loading._objectives`) checks what needs the whole suite (the check registry, the
rubrics folder, names used twice, a target that does not suit its indicator) and points at
the key at fault. This module sits with the records (the suite model in `harness.spec` holds
these types) and imports nothing heavier than pydantic; the objectives themselves (budgets,
burn rates, alerts) are `harness.objectives`, with the analysis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

Indicator = Literal["first_token_ms", "turn_ms", "infra_error_rate", "check_fail_rate", "judge_fail_rate", "pass_rate"]
Stat = Literal["p50", "p90", "p95", "p99", "mean"]

LATENCY = ("first_token_ms", "turn_ms")
ERROR_RATES = ("infra_error_rate", "check_fail_rate", "judge_fail_rate")
QUANTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}
NAME_PATTERN = r"^[a-z0-9][a-z0-9_.\-]*$"
JUDGE_CHECKS = ("judge", "call_judge")

_TARGET = re.compile(r"^\s*(<=|>=|<|>)\s*([0-9]+(?:\.[0-9]+)?|\.[0-9]+)\s*(%|ms|s)?\s*$")
_WINDOW = re.compile(r"^\s*([0-9]+)\s*(d|h|r|runs?|days?|hours?)\s*$", re.I)
_PERCENT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*%\s*$")


@dataclass(frozen=True)
class Target:
    """`< 5000` (ms), `< 0.1%`, `>= 95%`: a comparison and a value (rates as a fraction 0..1)."""

    op: str
    value: float
    unit: str  # "%", "ms", "s" or "" as written

    def met(self, x: float) -> bool:
        return {"<": x < self.value, "<=": x <= self.value, ">": x > self.value, ">=": x >= self.value}[self.op]

    def __str__(self) -> str:
        if self.unit == "%":
            return f"{self.op} {_num(self.value * 100)}%"
        return f"{self.op} {_num(self.value)}{' ms' if self.unit in ('ms', 's') else ''}"


@dataclass(frozen=True)
class Window:
    """A rolling window: the last `runs` runs, or the runs of the last `seconds`."""

    runs: int | None = None
    seconds: float | None = None
    text: str = ""

    def __str__(self) -> str:
        return self.text


def _num(x: float) -> str:
    return f"{x:g}"


def parse_target(v: Any) -> Target:
    if isinstance(v, Target):
        return v
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        raise ValueError(f"target: expected a comparison such as \"< 5000\", \"< 0.1%\" or \">= 95%\", got {v!r}")
    m = _TARGET.match(str(v)) if isinstance(v, str) else None
    if m is None:
        raise ValueError(f"target: {v!r} is not a comparison (expected e.g. \"< 5000\" for ms, \"< 0.1%\" "
                         "or \">= 95%\" for a rate)")
    op, number, unit = m.group(1), float(m.group(2)), m.group(3) or ""
    if unit == "%":
        if number > 100:
            raise ValueError(f"target: {v!r} is more than 100%")
        number /= 100
    elif unit == "s":
        number *= 1000
    return Target(op, number, unit)


def parse_window(v: Any) -> Window:
    if isinstance(v, Window):
        return v
    m = _WINDOW.match(str(v)) if isinstance(v, (str, int)) and not isinstance(v, bool) else None
    if m is None or int(m.group(1)) == 0:
        raise ValueError(f"window: {v!r} is not a window (expected days, hours or runs, e.g. 28d, 12h or 30 runs)")
    n, unit = int(m.group(1)), m.group(2).lower()
    if unit.startswith("r"):
        return Window(runs=n, text=f"{n} run{'s' if n != 1 else ''}")
    seconds = n * (86400 if unit.startswith("d") else 3600)
    return Window(seconds=float(seconds), text=f"{n}{unit[0]}")


def parse_share(v: Any, what: str) -> float:
    """`25%` or 0.25 -> 0.25 (a share of the error budget; 100% and more are allowed)."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        share = float(v)
    else:
        m = _PERCENT.match(str(v)) if isinstance(v, str) else None
        if m is None:
            raise ValueError(f"{what}: expected a share of the budget such as 25%, got {v!r}")
        share = float(m.group(1)) / 100
    if share <= 0:
        raise ValueError(f"{what}: {v!r} must be more than 0%")
    return share


# What a user writes, for the JSON Schema (the models hold parsed values)
TargetText = Annotated[Target, WithJsonSchema({"type": "string", "pattern": r"^\s*(<=|>=|<|>)\s*[0-9.]+\s*(%|ms|s)?\s*$",
                                               "examples": ["< 5000", "< 0.1%", ">= 95%"]})]
WindowText = Annotated[Window, WithJsonSchema({"type": "string", "pattern": r"^\s*[0-9]+\s*(d|h|r|runs?|days?|hours?)\s*$",
                                               "examples": ["28d", "12h", "30 runs"]})]
Share = Annotated[float, WithJsonSchema({"anyOf": [{"type": "number", "exclusiveMinimum": 0},
                                                   {"type": "string", "pattern": r"^\s*[0-9.]+\s*%\s*$"}]})]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class ObjectiveSpec(_Strict):
    """One service level objective over the run history."""

    name: str = Field(pattern=NAME_PATTERN)
    indicator: Indicator = Field(description="what is measured: turn or first-token time, or a share of calls")
    stat: Stat | None = Field(default=None, description="first_token_ms / turn_ms: p50, p90, p95, p99 or mean (default p95)")
    target: TargetText = Field(description='"< 5000" (ms), "< 0.1%" (error rates), ">= 95%" (pass_rate)')
    window: WindowText = Field(default_factory=lambda: parse_window("28d"), description="28d, 12h or 30 runs")
    check: str | None = Field(default=None, description="check_fail_rate: the check, e.g. json")
    rubric: str | None = Field(default=None, description="judge_fail_rate: the rubric (default every judged answer)")
    topic: str | None = Field(default=None, description="pass_rate, infra_error_rate: only calls of this topic")
    description: str | None = None

    @field_validator("target", mode="before")
    @classmethod
    def _target(cls, v: Any) -> Target:
        return parse_target(v)

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, v: Any) -> Window:
        return parse_window(v)

    @property
    def quantile(self) -> float | None:
        """The share of turns that must meet a latency target (p99 -> 0.99); None for mean."""
        return QUANTILES.get(self.stat_or_default) if self.indicator in LATENCY else None

    @property
    def stat_or_default(self) -> str:
        return self.stat or "p95"

    @property
    def allowed_bad(self) -> float | None:
        """The error budget as a share of events: 1 - 0.99 for p99, the rate for `< 0.1%`,
        1 - 0.95 for `>= 95%`; None for a mean (no event can be counted against it)."""
        if self.indicator in LATENCY:
            q = self.quantile
            return None if q is None else round(1 - q, 12)
        if self.indicator == "pass_rate":
            return round(1 - self.target.value, 12)
        return self.target.value

    @property
    def unit(self) -> str:
        """What one event is, in words."""
        return {"first_token_ms": "turns", "turn_ms": "turns", "check_fail_rate": "checks",
                "judge_fail_rate": "judgements"}.get(self.indicator, "calls")

    @property
    def target_text(self) -> str:
        """The target as written, with ms on a time: `< 5000 ms`, `< 0.1%`."""
        text = str(self.target)
        return f"{text} ms" if self.indicator in LATENCY and not text.endswith("ms") else text

    def describe(self) -> str:
        """`p99 turn_ms < 5000 ms`, `check_fail_rate[json] < 0.01%`."""
        what = self.indicator
        if self.indicator in LATENCY:
            what = f"{self.stat_or_default} {what}"
        sel = self.check or self.rubric or self.topic
        if sel:
            what += f"[{sel}]"
        return f"{what} {self.target_text}"


def _default_alerts() -> list["BurnAlert"]:
    # The SRE workbook's multi-window, multi-burn-rate alerts, with its hour windows read as
    # runs (a run is one sample of the service, not an hour of traffic) and its ticket as days.
    return [
        BurnAlert(severity="page", long=parse_window("3 runs"), short=parse_window("1 run"), rate=14.4),
        BurnAlert(severity="page", long=parse_window("12 runs"), short=parse_window("2 runs"), rate=6),
        BurnAlert(severity="ticket", long=parse_window("3d"), short=parse_window("1d"), rate=1),
    ]


class BurnAlert(_Strict):
    """Fires when the burn rate over both windows is at least `rate` (1 = the budget lasts the window)."""

    severity: Literal["page", "ticket"] = "page"
    long: WindowText
    short: WindowText
    rate: float = Field(gt=0)

    @field_validator("long", "short", mode="before")
    @classmethod
    def _window(cls, v: Any) -> Window:
        return parse_window(v)


class BudgetPolicy(_Strict):
    """What the share of the error budget consumed means for releases."""

    slow_down: Share = Field(default=0.25, description="slow down and add tests from this share consumed")
    freeze: Share = Field(default=0.50, description="freeze releases from this share consumed")
    post_mortem: Share = Field(default=1.00, description="a post-mortem from this share consumed")
    gate: bool = Field(default=False, description="a run exits 1 while an objective's policy says freeze")
    alerts: list[BurnAlert] = Field(default_factory=_default_alerts, description="multi-window burn-rate alerts")

    @field_validator("slow_down", "freeze", "post_mortem", mode="before")
    @classmethod
    def _share(cls, v: Any, info: Any) -> float:
        return parse_share(v, info.field_name)

    @model_validator(mode="after")
    def _ordered(self) -> "BudgetPolicy":
        if not self.slow_down <= self.freeze <= self.post_mortem:
            raise ValueError("budget_policy: expected slow_down <= freeze <= post_mortem "
                             f"(got {self.slow_down:.0%}, {self.freeze:.0%}, {self.post_mortem:.0%})")
        return self
