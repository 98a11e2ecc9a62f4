"""Turn a pydantic ValidationError into one-line errors at the YAML position of the mistake.

Pydantic reports *where* in the data a value is wrong as a `loc` tuple such as
`("cases", 2, "turns", 0, "dtmf")`. We walk the same path through the positioned YAML
data (dagster's pydantic_yaml approach) to find the line and column, and we reword
pydantic's messages into what was found and what was expected, with "did you mean" for a
misspelt key.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Any, Callable, Iterable

from pydantic import BaseModel, ValidationError

from ..errors import ConfigError, Position
from ..spec import CASE_ID_PATTERN, CHECK_MODIFIERS
from ._read import PosDict, PosList, describe_value

PositionOf = Callable[[tuple], "Position | None"]

# What a pattern means, in words, for the patterns our models use.
_PATTERN_WORDS = {
    CASE_ID_PATTERN: "a case id: letters, digits and _ . : - , starting with a letter or digit",
    r"^[0-9*#A-D]+$": "keypad keys: digits 0-9, *, # and A-D",
    r"^[a-z][a-z0-9_\-]*$": "lowercase letters, digits, _ and -, starting with a letter",
    r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$": "letters, digits and _ . -, starting with a letter or digit",
}

_EXPECTED_TYPE = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "text",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dataclass_type": "a mapping",
    "none_required": "nothing",
}

_RANGE = {
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", "greater than"),
    "less_than_equal": ("le", "at most"),
    "less_than": ("lt", "less than"),
}


class PositionFinder:
    """Finds the position of a pydantic `loc` in positioned YAML data.

    Called with a loc it gives the position of that value; `key(loc)` gives the position
    of the key that names it, `container(loc)` that of the nearest mapping or list that
    exists. `secret_locs` holds the locs whose values came from the environment: their
    values are never quoted in a message.
    """

    def __init__(self, raw: Any, path: str | None = None, secret_locs: Iterable[tuple] = ()):
        self.raw = raw
        self.path = path
        self.secret_locs = {tuple(loc) for loc in secret_locs}

    def _walk(self, loc: tuple) -> tuple[Position | None, Position | None, Position | None, bool]:
        """Follow `loc`; return (key position, value position, container position, found all)."""
        node = self.raw
        container = getattr(node, "pos", None)
        key_pos: Position | None = None
        value_pos: Position | None = container
        steps = list(loc)
        for i, step in enumerate(steps):
            if isinstance(node, dict) and _has_key(node, step):
                container = getattr(node, "pos", None) or container
                key_pos = getattr(node, "key_pos", {}).get(step)
                value_pos = getattr(node, "value_pos", {}).get(step, key_pos)
                node = node[step]
            elif isinstance(node, list) and isinstance(step, int) and not isinstance(step, bool) and 0 <= step < len(node):
                container = getattr(node, "pos", None) or container
                items = getattr(node, "item_pos", [])
                key_pos = None
                value_pos = items[step] if step < len(items) else container
                node = node[step]
            elif isinstance(step, str) and not (isinstance(node, dict) and i == len(steps) - 1):
                # a step pydantic adds that the data does not have, such as a union branch
                # name ("str", "function-after[...]"): skip it and keep walking
                continue
            else:
                own = getattr(node, "pos", None) or value_pos
                return None, own, own, False
        if isinstance(node, (PosDict, PosList)) and node.pos is not None:
            container = node.pos
        return key_pos, value_pos, container, True

    def __call__(self, loc: tuple) -> Position | None:
        return self._walk(tuple(loc))[1] or self._fallback()

    def key(self, loc: tuple) -> Position | None:
        key_pos, value_pos, _, _ = self._walk(tuple(loc))
        return key_pos or value_pos or self._fallback()

    def container(self, loc: tuple) -> Position | None:
        """Position of the mapping at `loc` (or of the deepest one on the way there)."""
        return self._walk(tuple(loc))[2] or self._fallback()

    def is_secret(self, loc: tuple) -> bool:
        return tuple(loc) in self.secret_locs

    def _fallback(self) -> Position | None:
        return Position(self.path, 1, 1) if self.path else None


def _has_key(node: dict, step: Any) -> bool:
    try:
        return step in node
    except TypeError:
        return False


def validation_errors_to_config_errors(
    e: ValidationError,
    position_of: PositionOf | None,
    prefix: tuple = (),
    model: type[BaseModel] | None = None,
) -> list[ConfigError]:
    """Every error of `e` as a one-line ConfigError, sorted by position, duplicates dropped.

    `prefix` is prepended to each loc before looking up its position (a target's config is
    validated on its own, but sits under `target:` in the suite file); `model` is the model
    that raised `e`, used to list the keys a mapping accepts.
    """
    out: list[ConfigError] = []
    seen: set[str] = set()
    for err in e.errors(include_url=False):
        ce = _one(err, position_of, tuple(prefix), model)
        if ce.line() not in seen:
            seen.add(ce.line())
            out.append(ce)
    out.sort(key=lambda c: (c.position.line, c.position.col) if c.position else (0, 0))
    return out


def validation_error_to_config_error(
    e: ValidationError,
    position_of: PositionOf | None,
    prefix: tuple = (),
    model: type[BaseModel] | None = None,
) -> ConfigError:
    """The first (earliest in the file) error of `e` as a one-line ConfigError."""
    errors = validation_errors_to_config_errors(e, position_of, prefix, model)
    return errors[0] if errors else ConfigError(str(e).splitlines()[0])


def _find(position_of: PositionOf | None, how: str, loc: tuple) -> Position | None:
    if position_of is None:
        return None
    finder = getattr(position_of, how, None) if how != "value" else None
    if callable(finder):
        return finder(loc)
    if how == "container":  # a plain callable: the mapping is one step up
        return position_of(loc[:-1]) if loc else position_of(loc)
    return position_of(loc)


def _one(err: dict, position_of: PositionOf | None, prefix: tuple, model: type[BaseModel] | None) -> ConfigError:
    kind = err["type"]
    loc = tuple(err["loc"])
    full = prefix + loc
    value = err.get("input")
    ctx = err.get("ctx") or {}
    label = _label(loc)
    lead = f"{label}: " if label else ""
    secret = bool(getattr(position_of, "is_secret", lambda _l: False)(full))
    found = "a value from the environment" if secret else describe_value(value)

    if kind == "extra_forbidden":
        key = loc[-1] if loc else "?"
        allowed = _allowed_keys(model, loc[:-1]) if model else []
        return ConfigError(f"unknown key {key!r}{_expected_keys(str(key), allowed)}", _find(position_of, "key", full))
    if kind == "missing":
        key = loc[-1] if loc else "?"
        return ConfigError(f"missing required key {key!r}", _find(position_of, "container", full))
    pos = _find(position_of, "value", full)
    if kind in _EXPECTED_TYPE:
        hint = ""
        if kind == "string_type" and isinstance(value, (int, float)) and not secret:
            hint = f' (put it in quotes: "{value}")'
        return ConfigError(f"{lead}expected {_EXPECTED_TYPE[kind]}, got {found}{hint}", pos)
    if kind in _RANGE:
        key, words = _RANGE[kind]
        return ConfigError(f"{lead}{found} is out of range (expected {words} {ctx.get(key)})", pos)
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        words = _PATTERN_WORDS.get(pattern, f"text matching {pattern}")
        return ConfigError(f"{lead}{found} is not valid (expected {words})", pos)
    if kind in ("too_short", "string_too_short"):
        n = ctx.get("min_length", 1)
        what = "item" if kind == "too_short" else "character"
        return ConfigError(f"{label or 'value'} is empty (expected at least {n} {what}{'s' if n != 1 else ''})", pos)
    if kind in ("too_long", "string_too_long"):
        n = ctx.get("max_length")
        what = "items" if kind == "too_long" else "characters"
        return ConfigError(f"{label or 'value'} is too long (expected at most {n} {what})", pos)
    if kind in ("literal_error", "enum"):
        expected = str(ctx.get("expected", "one of the allowed values"))
        choices = re.findall(r"'([^']*)'", expected)
        close = difflib.get_close_matches(str(value), choices, n=1) if isinstance(value, str) else []
        more = f"; did you mean {close[0]!r}?" if close else ""
        return ConfigError(f"{lead}got {found} (expected {expected}{more})", pos)
    if kind in ("value_error", "assertion_error"):
        error = ctx.get("error")
        text = str(error) if error is not None else _strip_prefix(err["msg"])
        return ConfigError(_check_modifier_hint(text), pos)
    return ConfigError(f"{lead}{_lower_first(err['msg'])}, got {found}", pos)


def _label(loc: tuple) -> str:
    """The last named key of a loc plus the list indexes after it: 'repeat', 'expect[2]'."""
    parts: list[str] = []
    for step in reversed(loc):
        if isinstance(step, int):
            parts.insert(0, f"[{step}]")
            continue
        parts.insert(0, str(step))
        break
    return "".join(parts)


def _strip_prefix(msg: str) -> str:
    for p in ("Value error, ", "Assertion failed, "):
        if msg.startswith(p):
            return msg[len(p):]
    return msg


def _lower_first(msg: str) -> str:
    return msg[:1].lower() + msg[1:] if msg else msg


def _check_modifier_hint(text: str) -> str:
    """A misspelt `weight`/`negate`/`label` looks like a second check name: say so."""
    marker = "one check per list item, found "
    if not text.startswith(marker) or ": " not in text:
        return text
    names = text.split(": ", 1)[1].split(", ")
    for name in names:
        close = difflib.get_close_matches(name, CHECK_MODIFIERS, n=1)
        if close:
            return f"{text} (did you mean {close[0]!r} instead of {name!r}?)"
    return text


def _expected_keys(key: str, allowed: list[str]) -> str:
    if not allowed:
        return ""
    close = difflib.get_close_matches(key, allowed, n=1)
    more = f"; did you mean {close[0]!r}?" if close else ""
    return f" (expected one of: {', '.join(allowed)}{more})"


def _allowed_keys(model: type[BaseModel] | None, loc: tuple) -> list[str]:
    target = _model_at(model, loc)
    if target is None:
        return []
    keys = []
    for name, field in target.model_fields.items():
        if field.exclude:  # positions kept by the loader, not something a user writes
            continue
        keys.append(field.alias or name)
    return keys


def _model_at(model: Any, loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at `loc` inside `model`, if any."""
    t: Any = model
    for step in loc:
        t = _unwrap(t)
        if isinstance(t, type) and issubclass(t, BaseModel):
            field = next(
                (f for n, f in t.model_fields.items() if step in (n, f.alias)),
                None,
            )
            if field is None:
                if isinstance(step, str) and step not in t.model_fields:
                    continue  # a union branch name
                return None
            t = field.annotation
            continue
        origin = typing.get_origin(t)
        args = typing.get_args(t)
        if origin in (list, tuple, set, frozenset) and args:
            if isinstance(step, int):
                t = args[0]
            continue
        if origin is dict and len(args) == 2:
            t = args[1]
            continue
        return None
    t = _unwrap(t)
    return t if isinstance(t, type) and issubclass(t, BaseModel) else None


def _unwrap(t: Any) -> Any:
    """Optional[X] / X | None / Annotated[X, ...] -> X (the first non-None branch that is a container)."""
    origin = typing.get_origin(t)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(t)[0])
    if origin in (typing.Union, types.UnionType):
        branches = [a for a in typing.get_args(t) if a is not type(None)]
        for b in branches:
            b = _unwrap(b)
            if (isinstance(b, type) and issubclass(b, BaseModel)) or typing.get_origin(b) in (list, dict):
                return b
        return branches[0] if branches else t
    return t
