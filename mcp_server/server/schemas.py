"""Tool input schemas as a model should read them: bounds and descriptions, no pydantic noise.

Pydantic titles every property after its name and spells an optional argument `anyOf [T,
null]` with `default: null`. Neither tells a model anything the property name and `required`
do not, and together they are a third of what the five tools cost in a model's context.
"""

from __future__ import annotations

import json
from typing import Any


def compact_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` without `title`s, `anyOf [T, null]` as `T`, no `default: null` and no
    `additionalProperties: true`."""
    compacted = _compact(schema)
    assert isinstance(compacted, dict)
    return compacted


def _compact(node: Any) -> Any:
    if isinstance(node, list):
        return [_compact(item) for item in node]
    if not isinstance(node, dict):
        return node
    options = node.get("anyOf")
    if isinstance(options, list) and len(options) == 2 and {"type": "null"} in options:
        kept = next(option for option in options if option != {"type": "null"})
        merged = {**{k: v for k, v in node.items() if k not in ("anyOf", "default")}, **kept}
        if node.get("default") is not None:
            merged["default"] = node["default"]
        return _compact(merged)
    compacted = {}
    for key, value in node.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "default" and value is None:
            continue
        # A JSON object allows any properties unless it says otherwise.
        if key == "additionalProperties" and value is True:
            continue
        # `properties` maps argument names to schemas; a property may itself be named "title".
        compacted[key] = {k: _compact(v) for k, v in value.items()} if key == "properties" else _compact(value)
    return compacted


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with every `$ref` to its own `$defs` replaced by the definition, and no `$defs`.

    Clients check each result against the tool's output schema, and resolving a `$ref` is most
    of what that check costs: for ten recalled memories, once per memory. None of the results'
    models refers to itself, so the inlined schema is finite and means the same.
    """
    definitions = schema.get("$defs", {})

    def inline(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [inline(item, seen) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.removeprefix("#/$defs/")
            if name in seen or name not in definitions:
                raise ValueError(f"cannot inline the schema reference {ref}")
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {**inline(definitions[name], (*seen, name)), **inline(rest, seen)}
        return {k: inline(v, seen) for k, v in node.items() if k != "$defs"}

    inlined = inline(schema, ())
    assert isinstance(inlined, dict)
    return inlined


def nullable_as_type_lists(node: Any) -> Any:
    """`anyOf [{type: T}, {type: null}]` as `type: [T, null]`: the same values, one check instead
    of two subschemas tried in turn."""
    if isinstance(node, list):
        return [nullable_as_type_lists(item) for item in node]
    if not isinstance(node, dict):
        return node
    options = node.get("anyOf")
    if isinstance(options, list) and len(options) == 2 and {"type": "null"} in options:
        kept = next(option for option in options if option != {"type": "null"})
        if set(kept) == {"type"} and isinstance(kept["type"], str):
            node = {**{k: v for k, v in node.items() if k != "anyOf"}, "type": [kept["type"], "null"]}
    return {k: nullable_as_type_lists(v) for k, v in node.items()}


def output_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A tool's output schema as clients check results against it fastest (same meaning)."""
    checked = nullable_as_type_lists(inline_refs(schema))
    assert isinstance(checked, dict)
    return checked


def context_tokens(name: str, description: str, input_schema: dict[str, Any]) -> float:
    """What one tool costs a model's context before any call: its name, description and input
    schema as JSON, in tokens estimated as characters / 4."""
    return (len(name) + len(description) + len(json.dumps(input_schema))) / 4
