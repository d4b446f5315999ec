"""The few conversions between Python values and JS values the edge needs, in one place.

Pyodide converts str and numbers by itself; bytes, None and dicts need an explicit choice
(a Uint8Array copy, JS `null`, a plain JS object) and ArrayBuffers come back as proxies.
"""

from __future__ import annotations

from typing import Any

import js  # type: ignore[import-not-found]
from pyodide.ffi import JsProxy, jsnull, to_js  # type: ignore[import-not-found]


def js_value(value: Any) -> Any:
    """A scalar for a JS call (SQL parameter, header value): bytes become a Uint8Array,
    None becomes null, booleans become 0/1 like SQLite stores them."""
    if value is None:
        return jsnull
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return to_js(bytes(value))
    return value


def js_object(document: dict[str, Any]) -> Any:
    """A plain JS object (fetch init, WebCrypto algorithm parameters)."""
    return to_js(document, dict_converter=js.Object.fromEntries)


def js_list(items: list[Any]) -> Any:
    return to_js(items)


def py_value(value: Any) -> Any:
    """A JS scalar back in Python: ArrayBuffer/typed array → bytes, null/undefined → None."""
    if value is None or value is jsnull:
        return None
    if isinstance(value, JsProxy):
        if hasattr(value, "byteLength"):
            return bytes(value.to_bytes())
        if js.Array.isArray(value):
            return [py_value(item) for item in value]
        return value.to_py()
    return value


async def buffer_bytes(promise: Any) -> bytes:
    """Awaits a JS promise of an ArrayBuffer (WebCrypto, Response.arrayBuffer)."""
    buffer = await promise
    return bytes(buffer.to_bytes())
