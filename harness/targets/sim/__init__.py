"""The embedded reference phone agent (`kind: sim`): Sakura Restaurant, offline and deterministic.

A new user with no API key and no network runs the main job against this agent and gets
a real report. It fills reservation slots from the caller's words, cancels bookings,
answers questions from `knowledge.yaml` and transfers to a human when it must. Its fault
knobs (`faults:` in the suite, `--sim-fault` on the command line) reproduce the bad days
drift detection and infra classification exist for.

```yaml
target: {kind: sim, latency_ms: 30, jitter_ms: 10, seed: 7, faults: ["hallucination:0.2"]}
```

With `brain: llm` (and `base_url`, `model`, `api_key`) the same call flow reads the caller
and words its replies through a live OpenAI-compatible model instead of its rules
(`llm.py`); the booking book, knowledge and fault knobs stay as they are.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal, Mapping, Sequence

from pydantic import Field, SecretStr, field_validator, model_validator

from ...errors import ConfigError
from ...spec import CaseSpec
from ..base import CallContext, Conversation, Target, TargetConfig, TargetOption, WrittenFault, register
from .backend import parse_blocked
from .conversation import SimConversation
from ...httpclient import safe_endpoint
from .faults import FAULTS, Faults, parse_fault, parse_faults
from .llm import ModelSteps
from .routes import FALLBACK, PRIMARY, PRIMARY_UPDATED

__all__ = ["FAULTS", "Faults", "SimConfig", "SimTarget", "parse_fault", "parse_faults"]

DEFAULT_TODAY = date(2026, 11, 25)  # a Wednesday: "tomorrow" is open (Tuesdays are closed)


OWN_FAULTS = frozenset({"hallucination"})  # faults of the agent itself, not of its provider


class SimConfig(TargetConfig):
    """Settings of the simulated agent, from a suite's `target:` mapping."""

    kind: Literal["sim"] = "sim"
    latency_ms: float = Field(default=0.0, ge=0, description="latency of every turn, in ms")
    jitter_ms: float = Field(default=0.0, ge=0, description="random extra latency per turn, 0..jitter_ms")
    seed: int = Field(default=0, description="with the case id and repeat index, fixes every random draw")
    language: Literal["auto", "ja", "en"] = Field(
        default="auto", description="auto: the case's language, else the caller's first words")
    today: date = Field(default=DEFAULT_TODAY, description="the date 'today' and 'tomorrow' are read against")
    fully_booked: list[str] = Field(
        default_factory=lambda: ["fri 19:00", "sat 19:00"],
        description="seatings with no table left: 'sat 19:00' or '2026-11-28 19:00'")
    faults: list[str] = Field(
        default_factory=list,
        description=f"fault knobs, 'name', 'name:value' or {{name: value}}; names: {', '.join(FAULTS)}")

    brain: Literal["rules", "llm"] = Field(
        default="rules", description="rules: offline and deterministic; llm: a live model reads and words each turn")
    base_url: str | None = Field(default=None, description="brain: llm — the OpenAI-compatible API root")
    model: str | None = Field(default=None, description="brain: llm — the model name")
    api_key: SecretStr | None = Field(default=None, description="brain: llm — never written to reports or the store")
    temperature: float = Field(default=0.0, ge=0, le=2)
    headers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _llm_needs_a_model(self) -> "SimConfig":
        if self.brain == "llm" and (not self.base_url or not self.model):
            raise ValueError("brain: llm needs base_url and model (an OpenAI-compatible endpoint)")
        return self

    @field_validator("faults", mode="before")
    @classmethod
    def _faults(cls, v: Any) -> Any:
        if isinstance(v, (str, dict)):
            v = [v]
        if not isinstance(v, list):
            raise ValueError("expected a list of faults, e.g. [primary_outage, 'hallucination:0.2']")
        return parse_faults(v)

    @field_validator("fully_booked")
    @classmethod
    def _fully_booked(cls, v: list[str]) -> list[str]:
        for entry in v:
            parse_blocked(entry)
        return v


@register
class SimTarget(Target):
    kind = "sim"
    config_model = SimConfig
    description = "embedded reference phone agent (Sakura Restaurant): offline, deterministic, with fault knobs"
    config: SimConfig
    cli_options = (TargetOption(
        "--sim-fault", "FAULT", "Inject a fault into the embedded agent, e.g. model_update or hallucination:0.2."),)

    _steps: ModelSteps | None = None

    @classmethod
    def with_cli_options(cls, raw: Mapping[str, Any], given: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        """`--sim-fault name[:value]` adds to the suite's `faults:`; a bad one is an error naming the option."""
        faults = list(given.get("--sim-fault", ()))
        for f in faults:
            try:
                parse_fault(f)
            except ValueError as e:
                raise ConfigError(f"--sim-fault {f}: {e}") from None
        out = dict(raw)
        if faults:
            out["faults"] = list(raw.get("faults") or []) + faults
        return out

    @classmethod
    def fault_errors(cls, written: Sequence[WrittenFault]) -> list[ConfigError]:
        """A chaos case's `faults:` are this agent's fault knobs, each checked where it was written."""
        out = []
        for text, pos in written:
            try:
                parse_fault(text)
            except ValueError as e:
                out.append(ConfigError(f"faults: {e}", pos))
        return out

    def describe(self) -> dict[str, Any]:
        c = self.config
        f = Faults.from_strings(c.faults)
        route = FALLBACK if f.primary_outage >= 1 else PRIMARY_UPDATED if f.model_update else PRIMARY
        out = {"kind": self.kind, "model": route.model, "seed": c.seed, "latency_ms": c.latency_ms,
               "jitter_ms": c.jitter_ms, "language": c.language, "today": c.today.isoformat(),
               "faults": list(c.faults), "brain": c.brain}
        if c.brain == "llm":
            out.update(model=c.model, base_url=safe_endpoint(c.base_url or ""))
        return out

    def inputs(self) -> dict[str, Any]:
        """The embedded agent's own side: its version, settings and the faults that are its
        own bugs (hallucination); the provider's faults (a model update, outages, latency) are not."""
        from ... import __version__

        c = self.config
        ours = [f for f in c.faults if str(f).partition(":")[0].strip() in OWN_FAULTS]
        out = {"kind": self.kind, "agent": __version__, "language": c.language, "today": c.today.isoformat(),
               "fully_booked": list(c.fully_booked), "faults": ours, "brain": c.brain}
        if c.brain == "llm":
            out.update(model=c.model, temperature=c.temperature)
        return out

    def steps(self) -> ModelSteps | None:
        """The live-model steps (`brain: llm`), made once and shared by every call."""
        c = self.config
        if c.brain != "llm":
            return None
        if self._steps is None:
            self._steps = ModelSteps(c.base_url or "", c.model or "",
                                     api_key=c.api_key.get_secret_value() if c.api_key else None,
                                     temperature=c.temperature, timeout_s=c.limits.timeout_s, headers=c.headers,
                                     max_connections=c.limits.concurrency * 2)
        return self._steps

    async def open(self, case: CaseSpec, ctx: CallContext) -> Conversation:
        return SimConversation(self.config, case, ctx, steps=self.steps())

    async def aclose(self) -> None:
        if self._steps is not None:
            await self._steps.aclose()
            self._steps = None
