"""The check registry and the one dispatcher every check goes through.

A check is a small factory registered by name (inspect_ai's scorer shape): YAML
`{contains: {value: "19時", ignore_case: false}}` becomes `contains(value="19時",
ignore_case=False)`, which returns the function that scores one subject. The factory's
signature is validated by pydantic, so a wrong argument is a configuration error with a
position, found before anything runs. Negation, weights and error capture live here,
once, not in each check (promptfoo's dispatcher shape).
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Awaitable, Callable, Literal, Union

from pydantic import ValidationError, validate_call

from ..errors import ConfigError
from ..records import CheckResult, Transcript, Turn
from ..spec import CaseSpec, CheckSpec

Scope = Literal["turn", "call", "any"]


@dataclass(slots=True)
class Score:
    """What a check function returns before the dispatcher applies negation and weight."""

    passed: bool
    reason: str = ""
    score: float | None = None  # 0..1; defaults to 1.0 or 0.0 from `passed`
    skipped: bool = False  # not run by policy (judge budget spent); never negated


@dataclass(slots=True)
class Subject:
    """What a check looks at.

    For a turn-level check, `text` is that turn's reply and `turn` is set. For a call-level
    check (the case's own `expect`, `outcome`, `budgets`), `text` is every agent reply of
    the call joined by newlines and `turn` is None.
    """

    text: str
    transcript: Transcript
    case: CaseSpec | None = None
    turn: Turn | None = None
    extras: dict[str, Any] = field(default_factory=dict)  # services lent by the runner (judge client, …)


CheckFn = Callable[[Subject], Union[Score, Awaitable[Score]]]


@dataclass
class CheckInfo:
    name: str
    factory: Callable[..., CheckFn]
    description: str
    primary: str | None  # the parameter a scalar YAML value fills
    scope: Scope = "any"
    needs_llm: bool = False
    mapping_primary: bool = False  # a mapping value fills `primary` instead of being kwargs

    @cached_property
    def params(self) -> dict[str, inspect.Parameter]:
        # inspect.signature costs ~50 µs; a golden set compiles thousands of checks
        return dict(inspect.signature(self.factory).parameters)


_REGISTRY: dict[str, CheckInfo] = {}
_BUILTINS_LOADED = False
# (name, scope, argument) → (check function, plain args): identical expectations in
# thousands of cases are validated and built once. Only checks that need no LLM are kept
# here; their functions are pure (they read only the subject).
_COMPILED: dict[tuple, tuple[CheckInfo, CheckFn, dict[str, Any]]] = {}
_COMPILED_MAX = 10_000


def check(
    name: str,
    *,
    primary: str | None = None,
    scope: Scope = "any",
    needs_llm: bool = False,
    mapping_primary: bool = False,
) -> Callable[[Callable[..., CheckFn]], Callable[..., CheckFn]]:
    """Register a check factory under `name`. Its docstring's first line is its help text."""

    def deco(factory: Callable[..., CheckFn]) -> Callable[..., CheckFn]:
        doc = (inspect.getdoc(factory) or "").strip().splitlines()
        _REGISTRY[name] = CheckInfo(
            name=name,
            factory=validate_call(factory),
            description=doc[0] if doc else "",
            primary=primary,
            scope=scope,
            needs_llm=needs_llm,
            mapping_primary=mapping_primary,
        )
        return factory

    return deco


def registry() -> dict[str, CheckInfo]:
    return dict(_registry())


def _registry() -> dict[str, CheckInfo]:
    """The live registry, built-in checks loaded (not a copy: compile_check runs per check)."""
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        from . import _builtin  # noqa: F401  (registers the built-in checks)

        _BUILTINS_LOADED = True
    return _REGISTRY


@dataclass
class CompiledCheck:
    info: CheckInfo
    spec: CheckSpec
    fn: CheckFn
    args: dict[str, Any]

    async def run(self, subject: Subject) -> CheckResult:
        turn = subject.turn.index if subject.turn is not None else None
        try:
            out = self.fn(subject)
            if out.__class__ is not Score and inspect.isawaitable(out):  # exact checks answer at once
                out = await out
        except Exception as e:  # a check that cannot run is an error result, never a crash
            return CheckResult(
                name=self.display_name, passed=False, score=0.0, reason=f"check could not run: {e}",
                args=self.args, turn=turn, weight=self.spec.weight, error=True,
            )
        if out.skipped:
            return CheckResult(
                name=self.display_name, passed=False, score=0.0, reason=out.reason,
                args=self.args, turn=turn, weight=self.spec.weight, skipped=True,
            )
        passed, reason = out.passed, out.reason
        score = out.score if out.score is not None else (1.0 if passed else 0.0)
        if self.spec.negate:
            passed, score = not passed, 1.0 - score
            reason = f"not: {reason}" if reason else "negated check"
        return CheckResult(
            name=self.display_name, passed=passed, score=score, reason=reason,
            args=self.args, turn=turn, weight=self.spec.weight,
        )

    @property
    def display_name(self) -> str:
        base = self.spec.label or self.info.name
        return f"not {base}" if self.spec.negate and not self.spec.label else base


def compile_check(spec: CheckSpec, *, scope: Scope) -> CompiledCheck:
    """Turn one YAML expectation into a runnable check, or raise a positioned ConfigError."""
    reg = _registry()
    info = reg.get(spec.name)
    if info is None:
        hint = difflib.get_close_matches(spec.name, list(reg), n=1)
        more = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ConfigError(
            f"unknown check {spec.name!r} (expected one of: {', '.join(sorted(reg))}{more})",
            spec.name_pos or spec.pos,
        )
    if info.scope != "any" and info.scope != scope:
        where = "a turn's expect" if scope == "turn" else "the case's expect"
        raise ConfigError(f"check {spec.name!r} cannot be used in {where} (it checks a whole {info.scope})",
                          spec.name_pos or spec.pos)
    key = None if info.needs_llm else _cache_key(spec.name, spec.arg)
    if key is not None:
        hit = _COMPILED.get(key)
        if hit is not None and hit[0] is info:  # a check registered again under the name starts afresh
            return CompiledCheck(info=info, spec=spec, fn=hit[1], args=hit[2])
    fn, args = _build(info, spec)
    if key is not None and len(_COMPILED) < _COMPILED_MAX:
        _COMPILED[key] = (info, fn, args)
    return CompiledCheck(info=info, spec=spec, fn=fn, args=args)


def _cache_key(name: str, arg: Any) -> tuple | None:
    """A hashable, type-exact form of a check's argument (`1`, `1.0` and `true` differ), or None."""
    try:
        return (name, _freeze(arg))
    except TypeError:
        return None


def _freeze(v: Any) -> Any:
    t = type(v)
    if t is dict:
        return ("d", tuple((_freeze(k), _freeze(x)) for k, x in v.items()))
    if t is list:
        return ("l", tuple(_freeze(x) for x in v))
    if t in (str, int, float, bool) or v is None:
        return (t.__name__, v)
    if isinstance(v, (dict, list)):  # PosDict, PosList: their positions do not change the check
        return _freeze(dict(v) if isinstance(v, dict) else list(v))
    raise TypeError(f"not cacheable: {t.__name__}")


def _build(info: CheckInfo, spec: CheckSpec) -> tuple[CheckFn, dict[str, Any]]:
    """Validate a check's settings and call its factory; errors carry the YAML position."""
    if spec.arg is None:
        kwargs: dict[str, Any] = {}
    elif isinstance(spec.arg, dict) and not info.mapping_primary:
        kwargs = dict(spec.arg)
    elif info.primary is None:
        raise ConfigError(f"check {spec.name!r} takes its settings as a mapping, got {type(spec.arg).__name__}",
                          spec.pos)
    else:
        kwargs = {info.primary: spec.arg}
    params = info.params
    for key in kwargs:
        if key not in params:
            hint = difflib.get_close_matches(str(key), list(params), n=1)
            more = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ConfigError(
                f"check {spec.name!r} has no setting {key!r} (expected: {', '.join(params) or 'none'}{more})",
                spec.pos,
            )
    try:
        fn = info.factory(**kwargs)
    except ValidationError as e:
        err = e.errors()[0]
        # keep the setting's name and list indexes; drop union branch names pydantic adds
        loc = ".".join(str(p) for i, p in enumerate(err["loc"]) if i == 0 or isinstance(p, int))
        raise ConfigError(f"check {spec.name!r}: {loc}: {err['msg']}", spec.pos) from None
    except (ValueError, TypeError) as e:
        raise ConfigError(f"check {spec.name!r}: {e}", spec.pos) from None
    return fn, {k: _plain(v) for k, v in kwargs.items()}


def _plain(v: Any) -> Any:
    """The check's arguments as plain JSON values (the loader's positioned containers and
    any str/int subclasses become the built-in types), so they store and compare cleanly."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if v is None:
        return None
    for plain in (bool, int, float, str):  # bool first: it is an int too
        if isinstance(v, plain):
            return plain(v)
    return str(v)
