"""The target surface: open a conversation for a case, send it caller turns, close it.

Like httpx's transports, a target has one real job. The runner drives the call (it plays
the caller, times the turns, records the transcript); the target only answers. Every
request a target makes to a model or service goes through `CallContext.request`, which
applies the suite's rate limit, timeout, retries and circuit breaker, so each target stays
small and they all behave the same under failure.

A target is a plugin: one module (a package for the embedded agent) holding its settings
model, its own validation (the loader hands it the raw `target:` mapping and a position
lookup, so its mistakes are reported at `file:line:col`), `open` / `Conversation.reply` /
`Conversation.close`, the case-level `faults:` it understands, and the command-line
options it adds to `harness run`. Adding one is that module and one entry in
`BUILTIN_MODULES` (or `register` from anywhere); the loader, the spec and the pipeline
only speak to this surface. A hook every target may have later (an input fingerprint, …)
is one more method here with a default.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, ClassVar, Mapping, Sequence, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import ConfigError, Position
from ..records import AgentReply, Outcome
from ..spec import CaseSpec, Limits
from ..yamlio import PositionOf, validation_error_to_config_error, validation_errors_to_config_errors

T = TypeVar("T")


class TargetConfig(BaseModel):
    """Base of every target's settings model (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    limits: Limits = Limits()


class CallContext(ABC):
    """What the runner lends a conversation: guarded requests and the case being played."""

    case: CaseSpec
    repeat_index: int

    @abstractmethod
    async def request(self, fn: Callable[[], Awaitable[T]], *, what: str = "request") -> T:
        """Run one model/service request under the rate limit, timeout, retries and breaker.

        `fn` raises `InfraError` for transient failures; it is called again on retry, so it
        must build a fresh request each time.
        """


class Conversation(ABC):
    """One call in progress."""

    async def greet(self) -> AgentReply | None:
        """The agent's opening line, if it speaks first (phone agents usually do)."""
        return None

    @abstractmethod
    async def reply(self, caller: str, *, kind: str = "say") -> AgentReply:
        """The agent's answer to one caller turn (kind: say, silence, dtmf)."""

    async def close(self) -> Outcome:
        """End the call and report its end state (intent, slots, transfer, side effects)."""
        return Outcome()


@dataclass(frozen=True)
class TargetOption:
    """A `harness run` option a target adds (the embedded agent's `--sim-fault`).

    Repeatable and string-valued; the values reach the target's `with_cli_options` before
    its settings are validated, so a bad value is reported like a bad setting.
    """

    flag: str  # "--sim-fault"
    metavar: str
    help: str


# A fault written in a case, as text ("name" or "name:value"), with where it was written.
WrittenFault = tuple[str, "Position | None"]


class Target(ABC):
    kind: ClassVar[str]
    config_model: ClassVar[type[TargetConfig]]
    description: ClassVar[str] = ""
    cli_options: ClassVar[tuple[TargetOption, ...]] = ()
    root: str = "."  # the project root; relative paths in the config resolve against it

    def __init__(self, config: TargetConfig):
        self.config = config

    # --- settings: validated by the target itself, at the suite's positions ---------------

    @classmethod
    def config_errors(cls, raw: Mapping[str, Any], position_of: PositionOf | None = None) -> list[ConfigError]:
        """Every mistake in the suite's `target:` mapping, each at its file:line:col."""
        try:
            cls.config_model.model_validate(dict(raw))
        except ValidationError as e:
            return validation_errors_to_config_errors(e, position_of, prefix=("target",), model=cls.config_model)
        return []

    @classmethod
    def from_config(cls, raw: Mapping[str, Any], position_of: PositionOf | None = None) -> "Target":
        """The target built from the suite's `target:` mapping; its first mistake raises ConfigError."""
        try:
            config = cls.config_model.model_validate(dict(raw))
        except ValidationError as e:
            raise validation_error_to_config_error(e, position_of, prefix=("target",), model=cls.config_model) from None
        return cls(config)

    @classmethod
    def with_cli_options(cls, raw: Mapping[str, Any], given: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        """The `target:` mapping with this target's command-line options (`cli_options`) applied."""
        return dict(raw)

    @classmethod
    def fault_errors(cls, written: Sequence[WrittenFault]) -> list[ConfigError] | None:
        """The mistakes in a case's `faults:` (chaos cases), or None if this target injects no faults."""
        return None

    # --- the calls ----------------------------------------------------------------------------

    @property
    def limits(self) -> Limits:
        return self.config.limits

    def describe(self) -> dict[str, Any]:
        """What the store records about this target (never secrets)."""
        return {"kind": self.kind}

    def inputs(self) -> dict[str, Any]:
        """Our side of every call, hashed into each result's input fingerprint (with the case's
        own definition): what reaches the model or service — prompt text, model name and
        parameters, request template — never secrets, and nothing the provider decides
        (where it is served, latency, outages, the model's own version)."""
        return self.describe()

    @abstractmethod
    async def open(self, case: CaseSpec, ctx: CallContext) -> Conversation: ...

    async def aclose(self) -> None:
        return None


_REGISTRY: dict[str, type[Target]] = {}


def register(cls: type[Target]) -> type[Target]:
    """Class decorator: make a target available to suites by its `kind`."""
    _REGISTRY[cls.kind] = cls
    return cls


def unregister(kind: str) -> None:
    """Forget a target registered by `register` (a test's own target, once the test is done)."""
    _REGISTRY.pop(kind, None)


# The built-in targets by kind and the module that registers each. A run imports only the
# one its suite uses: the http target alone pulls in jinja2 and jsonpath, the sim target
# its whole phone agent.
BUILTIN_MODULES = {"openai": ".openai", "http": ".http", "sim": ".sim", "voice": ".voice"}


def registry() -> dict[str, type[Target]]:
    """Every target, built-in ones included (for `harness list targets` and error hints)."""
    import importlib

    for module in BUILTIN_MODULES.values():
        importlib.import_module(module, __package__)  # registers it
    return dict(_REGISTRY)


def lookup(kind: Any) -> type[Target] | None:
    """The target class for `kind`, importing only its own module when it is a built-in one."""
    if not isinstance(kind, str):
        return None
    if kind not in _REGISTRY and kind in BUILTIN_MODULES:
        import importlib

        importlib.import_module(BUILTIN_MODULES[kind], __package__)
    return _REGISTRY.get(kind)


def target_class(raw: Mapping[str, Any], position_of: PositionOf | None = None) -> type[Target]:
    """The class of the suite's target; an unknown kind is an error at `target.kind`."""
    kind = raw.get("kind")
    cls = lookup(kind)
    if cls is None:
        reg = registry()
        hint = difflib.get_close_matches(str(kind), list(reg), n=1)
        more = f"; did you mean {hint[0]!r}?" if hint else ""
        pos = position_of(("target", "kind")) if position_of else None
        raise ConfigError(f"unknown target kind {kind!r} (expected one of: {', '.join(sorted(reg))}{more})", pos)
    return cls


def create(spec: Mapping[str, Any], position_of: PositionOf | None = None) -> Target:
    """Build a target from a suite's `target:` mapping; errors carry the YAML position."""
    return target_class(spec, position_of).from_config(spec, position_of)


def cli_options() -> list[tuple[str, TargetOption]]:
    """Every target's command-line options, with the kind that takes each (imports every target)."""
    return [(kind, opt) for kind, cls in sorted(registry().items()) for opt in cls.cli_options]


def with_cli_options(raw: Mapping[str, Any], given: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The suite's `target:` mapping with the command line's target options applied.

    An option of another target is an error naming the target it belongs to.
    """
    given = {flag: tuple(values) for flag, values in given.items() if values}
    if not given:
        return dict(raw)
    cls = lookup(raw.get("kind"))
    own = {o.flag for o in cls.cli_options} if cls is not None else set()
    for flag in given:
        if flag in own:
            continue
        owners = [kind for kind, opt in cli_options() if opt.flag == flag]
        if owners:
            raise ConfigError(f"{flag} applies to the {' or '.join(owners)} target only "
                              f"(this suite's target is {raw.get('kind')!r})")
        raise ConfigError(f"no target takes the option {flag}")
    assert cls is not None
    return cls.with_cli_options(raw, given)


def fault_errors(written: Sequence[WrittenFault], kind: str | None = None) -> list[ConfigError]:
    """Check a case's `faults:` with the target that runs it.

    `kind` is the suite's target, when the case is read for a suite. A golden file read on
    its own, or for a target that injects no faults, is checked against the targets that
    do: a fault is fine if one of them takes it.
    """
    cls = lookup(kind)
    if cls is not None:
        own = cls.fault_errors(written)
        if own is not None:
            return own
    found: list[ConfigError] | None = None
    every = registry()
    order = [*(k for k in BUILTIN_MODULES if k in every), *sorted(k for k in every if k not in BUILTIN_MODULES)]
    for other in (every[k] for k in order):
        errors = other.fault_errors(written)
        if errors is None:
            continue
        if not errors:
            return []
        found = errors if found is None else found
    if found is None:
        return [ConfigError("faults: no target injects faults", written[0][1] if written else None)]
    return found
