"""The httpwg structured-field-tests suite, every file, every case."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from corpora_path import corpora_dir, corpora_path
from gpushield_wire import structured_fields as sf

pytestmark = pytest.mark.corpus


def _cases(subdir: str) -> list[Any]:
    root = corpora_path() / "structured-field-tests" / subdir
    if not root.is_dir():
        return [pytest.param(None, id=f"{subdir or 'parse'}-corpus-missing")]
    params = []
    for path in sorted(root.glob("*.json")):
        for case in json.loads(path.read_text(encoding="utf-8")):
            params.append(pytest.param(case, id=f"{path.stem}:{case['name']}"))
    return params


# -- the suite's JSON encoding of parsed values (its README, "__type Objects") -------------


def _bare_to_json(value: sf.BareItem) -> Any:
    # Tag every value with its type so that Token("a") != "a" and 1 != 1.0 != True.
    if isinstance(value, bool):
        return ["bool", value]
    if isinstance(value, int):
        return ["int", value]
    if isinstance(value, float):
        return ["dec", value]
    if isinstance(value, sf.Token):
        return ["token", str(value)]
    if isinstance(value, sf.DisplayString):
        return ["displaystring", str(value)]
    if isinstance(value, str):
        return ["str", value]
    if isinstance(value, bytes):
        return ["binary", value]
    if isinstance(value, sf.Date):
        return ["date", value.timestamp]
    raise AssertionError(type(value))


def _expected_bare(value: Any) -> Any:
    if isinstance(value, dict):
        kind = value["__type"]
        if kind == "binary":
            return ["binary", base64.b32decode(value["value"])]
        return [kind, value["value"]]
    if isinstance(value, bool):
        return ["bool", value]
    if isinstance(value, int):
        return ["int", value]
    if isinstance(value, float):
        return ["dec", value]
    return ["str", value]


def _from_expected_bare(value: Any) -> sf.BareItem:
    if isinstance(value, dict):
        kind, inner = value["__type"], value["value"]
        if kind == "token":
            return sf.Token(inner)
        if kind == "binary":
            return base64.b32decode(inner)
        if kind == "date":
            return sf.Date(inner)
        if kind == "displaystring":
            return sf.DisplayString(inner)
        raise AssertionError(kind)
    return value  # type: ignore[no-any-return]


def _params_json(params: sf.Params) -> Any:
    return [[key, _bare_to_json(value)] for key, value in params.items()]


def _member_json(member: sf.Member) -> Any:
    if isinstance(member, sf.InnerList):
        return [[_member_json(item) for item in member.items], _params_json(member.params)]
    return [_bare_to_json(member.value), _params_json(member.params)]


def _expected_member(value: Any) -> Any:
    first, params = value
    expected_params = [[key, _expected_bare(v)] for key, v in params]
    if isinstance(first, list):
        return [[_expected_member(item) for item in first], expected_params]
    return [_expected_bare(first), expected_params]


def _expected(header_type: str, value: Any) -> Any:
    if header_type == "item":
        return _expected_member(value)
    if header_type == "list":
        return [_expected_member(member) for member in value]
    return [[key, _expected_member(member)] for key, member in value]


def _parsed_json(header_type: str, parsed: Any) -> Any:
    if header_type == "item":
        return _member_json(parsed)
    if header_type == "list":
        return [_member_json(member) for member in parsed]
    return [[key, _member_json(member)] for key, member in parsed.items()]


# -- building our values from `expected` (for the serialisation tests) ---------------------


def _build_member(value: Any) -> sf.Member:
    first, params = value
    built_params = {key: _from_expected_bare(v) for key, v in params}
    if isinstance(first, list):
        return sf.InnerList(tuple(_build_member(item) for item in first), built_params)  # type: ignore[misc]
    return sf.Item(_from_expected_bare(first), built_params)


def _serialize(header_type: str, expected: Any) -> str:
    if header_type == "item":
        member = _build_member(expected)
        assert isinstance(member, sf.Item)
        return sf.serialize_item(member)
    if header_type == "list":
        return sf.serialize_list([_build_member(m) for m in expected])
    return sf.serialize_dictionary({key: _build_member(m) for key, m in expected})


def _parse(header_type: str, raw: list[str]) -> Any:
    if header_type == "item":
        return sf.parse_item(raw)
    if header_type == "list":
        return sf.parse_list(raw)
    return sf.parse_dictionary(raw)


@pytest.mark.parametrize("case", _cases(""))
def test_parse(case: dict[str, Any] | None) -> None:
    corpora_dir()
    assert case is not None
    header_type = case["header_type"]
    if case.get("must_fail"):
        with pytest.raises(sf.ParseError):
            _parse(header_type, case["raw"])
        return
    try:
        parsed = _parse(header_type, case["raw"])
    except sf.ParseError:
        if case.get("can_fail"):
            return  # a SHOULD we chose not to relax (e.g. unpadded base64)
        raise
    assert _parsed_json(header_type, parsed) == _expected(header_type, case["expected"])
    canonical = case.get("canonical", case["raw"])
    serialized = _serialize(header_type, case["expected"])
    assert serialized == ", ".join(canonical)
    # And our own output parses back to the same value.
    if serialized:
        reparsed = _parse(header_type, [serialized])
        assert _parsed_json(header_type, reparsed) == _parsed_json(header_type, parsed)


@pytest.mark.parametrize("case", _cases("serialisation-tests"))
def test_serialise(case: dict[str, Any] | None) -> None:
    corpora_dir()
    assert case is not None
    header_type = case["header_type"]
    if case.get("must_fail"):
        with pytest.raises(sf.SerializeError):
            _serialize(header_type, case["expected"])
        return
    assert _serialize(header_type, case["expected"]) == ", ".join(case["canonical"])


def test_duplicate_keys_last_wins_by_default_and_refused_on_request() -> None:
    assert sf.parse_dictionary("a=1, b=2, a=3") == {"a": sf.Item(3), "b": sf.Item(2)}
    with pytest.raises(sf.DuplicateKeyError):
        sf.parse_dictionary("a=1, b=2, a=3", reject_duplicate_keys=True)


def test_field_lines_join_with_comma() -> None:
    assert sf.parse_list(["a", "b;x"]) == [
        sf.Item(sf.Token("a")),
        sf.Item(sf.Token("b"), {"x": True}),
    ]


def test_long_inputs_parse_in_linear_time() -> None:
    # Inputs that make a backtracking regex go exponential: unterminated strings and
    # display strings, long runs of escapes.
    for bad in ['"' + "a\\\\" * 20000, '%"' + "a%20" * 20000, ":" + "A" * 80000]:
        with pytest.raises(sf.ParseError):
            sf.parse_item(bad)


def test_signature_input_shape() -> None:
    text = (
        'gpushield=("@method" "@authority" "@path" "@query" "content-digest" "content-type")'
        ';created=1618884473;expires=1618884773;nonce="abcdefghijklmnop";keyid="k";alg="hmac-sha256";tag="gpushield"'
    )
    parsed = sf.parse_dictionary(text)
    member = parsed["gpushield"]
    assert isinstance(member, sf.InnerList)
    assert member.items[0].value == "@method"
    assert sf.serialize_dictionary(parsed) == text

