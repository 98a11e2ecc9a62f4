"""`${NAME}` and `${NAME:-default}` in suite files, expanded before validation.

Expansion runs on the positioned YAML data, so a missing variable is reported at the line
and column of the value that uses it. `$${` writes a literal `${`. Golden files are never
expanded: their text is what the caller says and what the agent must answer.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from ..errors import ConfigError, Position
from ..secrets import is_secret_field, register
from ..yamlio import PosDict, PosList

_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def where(loc: tuple) -> str:
    """A loc as a user reads it: ('target', 'api_key') -> 'target.api_key', lists as [i]."""
    out = ""
    for step in loc:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


def expand_env(
    raw: Any, env: Mapping[str, str], path: str
) -> tuple[list[ConfigError], set[tuple]]:
    """Expand references in every string value of `raw`, in place.

    Returns the errors found (each at its value's position) and the locs of the values that
    used the environment, so error messages can avoid quoting them (they may be secrets).
    """
    errors: list[ConfigError] = []
    secret_locs: set[tuple] = set()

    def visit(container: Any, loc: tuple) -> None:
        if isinstance(container, dict):
            items = [(k, container.value_pos.get(k) if isinstance(container, PosDict) else None) for k in container]
        elif isinstance(container, list):
            positions = container.item_pos if isinstance(container, PosList) else []
            items = [(i, positions[i] if i < len(positions) else None) for i in range(len(container))]
        else:
            return
        for key, pos in items:
            value = container[key]
            here = loc + (key,)
            if isinstance(value, str) and "${" in value:
                expanded, used = _expand(value, env, here, pos or Position(path, 1, 1), errors)
                container[key] = expanded
                if used:
                    secret_locs.add(here)
                    if is_secret_field(here):  # masked in everything the harness writes or sends
                        register(expanded, url_path=any("webhook" in str(step).lower() for step in here))
            elif isinstance(value, (dict, list)):
                visit(value, here)

    visit(raw, ())
    return errors, secret_locs


def _expand(text: str, env: Mapping[str, str], loc: tuple, pos: Position, errors: list[ConfigError]) -> tuple[str, bool]:
    out: list[str] = []
    used = False
    i = 0
    while True:
        j = text.find("${", i)
        if j < 0:
            out.append(text[i:])
            break
        if j > i and text[j - 1] == "$":  # "$${" is a literal "${"
            out.append(text[i : j - 1] + "${")
            i = j + 2
            continue
        m = _REF.match(text, j)
        if m is None:
            errors.append(ConfigError(
                f"malformed environment reference in {where(loc)} (expected ${{NAME}} or ${{NAME:-default}})", pos
            ))
            return text, False
        out.append(text[i:j])
        name, default = m.group(1), m.group(2)
        value = env.get(name)
        used = True
        if value is None or (value == "" and default is not None):
            if default is None:
                errors.append(ConfigError(f"environment variable {name} is not set (used in {where(loc)})", pos))
                value = ""
            else:
                value = default
        out.append(value)
        i = m.end()
    return "".join(out), used
