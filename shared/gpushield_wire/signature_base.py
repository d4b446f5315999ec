"""RFC 9421 §2: component values and the signature base.

The signature base is the only thing that is actually signed, so signer and verifier must
derive it byte for byte alike from what each sees of the message. Everything here follows
§2 literally; where the RFC leaves a choice, the choice is the stricter one:

* a covered component that cannot be derived is an error, never an empty line (§2.5);
* a component listed twice is an error (§2.5), whatever the order of its parameters;
* component parameters that are not understood are an error (§2.5), and `tr` (trailers,
  §2.1.5) is not supported, since the gate never sees trailers;
* values must be printable ASCII (the `signature-base-line` ABNF of §2.5 excludes obs-text
  and controls). That also rules out a value containing LF smuggling in a forged line.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from .structured_fields import (
    BareItem,
    InnerList,
    Item,
    ParseError,
    SerializeError,
    parse_dictionary,
    parse_item,
    parse_list,
    serialize_bare_item,
    serialize_dictionary,
    serialize_inner_list,
    serialize_item,
    serialize_list,
    serialize_params,
)

__all__ = [
    "KNOWN_SF_TYPES",
    "ComponentError",
    "HttpMessage",
    "component_value",
    "signature_base",
]


class ComponentError(ValueError):
    """A covered component cannot be derived from the message (RFC 9421 §2.5)."""


@dataclass(frozen=True)
class HttpMessage:
    """What a signer or verifier knows of one HTTP message.

    `path` and `query` are raw (still percent-encoded); `query` excludes the `?` and is None
    when the target URI has none. `headers` are field lines in order, duplicates kept — or,
    when the caller has already combined them (a gate's header map), a mapping from the
    lowercase field name to the combined value.
    `request_target` overrides `@request-target` for absolute-, authority- and
    asterisk-form requests (§2.2.5). `request` is the request a response answers, for `;req`.
    """

    method: str | None = None
    scheme: str | None = None
    authority: str | None = None
    path: str | None = None
    query: str | None = None
    headers: Sequence[tuple[str, str]] | Mapping[str, str] = ()
    status: int | None = None
    request: HttpMessage | None = None
    request_target: str | None = None


# Fields whose Structured Field type we know, for `;sf` (§2.1.1) — the RFC leaves the type
# to "the application". `;key` (§2.1.2) always means Dictionary.
KNOWN_SF_TYPES: Mapping[str, str] = {
    "accept-signature": "dictionary",
    "cache-status": "list",
    "content-digest": "dictionary",
    "idempotency-key": "item",
    "priority": "dictionary",
    "proxy-status": "list",
    "repr-digest": "dictionary",
    "signature": "dictionary",
    "signature-input": "dictionary",
    "want-content-digest": "dictionary",
    "want-repr-digest": "dictionary",
}

_DEFAULT_PORTS = {"http": "80", "https": "443"}
_BASE_OK = re.compile(r"[\t\n\x20-\x7e]*")
_OBS_FOLD = re.compile(r"\r?\n[ \t]+")
_FIELD_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+")
# application/x-www-form-urlencoded percent-encode set (WHATWG URL §1.3): all but these.
_QUERY_PARAM_SAFE = re.compile(rb"[^A-Za-z0-9*\-._]")
_FIELD_PARAMS = frozenset({"sf", "key", "bs", "req", "tr"})


def _authority(message: HttpMessage) -> str:
    """§2.2.3: lowercased host, default port for the scheme dropped (HTTP §4.2.3)."""
    if message.authority is None:
        raise ComponentError("message has no authority")
    authority = message.authority.lower()
    default = _DEFAULT_PORTS.get((message.scheme or "").lower())
    if default is not None and authority.endswith(":" + default):
        authority = authority[: -len(default) - 1]
    return authority


def _path(message: HttpMessage) -> str:
    if message.path is None:
        raise ComponentError("message has no path")
    return message.path or "/"  # §2.2.6: an empty path is "/"


def _query(message: HttpMessage) -> str:
    # §2.2.7: "?" plus the raw query; a missing or empty query is just "?".
    if message.method is None and message.path is None:
        raise ComponentError("message has no query")
    return "?" + (message.query or "")


def _form_encode(raw: bytes) -> str:
    return _QUERY_PARAM_SAFE.sub(lambda m: b"%%%02X" % m.group()[0], raw).decode("ascii")


def _form_decode(raw: str) -> bytes:
    # WHATWG URL §5.1 urlencoded parsing: "+" is a space, then percent-decode as bytes.
    return unquote_to_bytes(raw.replace("+", " "))


def _query_param(message: HttpMessage, name: BareItem | None) -> str:
    """§2.2.8: decode every name and value, re-encode, match on the re-encoded name."""
    if not isinstance(name, str):
        raise ComponentError("@query-param needs a string name parameter")
    found: list[str] = []
    for pair in (message.query or "").split("&"):
        if not pair:
            continue
        raw_name, _, raw_value = pair.partition("=")
        # Decoding to text and back normalises invalid UTF-8 to U+FFFD, as WHATWG does.
        decoded_name = _form_decode(raw_name).decode("utf-8", "replace").encode("utf-8")
        if _form_encode(decoded_name) == name:
            decoded_value = _form_decode(raw_value).decode("utf-8", "replace").encode("utf-8")
            found.append(_form_encode(decoded_value))
    if len(found) != 1:
        # Absent is an error (§2.2.8); so is a repeated name, which the RFC says not to
        # sign this way because a single line cannot express it.
        raise ComponentError("query parameter is absent or repeated")
    return found[0]


def _status(message: HttpMessage) -> str:
    if message.status is None:
        raise ComponentError("@status applies to responses only")
    if not 100 <= message.status <= 999:
        raise ComponentError("status out of range")
    return str(message.status)


def _target_uri(message: HttpMessage) -> str:
    if message.scheme is None:
        raise ComponentError("message has no scheme")
    target = message.request_target
    if target is not None and "://" in target:
        return target  # absolute-form already is the target URI
    query = "" if message.query is None else "?" + message.query
    return f"{message.scheme.lower()}://{_authority(message)}{_path(message)}{query}"


def _request_target(message: HttpMessage) -> str:
    if message.request_target is not None:
        return message.request_target
    query = "" if message.query is None else "?" + message.query
    return _path(message) + query


def _method(message: HttpMessage) -> str:
    if message.method is None:
        raise ComponentError("message has no method")
    return message.method  # §2.2.1: case is kept as sent


def _scheme(message: HttpMessage) -> str:
    if message.scheme is None:
        raise ComponentError("message has no scheme")
    return message.scheme.lower()


_DERIVED: dict[str, Callable[[HttpMessage], str]] = {
    "@method": _method,
    "@authority": _authority,
    "@path": _path,
    "@query": _query,
    "@target-uri": _target_uri,
    "@scheme": _scheme,
    "@request-target": _request_target,
    "@status": _status,
}


def _derived(name: str, message: HttpMessage, params: Mapping[str, BareItem]) -> str:
    if name == "@query-param":
        if set(params) - {"req", "name"}:
            raise ComponentError("unsupported parameter on a derived component")
        return _query_param(message, params.get("name"))
    if params and set(params) - {"req"}:
        raise ComponentError("unsupported parameter on a derived component")
    derive = _DERIVED.get(name)
    if derive is None:
        # @signature-params is never a covered component (§2.3); anything else is unknown.
        raise ComponentError("unknown derived component")
    return derive(message)


def _field_lines(message: HttpMessage, name: str) -> list[str]:
    # §2.1: every line of the field, in order, trimmed, obs-fold replaced by one space.
    headers = message.headers
    if type(headers) is dict or isinstance(headers, Mapping):
        combined = headers.get(name)
        values = [] if combined is None else [combined]
    else:
        values = [value for field_name, value in headers if field_name.lower() == name]
    lines = []
    for value in values:
        if "\n" in value:
            value = _OBS_FOLD.sub(" ", value)
        lines.append(value.strip(" \t"))
    if not lines:
        raise ComponentError("covered field is absent")
    return lines


def _reserialize(name: str, value: str, sf_types: Mapping[str, str]) -> str:
    kind = sf_types.get(name)
    try:
        if kind == "dictionary":
            return serialize_dictionary(parse_dictionary(value))
        if kind == "list":
            return serialize_list(parse_list(value))
        if kind == "item":
            return serialize_item(parse_item(value))
    except (ParseError, SerializeError):
        raise ComponentError("covered structured field does not parse") from None
    raise ComponentError("structured type of covered field is unknown")


def _field(
    name: str, message: HttpMessage, params: Mapping[str, BareItem], sf_types: Mapping[str, str]
) -> str:
    if _FIELD_NAME.fullmatch(name) is None:
        raise ComponentError("field component names are lowercase field names")
    if params:
        if set(params) - _FIELD_PARAMS:
            raise ComponentError("unsupported parameter on a field component")
        if "tr" in params:
            raise ComponentError("trailer fields are not supported")
    lines = _field_lines(message, name)
    if not params:
        return ", ".join(lines)
    if "bs" in params:
        if "sf" in params or "key" in params:
            raise ComponentError("bs cannot be combined with sf or key")  # §2.1.3
        try:
            encoded = [line.encode("latin-1") for line in lines]
        except UnicodeEncodeError:
            raise ComponentError("field value is not octets") from None
        return ", ".join(":" + base64.b64encode(line).decode("ascii") + ":" for line in encoded)
    value = ", ".join(lines)
    if "key" in params:
        key = params["key"]
        if not isinstance(key, str):
            raise ComponentError("key parameter must be a string")
        try:
            member = parse_dictionary(value).get(key)
        except ParseError:
            raise ComponentError("covered dictionary field does not parse") from None
        if member is None:
            raise ComponentError("dictionary member is absent")  # §2.1.2
        if isinstance(member, InnerList):
            return serialize_inner_list(member)
        return serialize_bare_item(member.value) + serialize_params(member.params)
    if "sf" in params:
        return _reserialize(name, value, sf_types)
    return value


def component_value(
    component: Item, message: HttpMessage, sf_types: Mapping[str, str] = KNOWN_SF_TYPES
) -> str:
    """The value of one covered component, before any check on its characters."""
    name = component.value
    if not isinstance(name, str) or type(name) is not str:
        raise ComponentError("a component identifier is an sf-string")
    params = component.params
    if "req" in params:
        if message.request is None:
            raise ComponentError(";req needs the request this response answers")
        message = message.request
    if name.startswith("@"):
        return _derived(name, message, params)
    return _field(name, message, params, sf_types)


def _identifier(component: Item) -> tuple[str, Hashable]:
    """The serialised identifier, and what makes two identifiers the same component."""
    if not component.params:
        name = component.value
        if type(name) is str and '"' not in name and "\\" not in name:
            return f'"{name}"', name
    try:
        identifier = serialize_item(component)
    except SerializeError:
        raise ComponentError("component identifier does not serialise") from None
    # Parameter order does not make a different component.
    params = frozenset((k, (type(v), v)) for k, v in component.params.items())
    return identifier, (component.value, params)


def signature_base(
    message: HttpMessage,
    components: Sequence[Item],
    params_text: str,
    *,
    sf_types: Mapping[str, str] = KNOWN_SF_TYPES,
) -> bytes:
    """§2.5: one `identifier: value` line per component, then `"@signature-params"`.

    `params_text` is the serialised inner list (components and signature parameters) —
    exactly the value of the label's Signature-Input member.
    """
    lines = []
    seen: set[Hashable] = set()
    for component in components:
        name = component.value
        if not component.params and type(name) is str:
            # The common case, inlined: a plain derived component or field.
            if name in seen:
                raise ComponentError("component listed twice")
            seen.add(name)
            derive = _DERIVED.get(name)
            if derive is not None:
                value = derive(message)
            elif name.startswith("@"):
                raise ComponentError("unknown derived component")
            else:
                value = _field(name, message, component.params, sf_types)
            # Derived names are fixed; _field has checked field names: no quoting needed.
            lines.append(f'"{name}": {value}')
            continue
        identifier, key = _identifier(component)
        if key in seen:
            raise ComponentError("component listed twice")
        seen.add(key)
        lines.append(f"{identifier}: {component_value(component, message, sf_types)}")
    lines.append(f'"@signature-params": {params_text}')
    base = "\n".join(lines)
    # One regex over the whole base instead of one per line; the LF count then proves no
    # value (or params_text) carried a line break of its own.
    if _BASE_OK.fullmatch(base) is None or base.count("\n") != len(lines) - 1:
        raise ComponentError("component value has characters outside printable ASCII")
    return base.encode("ascii")
