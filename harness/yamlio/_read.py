"""Read a YAML file into plain Python data that remembers where every value came from.

Mappings become `PosDict` and sequences `PosList`: ordinary dicts and lists with the
1-based positions of the mapping itself, of each key and of each value, so any later
error (pydantic's, a check's, a glob's) can point at `file:line:col`. Scalars stay plain
Python values; their positions live in the parent container.

The loader is YAML's safe loader with three deliberate changes, because golden files are
written by people who think in JSON-like terms:

* only `true`/`false` are booleans (`language: no` stays the string "no");
* `19:00` is a string, not the base-60 integer 1140, and dates stay strings;
* digit strings with a leading zero (`0120`, a phone number or keypad input) stay strings.

Duplicate keys in one mapping are an error instead of silently keeping the last value.
"""

from __future__ import annotations

import gc
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import yaml

from ..errors import ConfigError, Position

try:  # libyaml's parser is much faster; construction stays in Python either way
    _BaseLoader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _BaseLoader = yaml.SafeLoader

TAB_HINT = "tabs are not allowed for indentation; use spaces"


class PosDict(dict):
    """A mapping read from YAML, with the positions of itself, its keys and its values."""

    pos: Position | None
    key_pos: dict[Any, Position]
    value_pos: dict[Any, Position]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.pos = None
        self.key_pos = {}
        self.value_pos = {}


class PosList(list):
    """A sequence read from YAML, with the positions of itself and of each item."""

    pos: Position | None
    item_pos: list[Position]

    def __init__(self, *args: Any):
        super().__init__(*args)
        self.pos = None
        self.item_pos = []


def _yaml12_resolvers() -> dict[Any, list]:
    """YAML's default implicit types minus the surprising YAML 1.1 ones (see module doc)."""
    dropped = {
        "tag:yaml.org,2002:bool",
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:float",
        "tag:yaml.org,2002:timestamp",
        "tag:yaml.org,2002:value",
    }
    out: dict[Any, list] = {}
    for first, pairs in yaml.resolver.Resolver.yaml_implicit_resolvers.items():
        kept = [(tag, rx) for tag, rx in pairs if tag not in dropped]
        if kept:
            out[first] = kept
    return out


class PositionLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe YAML loader that builds `PosDict`/`PosList` and rejects duplicate keys."""

    yaml_implicit_resolvers = _yaml12_resolvers()
    path: str = "<string>"

    def _pos(self, mark: Any) -> Position:
        return Position(self.path, mark.line + 1, mark.column + 1)

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        """PyYAML's resolve, shortened: libyaml's composer calls it for every node.

        The same tags for this loader, which has no path resolvers and no wildcard implicit
        resolvers (the two cases PyYAML's version also looks at on every call).
        """
        if kind is yaml.ScalarNode:
            if implicit[0]:
                for tag, regexp in self.yaml_implicit_resolvers.get(value[:1], ()):
                    if regexp.match(value):
                        return tag
            return self.DEFAULT_SCALAR_TAG
        if kind is yaml.SequenceNode:
            return self.DEFAULT_SEQUENCE_TAG
        return self.DEFAULT_MAPPING_TAG if kind is yaml.MappingNode else None

    # Called around every node for path resolvers, which this loader has none of.
    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass


PositionLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
PositionLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+|0o[0-7_]+)$"),
    list("-+0123456789"),
)
PositionLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9_]+)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _construct_int(loader: PositionLoader, node: yaml.ScalarNode) -> int:
    text = loader.construct_scalar(node).replace("_", "")
    if text.startswith("0o"):
        return int(text[2:], 8)
    return int(text, 0) if text.startswith("0x") else int(text)


def _construct_map(loader: PositionLoader, node: yaml.MappingNode) -> Any:
    data = PosDict()
    data.pos = loader._pos(node.start_mark)
    yield data
    if not isinstance(node, yaml.MappingNode):  # pragma: no cover - the parser guarantees it
        return
    # Duplicates are looked for among the keys written here, before merge keys (<<) are
    # flattened in: a key that overrides a merged one is intended, a key written twice is not.
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:
            raise ConfigError(
                "a mapping key must be a plain value (expected text such as name:)", loader._pos(key_node.start_mark)
            ) from None
        if first is not None:
            raise ConfigError(
                f"duplicate key {key!r} (first defined at line {first.line + 1})", loader._pos(key_node.start_mark)
            )
        seen[key] = key_node.start_mark
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        data[key] = loader.construct_object(value_node, deep=False)
        data.key_pos[key] = loader._pos(key_node.start_mark)
        data.value_pos[key] = loader._pos(value_node.start_mark)


def _construct_seq(loader: PositionLoader, node: yaml.SequenceNode) -> Any:
    data = PosList()
    data.pos = loader._pos(node.start_mark)
    yield data
    for item in node.value:
        data.append(loader.construct_object(item, deep=False))
        data.item_pos.append(loader._pos(item.start_mark))


PositionLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
PositionLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
PositionLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def decode_utf8(data: bytes, path: str) -> str:
    """Bytes to text; a bad byte is an error at its own line and column."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        before = data[: e.start]
        line = before.count(b"\n") + 1
        line_start = before.rfind(b"\n") + 1
        col = len(before[line_start:].decode("utf-8", errors="replace")) + 1
        raise ConfigError(
            f"invalid UTF-8 byte 0x{data[e.start]:02x} (expected a UTF-8 text file)", Position(path, line, col)
        ) from None


def _yaml_error(e: yaml.YAMLError, path: str, text: str) -> ConfigError:
    """One line for a scanner, parser or constructor error, with the most useful position."""
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    if mark is None:
        return ConfigError(f"invalid YAML: {e}".splitlines()[0], path=path)
    pos = Position(path, mark.line + 1, mark.column + 1)
    lines = text.splitlines()
    if 0 <= mark.line < len(lines):
        line = lines[mark.line]
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent and mark.column <= len(indent):
            return ConfigError(TAB_HINT, Position(path, mark.line + 1, indent.index("\t") + 1))
    problem = (getattr(e, "problem", None) or str(e)).strip().removeprefix("but ")
    context = (getattr(e, "context", None) or "").strip()
    cmark = getattr(e, "context_mark", None)
    if context.startswith("while") and cmark is not None and (cmark.line, cmark.column) != (mark.line, mark.column):
        context = f"{context} that starts at {cmark.line + 1}:{cmark.column + 1}"
    detail = f" ({context})" if context else ""
    return ConfigError(f"invalid YAML: {problem}{detail}", pos)


_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_SCALAR = yaml.ScalarNode
_PLAIN_SCALARS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("int", "float", "bool", "null"))


class _Builder:
    """Builds the positioned data from the node tree in one tight pass.

    Equivalent to the loader's own constructors above (which stay the reference and handle
    what this does not: merge keys `<<`), but without PyYAML's per-node generator machinery,
    which costs most of the load time of a golden file with thousands of cases. Aliases keep
    pointing at one shared object, as with PyYAML.
    """

    __slots__ = ("loader", "path", "done", "scalars")

    def __init__(self, loader: PositionLoader) -> None:
        self.loader = loader
        self.path = loader.path
        self.done: dict[int, Any] = {}
        self.scalars = loader.yaml_constructors

    def build(self, node: yaml.Node) -> Any:
        cls = node.__class__
        if cls is yaml.ScalarNode:
            tag = node.tag
            if tag == _STR:
                return node.value
            if tag not in _PLAIN_SCALARS:
                return self.loader.construct_object(node, deep=True)  # other tags: the reference path
            return self.scalars[tag](self.loader, node)
        key = id(node)
        known = self.done.get(key, _MISSING)
        if known is not _MISSING:
            return known
        if cls is yaml.MappingNode and node.tag == _MAP:
            data = self._mapping(node, key)
        elif cls is yaml.SequenceNode and node.tag == _SEQ:
            data = PosList()
            mark = node.start_mark
            data.pos = Position(self.path, mark.line + 1, mark.column + 1)
            self.done[key] = data
            path, item_pos, build = self.path, data.item_pos, self.build
            for item in node.value:
                data.append(item.value if item.tag == _STR and item.__class__ is _SCALAR else build(item))
                m = item.start_mark
                item_pos.append(Position(path, m.line + 1, m.column + 1))
        else:
            data = self.loader.construct_object(node, deep=True)
            self.done[key] = data
        return data

    def _mapping(self, node: yaml.MappingNode, key: int) -> Any:
        pairs = node.value
        if _MERGE in [k.tag for k, _ in pairs]:
            data = self.loader.construct_object(node, deep=True)  # `<<` merge keys: the reference path
            self.done[key] = data
            return data
        path = self.path
        data = PosDict()
        mark = node.start_mark
        data.pos = Position(path, mark.line + 1, mark.column + 1)
        self.done[key] = data
        key_pos, value_pos, build = data.key_pos, data.value_pos, self.build
        for key_node, value_node in pairs:
            # a plain text key (nearly every key) is its own value: no call to build
            k = key_node.value if key_node.tag == _STR and key_node.__class__ is _SCALAR else build(key_node)
            km = key_node.start_mark
            try:
                first = key_pos.get(k)
            except TypeError:
                raise ConfigError("a mapping key must be a plain value (expected text such as name:)",
                                  Position(path, km.line + 1, km.column + 1)) from None
            if first is not None:
                raise ConfigError(f"duplicate key {k!r} (first defined at line {first.line})",
                                  Position(path, km.line + 1, km.column + 1))
            data[k] = (value_node.value if value_node.tag == _STR and value_node.__class__ is _SCALAR
                       else build(value_node))
            key_pos[k] = Position(path, km.line + 1, km.column + 1)
            vm = value_node.start_mark
            value_pos[k] = Position(path, vm.line + 1, vm.column + 1)
        return data


_MISSING = object()


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a golden set is built.

    Loading makes hundreds of thousands of small objects that all stay alive, and every one
    of them makes the collector walk the growing heap again: for 10,000 cases that walking
    took three quarters of the load time. Loading makes almost no cyclic garbage, so nothing
    is lost by leaving it all to the collector's next full pass (it resumes by itself).
    """
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            if not gc.get_freeze_count():
                # Hand what was built straight to the oldest generation: resumed as it is, the
                # collector walks all of it as young objects at once, then again as they age
                # (0.4 s at 10,000 cases), only to keep it. `freeze` then `unfreeze` makes that
                # move without a walk; skipped when someone else has frozen objects, which
                # `unfreeze` would release.
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def parse_yaml(text: str, path: str) -> Any:
    """Parse one YAML document from `text`; errors are one-line ConfigErrors at a position."""
    loader = PositionLoader(text)
    loader.path = path
    try:
        with gc_paused():
            node = loader.get_single_node()
            if node is None:
                return None
            return _Builder(loader).build(node)
    except yaml.YAMLError as e:
        raise _yaml_error(e, path, text) from None
    except RecursionError:
        raise ConfigError("invalid YAML: nested too deeply (expected a plain mapping)", path=path) from None
    finally:
        loader.dispose()


# A golden or suite file larger than this is refused (HARNESS_MAX_YAML_BYTES): the biggest
# real golden files are a few hundred KB, and `harness validate /dev/zero` must end.
DEFAULT_MAX_YAML_BYTES = 10 * 1024 * 1024


def _max_yaml_bytes() -> int:
    import os

    raw = os.environ.get("HARNESS_MAX_YAML_BYTES", "").strip()
    try:
        return max(1024, int(raw)) if raw else DEFAULT_MAX_YAML_BYTES
    except ValueError:
        raise ConfigError(f"HARNESS_MAX_YAML_BYTES={raw!r}: expected a number of bytes") from None


def _read_bounded(path: str | Path, limit: int) -> bytes:
    with open(path, "rb") as f:
        raw = f.read(limit + 1)
    if len(raw) > limit:
        raise ConfigError(f"file is larger than {limit:,} bytes (HARNESS_MAX_YAML_BYTES); split it",
                          path=str(path))
    return raw


def read_yaml(path: str | Path, *, expected: str) -> PosDict:
    """Read a file that must hold one YAML mapping; `expected` says what it should contain.

    Errors (unreadable file, bad UTF-8, empty file, YAML syntax, a top level that is not a
    mapping) are ConfigErrors with the file's position.
    """
    shown = str(path)
    try:
        raw = _read_bounded(path, _max_yaml_bytes())
    except FileNotFoundError:
        raise ConfigError("no such file", path=shown) from None
    except IsADirectoryError:
        raise ConfigError("is a directory (expected a YAML file)", path=shown) from None
    except OSError as e:
        raise ConfigError(f"cannot read file: {e.strerror or e}", path=shown) from None
    text = decode_utf8(raw, shown)
    data = parse_yaml(text, shown)
    if data is None:
        raise ConfigError(f"file is empty (expected {expected})", Position(shown, 1, 1))
    if not isinstance(data, PosDict):
        pos = getattr(data, "pos", None) or _first_content(text, shown)
        raise ConfigError(f"the top level is {describe_value(data)} (expected {expected})", pos)
    return data


def _first_content(text: str, path: str) -> Position:
    """Position of the first line that is not blank, a comment or a document marker."""
    for i, line in enumerate(text.splitlines()):
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and stripped not in ("---", "..."):
            return Position(path, i + 1, len(line) - len(line.lstrip()) + 1)
    return Position(path, 1, 1)


def describe_value(value: Any) -> str:
    """What a user wrote, in words: 'a list', 'a mapping', "'four'", '3'."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return repr(shown)
    return str(value)
