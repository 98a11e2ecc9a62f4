"""JSON Schema for golden and suite files, generated from the models and the registries.

Editors (VS Code's YAML extension, for one) use it to complete keys and flag mistakes
while typing. It is generated, never written by hand, so it cannot drift from what the
loader accepts: the models give the shape, the check registry gives the keys an `expect`
item may use, the target registry gives each target kind's settings, the notifier registry
each `notify:` entry's settings.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter

from .spec import CHECK_MODIFIERS, GoldenFile, Suite

REF = "#/$defs/{model}"
_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schema(kind: Literal["golden", "suite"]) -> dict[str, Any]:
    """The JSON Schema of a golden file (`kind="golden"`) or of a suite file (`"suite"`)."""
    if kind not in ("golden", "suite"):
        raise ValueError(f"unknown schema kind {kind!r} (expected 'golden' or 'suite')")
    model: type[BaseModel] = GoldenFile if kind == "golden" else Suite
    schema = model.model_json_schema(ref_template=REF)
    defs = schema.setdefault("$defs", {})
    if kind == "golden":
        defs["CheckSpec"] = _check_item_schema(defs)
        _drop_loader_fields(defs)
    else:
        target = _target_schema(defs)
        if target is not None:
            defs["TargetSpec"] = target
        _notifier_entries(defs)
    _drop_unused_defs(schema)
    return {"$schema": _DIALECT, **schema}


def _drop_loader_fields(defs: dict[str, Any]) -> None:
    """Positions are kept by the loader, not written by users: keep them out of the schema."""
    for d in defs.values():
        props = d.get("properties")
        if isinstance(props, dict):
            for name in ("pos", "name_pos"):
                props.pop(name, None)


def _check_item_schema(defs: dict[str, Any]) -> dict[str, Any]:
    """One `expect` item: a bare check name, or a mapping with exactly one check key."""
    from .checks import registry

    checks = registry()
    names = sorted(checks)
    bare = [n for n in names if not any(p.default is inspect.Parameter.empty for p in checks[n].params.values())]
    properties: dict[str, Any] = {}
    for name in names:
        properties[name] = _check_arg_schema(checks[name], defs)
    properties["weight"] = {"type": "number", "minimum": 0, "description": "how much this check counts"}
    properties["negate"] = {"type": "boolean", "description": "pass when the check fails"}
    properties["label"] = {"type": "string", "description": "name shown in reports"}
    assert set(CHECK_MODIFIERS) <= set(properties)
    return {
        "description": "One expectation, e.g. {contains: \"19時\"} or {regex: \"山田.*様\", weight: 2}",
        "anyOf": [
            {"type": "string", "enum": bare, "description": "a check that needs no argument"},
            {
                "type": "object",
                "properties": properties,
                "additionalProperties": False,
                "oneOf": [{"required": [n]} for n in names],
            },
        ],
    }


def _check_arg_schema(info: Any, defs: dict[str, Any]) -> dict[str, Any]:
    """What a check's key may hold: its primary argument alone, or a mapping of settings."""
    hints = _hints(info.factory)
    params = {n: _type_schema(hints.get(n, Any), defs) for n in info.params}
    settings: dict[str, Any] = {"type": "object", "properties": params, "additionalProperties": False}
    options: list[dict[str, Any]] = [{"type": "null"}]
    if info.primary is not None:
        options.append(params.get(info.primary, {}))
    if info.primary is None or not info.mapping_primary:
        options.append(settings)
    description = info.description.rstrip(".")
    if info.primary:
        description = f"{description} (primary argument: {info.primary})".strip()
    return {"description": description, "anyOf": options}


def _hints(factory: Any) -> dict[str, Any]:
    fn = inspect.unwrap(factory)
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:  # an annotation we cannot resolve only loses detail, never the schema
        return {}


def _type_schema(hint: Any, defs: dict[str, Any]) -> dict[str, Any]:
    if hint is Any:
        return {}
    try:
        schema = TypeAdapter(hint).json_schema(ref_template=REF)
    except Exception:  # a type with no JSON form: accept anything rather than guess wrong
        return {}
    defs.update(schema.pop("$defs", {}))
    return schema


def _target_schema(defs: dict[str, Any]) -> dict[str, Any] | None:
    """`target:` as one of the registered kinds, each with its own settings."""
    try:
        from .targets import registry

        targets = registry()
    except ImportError:  # no targets registered yet: keep the generic shape
        return None
    options = []
    for kind, cls in sorted(targets.items()):
        schema = cls.config_model.model_json_schema(ref_template=REF)
        for name, d in schema.pop("$defs", {}).items():
            defs.setdefault(name, d)
        schema.setdefault("properties", {})["kind"] = {"const": kind}
        schema["required"] = sorted({*schema.get("required", []), "kind"})
        if cls.description:
            schema["description"] = cls.description
        options.append(schema)
    return {"oneOf": options} if options else None


def _notifier_entries(defs: dict[str, Any]) -> None:
    """`notify:` holds shared settings and one entry per registered notifier, each with its own settings."""
    from .notify import registry

    notify = defs.get("NotifySpec")
    if notify is None:
        return
    props = notify.setdefault("properties", {})
    for name, cls in sorted(registry().items()):
        schema = cls.config_model.model_json_schema(ref_template=REF)
        for def_name, d in schema.pop("$defs", {}).items():
            defs.setdefault(def_name, d)
        if cls.description:
            schema["description"] = cls.description
        props[name] = schema


def _drop_unused_defs(schema: dict[str, Any]) -> None:
    """Remove definitions nothing refers to any more (the positions' `Position`)."""
    defs = schema.get("$defs", {})
    while True:
        text = repr({k: v for k, v in schema.items() if k != "$defs"}) + repr(defs)
        unused = [name for name in defs if f"'#/$defs/{name}'" not in text]
        if not unused:
            return
        for name in unused:
            del defs[name]
