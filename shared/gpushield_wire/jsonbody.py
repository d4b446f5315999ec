"""Bounded JSON parsing for request bodies and anything else a client sends as JSON.

`json.loads` alone accepts things an API must not: duplicate object keys (two parsers in a chain
can disagree about which value wins), NaN/Infinity (not JSON), and nesting deep enough to hit the
interpreter's recursion limit. This parser refuses all three with distinct catalog codes and
caps the total number of values, so work after parsing is bounded by policy, not by the client.
Bearer tokens' JSON goes through `parse_json` too (tokens/jws.py, under its own codes), and a
key set fetched from an identity provider through `check_nesting` (tokens/jwk.py).
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import ProblemError


def _reject_constant(name: str) -> Any:
    raise ProblemError("json_invalid", f"{name} is not JSON")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ProblemError("json_duplicate_key")
    return document


# A JSON string (escapes included) — removed before counting brackets, since brackets inside
# strings do not nest. The alternatives are disjoint, so matching is linear.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r"[\[\]{}]")


def check_nesting(text: str, max_depth: int) -> None:
    """Refuses nesting deeper than `max_depth` *before* parsing.

    `json.loads` recurses once per level in C. CPython turns a very deep document into a
    RecursionError, but under Pyodide (the Workers runtime) the WebAssembly stack overflows
    first, which kills the whole isolate — every request in flight with it. Counting brackets
    outside strings is linear and stops at the first level too deep.
    """
    if text.count("[") + text.count("{") <= max_depth:
        return  # too few brackets to nest that deep: the common case, two C-speed counts
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub("", text)):
        if match.group() in "[{":
            depth += 1
            if depth > max_depth:
                raise ProblemError("json_too_deep", max_depth=max_depth)
        else:
            depth -= 1


def parse_json(data: bytes, *, max_depth: int) -> Any:
    """Decodes UTF-8 strictly, bounds nesting (before parsing), then parses JSON without
    duplicate keys or NaN/Infinity: body_not_utf8, json_too_deep, json_duplicate_key or
    json_invalid otherwise."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ProblemError("body_not_utf8") from None
    check_nesting(text, max_depth)
    try:
        return json.loads(
            text, object_pairs_hook=_unique_object, parse_constant=_reject_constant
        )
    except RecursionError:
        raise ProblemError("json_too_deep", max_depth=max_depth) from None
    except ValueError as error:  # json.JSONDecodeError is a ValueError
        if isinstance(error, ProblemError):  # pragma: no cover - ProblemError is not ValueError
            raise
        raise ProblemError("json_invalid") from None


def parse_json_body(body: bytes, *, max_depth: int, max_values: int) -> Any:
    """`parse_json`, then the value count (and depth, again, on the parsed document)."""
    document = parse_json(body, max_depth=max_depth)
    check_shape(document, max_depth=max_depth, max_values=max_values)
    return document


def check_shape(document: Any, *, max_depth: int, max_values: int) -> None:
    """Iterative walk (no recursion: the depth is exactly what we do not trust yet).

    Also used by the SDK on the Python object it is about to serialise (hence tuples)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    values = 0
    while stack:
        node, depth = stack.pop()
        values += 1
        if values > max_values:
            raise ProblemError("json_too_large", max_values=max_values)
        if isinstance(node, dict):
            if depth > max_depth:
                raise ProblemError("json_too_deep", max_depth=max_depth)
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list | tuple):
            if depth > max_depth:
                raise ProblemError("json_too_deep", max_depth=max_depth)
            stack.extend((child, depth + 1) for child in node)
