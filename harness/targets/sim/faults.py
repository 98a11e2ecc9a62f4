"""Fault knobs of the simulated agent: what can go wrong with it, on purpose.

Drift detection, infra classification and the trend report all need bad days to show.
Each knob reproduces one kind of bad day a real phone service has: slow turns, a primary
model outage served by the fallback, no model at all, 429 bursts, a silent model update,
and an agent that promises a table that is not free. The voice knobs act only when the
agent answers the phone (`harness agent serve --voice`): its first audio comes late, it talks
on when the caller barges in, it leaves dead air inside an answer, or the stream drops.

A fault is written `name` or `name:value` (CLI `--sim-fault hallucination:0.2`) or, in a
suite, a mapping `{hallucination: 0.2}`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

__all__ = ["FAULTS", "FaultInfo", "Faults", "parse_fault", "parse_faults"]


@dataclass(frozen=True)
class FaultInfo:
    name: str
    help: str
    default: float | None  # value used when none is given; None for on/off faults
    unit: str  # "rate" (0..1), "ms", "count" (a whole number >= 1), or "" (takes no value)


FAULTS: dict[str, FaultInfo] = {
    f.name: f
    for f in (
        FaultInfo("latency", "extra milliseconds added to every turn", 500.0, "ms"),
        FaultInfo("primary_outage", "share of turns the primary model fails and the slower fallback answers", 1.0,
                  "rate"),
        FaultInfo("full_outage", "share of turns no model answers; the agent transfers the caller (reason outage)",
                  1.0, "rate"),
        FaultInfo("rate_limit", "share of requests answered 429 with retry_after 0.05 s", 0.3, "rate"),
        FaultInfo("server_error", "share of requests answered 503", 0.3, "rate"),
        FaultInfo("model_update", "the primary model is silently updated: same meaning, new wording and fingerprint",
                  None, ""),
        FaultInfo("hallucination", "share of fully booked times the agent wrongly confirms as free", 0.5, "rate"),
        # voice only (harness agent serve --voice): what a caller hears go wrong
        FaultInfo("slow_first_audio", "voice: milliseconds of silence before each answer's first audio", 3000.0, "ms"),
        FaultInfo("ignores_barge_in", "voice: the agent talks on when the caller talks over it (no clear)", None, ""),
        FaultInfo("dead_air", "voice: milliseconds of silence in the middle of each answer", 2000.0, "ms"),
        FaultInfo("drops_stream", "voice: the media stream's connection is cut after this many answers", 2.0,
                  "count"),
    )
}


def parse_fault(text: str) -> tuple[str, float | None]:
    """'hallucination:0.2' -> ('hallucination', 0.2); 'primary_outage' -> ('primary_outage', None).

    Raises ValueError with a one-line message (and a did-you-mean) for a bad name or value.
    """
    name, sep, raw = str(text).strip().partition(":")
    name = name.strip()
    return name, _check(name, raw.strip() if sep else None)


def _check(name: str, raw: Any) -> float | None:
    info = FAULTS.get(name)
    if info is None:
        hint = difflib.get_close_matches(name, list(FAULTS), n=1)
        more = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ValueError(f"unknown sim fault {name!r} (expected one of: {', '.join(FAULTS)}{more})")
    if raw is None or raw == "":
        return None
    if not info.unit:
        raise ValueError(f"sim fault {name!r} takes no value, got {raw!r}")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"sim fault {name!r} takes a number ({_expects(info)}), got {raw!r}") from None
    if info.unit == "rate" and not 0.0 <= value <= 1.0:
        raise ValueError(f"sim fault {name!r} takes a rate between 0 and 1, got {raw!r}")
    if info.unit == "ms" and value < 0:
        raise ValueError(f"sim fault {name!r} takes milliseconds >= 0, got {raw!r}")
    if info.unit == "count" and (value < 1 or value != int(value)):
        raise ValueError(f"sim fault {name!r} takes a whole number >= 1, got {raw!r}")
    return value


def _expects(info: FaultInfo) -> str:
    return {"rate": "a rate between 0 and 1", "count": "a whole number >= 1"}.get(info.unit, "milliseconds")


def parse_faults(items: list[Any]) -> list[str]:
    """Suite `faults:` entries (strings or mappings) -> canonical 'name' / 'name:value' strings."""
    out: list[str] = []
    for item in items:
        if isinstance(item, dict):
            pairs = [(str(k), v) for k, v in item.items()]
        elif isinstance(item, str):
            name, _, raw = item.partition(":")
            pairs = [(name.strip(), raw.strip() or None)]
        else:
            raise ValueError(f"a fault is a name, 'name:value' or {{name: value}}, got {item!r}")
        for name, raw in pairs:
            value = _check(name, raw)
            out.append(name if value is None else f"{name}:{value:g}")
    return out


@dataclass(frozen=True)
class Faults:
    """The active faults with their values resolved (0 or False when off)."""

    latency_ms: float = 0.0
    primary_outage: float = 0.0
    full_outage: float = 0.0
    rate_limit: float = 0.0
    server_error: float = 0.0
    model_update: bool = False
    hallucination: float = 0.0
    slow_first_audio_ms: float = 0.0
    ignores_barge_in: bool = False
    dead_air_ms: float = 0.0
    drops_stream: int = 0

    @classmethod
    def from_strings(cls, items: list[str]) -> "Faults":
        values: dict[str, Any] = {}
        for item in items:
            name, value = parse_fault(item)
            info = FAULTS[name]
            if not info.unit:
                values[name] = True
            elif info.unit == "ms":
                values[f"{name}_ms"] = value if value is not None else info.default
            elif info.unit == "count":
                values[name] = int(value if value is not None else info.default or 1)
            else:
                values[name] = value if value is not None else info.default
        return cls(**values)
