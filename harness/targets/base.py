"""The target surface: open a conversation for a case, send it caller turns, close it.

Like httpx's transports, a target has one real job. The runner drives the call (it plays
the caller, times the turns, records the transcript); the target only answers. Every
request a target makes to a model or service goes through `CallContext.request`, which
applies the suite's rate limit, timeout, retries and circuit breaker, so each target stays
small and they all behave the same under failure.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from typing import Any, Awaitable, Callable, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import ConfigError, Position
from ..records import AgentReply, Outcome
from ..spec import CaseSpec, Limits

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


class Target(ABC):
    kind: ClassVar[str]
    config_model: ClassVar[type[TargetConfig]]
    description: ClassVar[str] = ""
    root: str = "."  # the project root; relative paths in the config resolve against it

    def __init__(self, config: TargetConfig):
        self.config = config

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


# The built-in targets by kind and the module that registers each. A run imports only the
# one its suite uses: the http target alone pulls in jinja2 and jsonpath, the sim target
# its whole phone agent.
BUILTIN_MODULES = {"openai": ".openai", "http": ".http", "sim": ".sim"}


def registry() -> dict[str, type[Target]]:
    """Every target, built-in ones included (for `harness list targets` and error hints)."""
    from . import _builtin  # noqa: F401  (registers the built-in targets)

    return dict(_REGISTRY)


def _lookup(kind: Any) -> type[Target] | None:
    """The target class for `kind`, importing only its own module when it is a built-in one."""
    if not isinstance(kind, str):
        return None
    if kind not in _REGISTRY and kind in BUILTIN_MODULES:
        import importlib

        importlib.import_module(BUILTIN_MODULES[kind], __package__)
    return _REGISTRY.get(kind)


def create(spec: dict[str, Any], position_of: Callable[[tuple], Position | None] | None = None) -> Target:
    """Build a target from a suite's `target:` mapping; errors carry the YAML position."""
    kind = spec.get("kind")
    cls = _lookup(kind)
    if cls is None:
        reg = registry()
        hint = difflib.get_close_matches(str(kind), list(reg), n=1)
        more = f"; did you mean {hint[0]!r}?" if hint else ""
        pos = position_of(("target", "kind")) if position_of else None
        raise ConfigError(f"unknown target kind {kind!r} (expected one of: {', '.join(sorted(reg))}{more})", pos)
    try:
        config = cls.config_model.model_validate(dict(spec))
    except ValidationError as e:
        from ..loading import validation_error_to_config_error

        raise validation_error_to_config_error(e, position_of, prefix=("target",), model=cls.config_model) from None
    return cls(config)
