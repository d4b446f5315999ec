"""Structured Field Values for HTTP (RFC 8941, plus RFC 9651's Date and Display String).

Signature-Input, Signature and Content-Digest are all Structured Fields, so every signed
request the gate sees goes through this parser first. Three things drive its shape:

* **Strictness.** RFC 8941 §4.2 says a parse failure makes the *whole field* invalid, and
  that is what a verifier wants: a lenient parser is where two implementations start to
  disagree about what was signed. Every rule of §4.2 is applied; nothing is "repaired".
* **Linear time.** The gate caps header size, but a parser that backtracks is still a
  cheap way to burn CPU. Every regular expression below is unambiguous (each repetition
  starts with a distinct character), so matching is linear in the input.
* **Speed in CPython.** A per-character loop costs ~50 ns a character; a typical
  Signature-Input is ~200 characters and parsed on every request. So each token (string,
  token, number, key, parameter name) is consumed with one precompiled regex match, and
  Python code only runs once per token.

Decimals are `float`s. Parsing is exact (at most 12 + 3 digits), and serialising rounds the
shortest repr to three places, half to even, as RFC 8941 §4.1.5 requires.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from types import MappingProxyType
from typing import TypeAlias
from urllib.parse import unquote_to_bytes

__all__ = [
    "BareItem",
    "Date",
    "DisplayString",
    "DuplicateKeyError",
    "InnerList",
    "Item",
    "Member",
    "Params",
    "ParseError",
    "SerializeError",
    "Token",
    "parse_dictionary",
    "parse_item",
    "parse_list",
    "serialize_bare_item",
    "serialize_dictionary",
    "serialize_inner_list",
    "serialize_item",
    "serialize_list",
    "serialize_params",
]


class ParseError(ValueError):
    """The field value is not a valid Structured Field; RFC 8941 §4.2 says ignore it whole."""


class DuplicateKeyError(ParseError):
    """A Dictionary repeats a key and the caller asked for that to be refused.

    RFC 8941 §4.2.2 keeps the last value, but a signature verifier that keeps the last
    value while an intermediary read the first is how covered components get smuggled.
    """


class SerializeError(ValueError):
    """The value cannot be expressed as a Structured Field (RFC 8941 §4.1)."""


class Token(str):
    """An sf-token (RFC 8941 §3.3.4): a `str` that serialises without quotes."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Token({str.__repr__(self)})"


class DisplayString(str):
    """An sf-displaystring (RFC 9651 §3.3.8): Unicode text, percent-encoded on the wire."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"DisplayString({str.__repr__(self)})"


@dataclass(frozen=True, slots=True)
class Date:
    """An sf-date (RFC 9651 §3.3.7): integer seconds since the epoch, `@` on the wire."""

    timestamp: int


BareItem: TypeAlias = bool | int | float | str | bytes | Date
"""`str` covers its `Token` and `DisplayString` subclasses; `bool` is tested before `int`."""

Params: TypeAlias = dict[str, BareItem]
"""What the parser builds; `Item.params` is typed read-only because parsed items are shared."""

_NO_PARAMS: Mapping[str, BareItem] = MappingProxyType({})


def _no_params() -> Mapping[str, BareItem]:
    return _NO_PARAMS


@dataclass(frozen=True, slots=True)
class Item:
    value: BareItem
    params: Mapping[str, BareItem] = field(default_factory=_no_params)


@dataclass(frozen=True, slots=True)
class InnerList:
    items: tuple[Item, ...]
    params: Mapping[str, BareItem] = field(default_factory=_no_params)


Member: TypeAlias = Item | InnerList
FieldInput: TypeAlias = str | Sequence[str]

# -- grammar (RFC 8941 §3, RFC 9651 §3.3.7-8), one precompiled matcher per token -----------

_STRING_CHARS = r"[\x20\x21\x23-\x5b\x5d-\x7e]"
_STRING = re.compile(rf'"({_STRING_CHARS}*(?:\\[\\"]{_STRING_CHARS}*)*)"')
_UNESCAPE = re.compile(r"\\(.)")
_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")
_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_NUMBER = re.compile(r"-?([0-9]+)(?:\.([0-9]*))?")
_BINARY = re.compile(r":([A-Za-z0-9+/=]*):")
_DISPLAY = re.compile(r'%"((?:[\x20\x21\x23\x24\x26-\x7e]|%[0-9a-f]{2})*)"')
_PARAM = re.compile(r";[ ]*([a-z*][a-z0-9_\-.*]*)(=?)")
# Fast paths for what Signature-Input is made of: parameters whose value is a plain string,
# an integer or absent (`*+` is possessive, so a key never backtracks into a shorter key),
# and inner lists of plain strings. Anything else falls through to the general rules.
_PARAM_FAST = re.compile(
    rf';[ ]*([a-z*][a-z0-9_\-.*]*+)(?:=(?:"({_STRING_CHARS}*)"|(-?[0-9]{{1,15}}+)(?![0-9.]))|(?!=))'
)
_PLAIN_INNER_LIST = re.compile(rf'\([ ]*(?:"{_STRING_CHARS}*"(?:[ ]+"{_STRING_CHARS}*")*)?[ ]*\)')
_PLAIN_STRING = re.compile(rf'"({_STRING_CHARS}*)"')
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_PLAIN_STRING_VALUE = re.compile(_STRING_CHARS + "*")  # printable, nothing to escape
_DISPLAY_ESCAPE = re.compile(r"[^\x20\x21\x23\x24\x26-\x7e]")

_INTEGER_MAX = 999_999_999_999_999
_VALID_KEYS: set[str] = set()
# Parameterless string Items are immutable, so the few component names that every
# Signature-Input repeats ("@method", "content-digest", …) are built once and shared.
_PLAIN_ITEMS: dict[str, Item] = {}  # keys already checked against _KEY, to skip the regex
_DECIMAL_QUANTUM = Decimal("0.001")
_TOKEN_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz*")
_NUMBER_START = frozenset("-0123456789")


def _combine(field_value: FieldInput) -> str:
    # RFC 8941 §4.2: several field lines are combined with commas (RFC 9110 §5.3).
    if isinstance(field_value, str):
        return field_value
    return ", ".join(field_value)


def _fail(what: str, pos: int) -> ParseError:
    # Positions, never content: parse errors can end up in logs and problem documents.
    return ParseError(f"{what} at offset {pos}")


# -- parsing --------------------------------------------------------------------------------


def _parse_bare_item(text: str, pos: int) -> tuple[BareItem, int]:
    """RFC 8941 §4.2.3.1, dispatching on the first character."""
    try:
        first = text[pos]
    except IndexError:
        raise _fail("expected a bare item", pos) from None
    if first == '"':
        m = _STRING.match(text, pos)
        if m is None:
            raise _fail("invalid string", pos)
        value = m.group(1)
        if "\\" in value:
            value = _UNESCAPE.sub(r"\1", value)
        return value, m.end()
    if first in _NUMBER_START:
        return _parse_number(text, pos)
    if first in _TOKEN_START:
        m = _TOKEN.match(text, pos)
        assert m is not None
        return Token(m.group()), m.end()
    if first == ":":
        m = _BINARY.match(text, pos)
        if m is None:
            raise _fail("invalid byte sequence", pos)
        try:
            # strict_mode refuses misplaced padding; missing padding also fails, which
            # §4.2.7 permits and which keeps one signature to one encoding.
            return binascii.a2b_base64(m.group(1), strict_mode=True), m.end()
        except (binascii.Error, ValueError):
            raise _fail("invalid base64", pos) from None
    if first == "?":
        flag = text[pos + 1 : pos + 2]
        if flag == "1":
            return True, pos + 2
        if flag == "0":
            return False, pos + 2
        raise _fail("invalid boolean", pos)
    if first == "@":
        number, end = _parse_number(text, pos + 1)
        if not isinstance(number, int):
            raise _fail("date must be an integer", pos)
        return Date(number), end
    if first == "%":
        m = _DISPLAY.match(text, pos)
        if m is None:
            raise _fail("invalid display string", pos)
        try:
            return DisplayString(unquote_to_bytes(m.group(1)).decode("utf-8")), m.end()
        except UnicodeDecodeError:
            raise _fail("display string is not UTF-8", pos) from None
    raise _fail("unexpected character", pos)


def _parse_number(text: str, pos: int) -> tuple[int | float, int]:
    """RFC 8941 §4.2.4: at most 15 integer digits, or 12 + 1 to 3 decimal digits."""
    m = _NUMBER.match(text, pos)
    if m is None:
        raise _fail("invalid number", pos)
    integer, fraction = m.group(1), m.group(2)
    if fraction is None:
        if len(integer) > 15:
            raise _fail("integer too long", pos)
        return int(m.group()), m.end()
    if len(integer) > 12 or not 1 <= len(fraction) <= 3:
        raise _fail("invalid decimal", pos)
    return float(m.group()), m.end()


def _parse_params(text: str, pos: int) -> tuple[Params, int]:
    """RFC 8941 §4.2.3.2; a repeated parameter overwrites the earlier one in place."""
    params: Params = {}
    value: BareItem
    while text.startswith(";", pos):
        m = _PARAM_FAST.match(text, pos)
        if m is not None:
            key, string, integer = m.group(1, 2, 3)
            if string is not None:
                value = string
            elif integer is not None:
                value = int(integer)
            else:
                value = True
            pos = m.end()
        else:
            m = _PARAM.match(text, pos)
            if m is None:
                raise _fail("invalid parameter key", pos)
            key = m.group(1)
            pos = m.end()
            value = True
            if m.group(2):
                value, pos = _parse_bare_item(text, pos)
        params[key] = value
    return params, pos


def _parse_item_at(text: str, pos: int) -> tuple[Item, int]:
    value, pos = _parse_bare_item(text, pos)
    if text.startswith(";", pos):
        params, pos = _parse_params(text, pos)
        return Item(value, params), pos
    return Item(value), pos


def _parse_inner_list(text: str, pos: int) -> tuple[InnerList, int]:
    """RFC 8941 §4.2.1.2; `text[pos]` is the opening parenthesis."""
    plain = _PLAIN_INNER_LIST.match(text, pos)
    if plain is not None:
        shared = []
        for string in _PLAIN_STRING.findall(text, pos, plain.end()):
            item = _PLAIN_ITEMS.get(string)
            if item is None:
                item = Item(string, _NO_PARAMS)
                if len(_PLAIN_ITEMS) < 256:  # bounded: attacker-chosen names churn nothing
                    _PLAIN_ITEMS[string] = item
            shared.append(item)
        params, pos = _parse_params(text, plain.end())
        return InnerList(tuple(shared), params), pos
    pos += 1
    end = len(text)
    items: list[Item] = []
    while pos < end:
        while text.startswith(" ", pos):
            pos += 1
        if text.startswith(")", pos):
            params, pos = _parse_params(text, pos + 1)
            return InnerList(tuple(items), params), pos
        item, pos = _parse_item_at(text, pos)
        items.append(item)
        if not text.startswith((" ", ")"), pos):
            raise _fail("inner list items must be separated by a space", pos)
    raise _fail("unterminated inner list", pos)


def _parse_member(text: str, pos: int) -> tuple[Member, int]:
    if text.startswith("(", pos):
        return _parse_inner_list(text, pos)
    return _parse_item_at(text, pos)


def _skip_ows(text: str, pos: int) -> int:
    while text.startswith((" ", "\t"), pos):
        pos += 1
    return pos


def _next_member(text: str, pos: int) -> int:
    """After a List or Dictionary member: OWS, then end of input or `,` OWS and more.

    Returns the position of the next member, or -1 at the end of the field.
    """
    pos = _skip_ows(text, pos)
    if pos == len(text):
        return -1
    if text[pos] != ",":
        raise _fail("expected a comma", pos)
    pos = _skip_ows(text, pos + 1)
    if pos == len(text):
        raise _fail("trailing comma", pos)
    return pos


def _start(text: str) -> int:
    # §4.2 step 2 discards leading SP only: a leading tab is an error.
    pos = 0
    while text.startswith(" ", pos):
        pos += 1
    return pos


def parse_item(field_value: FieldInput) -> Item:
    text = _combine(field_value)
    item, pos = _parse_item_at(text, _start(text))
    while text.startswith(" ", pos):
        pos += 1
    if pos != len(text):
        raise _fail("unexpected trailing characters", pos)
    return item


def parse_list(field_value: FieldInput) -> list[Member]:
    text = _combine(field_value)
    pos = _start(text)
    members: list[Member] = []
    if pos == len(text):
        return members
    while pos >= 0:
        member, pos = _parse_member(text, pos)
        members.append(member)
        pos = _next_member(text, pos)
    return members


def parse_dictionary(
    field_value: FieldInput, *, reject_duplicate_keys: bool = False
) -> dict[str, Member]:
    text = _combine(field_value)
    pos = _start(text)
    members: dict[str, Member] = {}
    if pos == len(text):
        return members
    while pos >= 0:
        m = _KEY.match(text, pos)
        if m is None:
            raise _fail("invalid dictionary key", pos)
        key = m.group()
        pos = m.end()
        member: Member
        if text.startswith("=", pos):
            member, pos = _parse_member(text, pos + 1)
        else:
            # §4.2.2: a key without a value is Boolean true, possibly with parameters.
            params, pos = _parse_params(text, pos)
            member = Item(True, params)
        if reject_duplicate_keys and key in members:
            raise DuplicateKeyError(f"dictionary key repeated at offset {m.start()}")
        members[key] = member
        pos = _next_member(text, pos)
    return members


# -- serialising (RFC 8941 §4.1) -----------------------------------------------------------


def _serialize_key(key: str) -> str:
    if _KEY.fullmatch(key) is None:
        raise SerializeError("invalid key")
    return key


def _serialize_decimal(value: float) -> str:
    if not math.isfinite(value) or abs(value) >= 1e12:
        raise SerializeError("decimal out of range")
    try:
        # Round the shortest repr, not the binary value: 9.9995 must become 10.0.
        rounded = Decimal(repr(value)).quantize(_DECIMAL_QUANTUM, rounding=ROUND_HALF_EVEN)
    except InvalidOperation:
        raise SerializeError("decimal out of range") from None
    integer, _, fraction = format(rounded, "f").partition(".")
    if len(integer.lstrip("-")) > 12:
        raise SerializeError("decimal out of range")
    return f"{integer}.{fraction.rstrip('0') or '0'}"


def _serialize_integer(value: int) -> str:
    if not -_INTEGER_MAX <= value <= _INTEGER_MAX:
        raise SerializeError("integer out of range")
    return str(value)


def _serialize_string(value: str) -> str:
    if _PRINTABLE.fullmatch(value) is None:
        raise SerializeError("string has characters outside printable ASCII")
    if "\\" in value or '"' in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + value + '"'


def serialize_bare_item(value: BareItem) -> str:
    # Exact-type fast paths first: strings and integers are nearly all of Signature-Input.
    kind = type(value)
    if kind is str:
        return _serialize_string(value)  # type: ignore[arg-type]
    if kind is int:
        return _serialize_integer(value)  # type: ignore[arg-type]
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        return _serialize_integer(value)
    if isinstance(value, float):
        return _serialize_decimal(value)
    if isinstance(value, Token):
        if _TOKEN.fullmatch(value) is None:
            raise SerializeError("invalid token")
        return str.__str__(value)
    if isinstance(value, DisplayString):
        return '%"' + _DISPLAY_ESCAPE.sub(_percent_encode, value) + '"'
    if isinstance(value, str):
        return _serialize_string(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return ":" + base64.b64encode(value).decode("ascii") + ":"
    if isinstance(value, Date):
        return "@" + _serialize_integer(value.timestamp)
    raise SerializeError(f"not a bare item type: {type(value).__name__}")


def _percent_encode(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02x}" for byte in match.group().encode("utf-8"))


def serialize_params(params: Mapping[str, BareItem]) -> str:
    out = ""
    for key, value in params.items():
        if key not in _VALID_KEYS:
            _serialize_key(key)
            if len(_VALID_KEYS) < 64:  # a few well-known names; bounded against floods
                _VALID_KEYS.add(key)
        if type(value) is int and -_INTEGER_MAX <= value <= _INTEGER_MAX:
            out += f";{key}={value}"
        elif type(value) is str and _PLAIN_STRING_VALUE.fullmatch(value) is not None:
            out += f';{key}="{value}"'
        elif value is True:
            out += ";" + key
        else:
            out += ";" + key + "=" + serialize_bare_item(value)
    return out


def serialize_item(item: Item) -> str:
    if item.params:
        return serialize_bare_item(item.value) + serialize_params(item.params)
    return serialize_bare_item(item.value)


def serialize_inner_list(inner_list: InnerList) -> str:
    body = " ".join([serialize_item(item) for item in inner_list.items])
    return "(" + body + ")" + serialize_params(inner_list.params)


def _serialize_member(member: Member) -> str:
    if isinstance(member, InnerList):
        return serialize_inner_list(member)
    return serialize_item(member)


def serialize_list(members: Iterable[Member]) -> str:
    """An empty list serialises to "" — RFC 8941 §4.1.1 says: do not send the field."""
    return ", ".join([_serialize_member(member) for member in members])


def serialize_dictionary(members: Mapping[str, Member]) -> str:
    parts = []
    for key, member in members.items():
        if isinstance(member, Item) and member.value is True:
            # §4.1.2: Boolean true members are written as the bare key.
            parts.append(_serialize_key(key) + serialize_params(member.params))
        else:
            parts.append(_serialize_key(key) + "=" + _serialize_member(member))
    return ", ".join(parts)
