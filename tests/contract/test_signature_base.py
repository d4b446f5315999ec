"""RFC 9421 §2 signature bases: every vector byte for byte, and the §2.1–2.4 examples."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from corpora_path import corpora_dir
from gpushield_wire import structured_fields as sf
from gpushield_wire.signature_base import (
    KNOWN_SF_TYPES,
    ComponentError,
    HttpMessage,
    component_value,
    signature_base,
)

Parser = Callable[..., tuple[HttpMessage, bytes]]


def components_of(label: str, signature_input: str) -> tuple[list[sf.Item], str]:
    member = sf.parse_dictionary(f"{label}={signature_input}")[label]
    assert isinstance(member, sf.InnerList)
    return list(member.items), sf.serialize_inner_list(member)


@pytest.mark.corpus
def test_vector_base(rfc9421_record: Any) -> None:
    corpora_dir()
    record = rfc9421_record
    if record.message is None:
        pytest.skip("record prints a Signature-Input only; the RFC gives no base for it")
    components, params_text = components_of(record.label, record.signature_input)
    assert params_text == record.signature_input  # the RFC's text is canonical
    ours = signature_base(record.message, components, params_text)
    if record.base_matches:
        assert ours == record.expected_base
    else:
        # B.4: method/authority changed, or the two Accept lines swapped.
        assert ours != record.expected_base
    if record.forwarded is not None:
        with pytest.raises(AssertionError):
            assert signature_base(record.forwarded, components, params_text) == (
                record.expected_base
            )


# -- §2.1–2.4 component examples from rfc9421-all-figures.json -----------------------------

# base-lines figure (by its line in the RFC source) → message figure and how to read it.
_EXAMPLES: dict[int, tuple[int, dict[str, Any]]] = {
    329: (316, {}),
    346: (340, {}),
    392: (386, {}),
    398: (386, {"sf_types": {**KNOWN_SF_TYPES, "example-dict": "dictionary"}}),
    424: (418, {}),
    464: (451, {}),
    470: (451, {}),
    476: (458, {}),
    584: (571, {}),
    607: (594, {}),
    631: (618, {}),
    658: (645, {"scheme": "http"}),
    688: (675, {}),
    706: (694, {}),
    725: (712, {}),
    744: (731, {}),
    767: (754, {}),
    790: (777, {}),
    809: (796, {}),
    862: (847, {}),
    884: (873, {}),
    920: (907, {}),
    1233: (1217, {}),
}
_LINE = re.compile(
    r'("(?:[^"\\]|\\.)*"(?:;[a-z*][a-z0-9_.*-]*(?:=(?:"(?:[^"\\]|\\.)*"|[^;:]+))?)*):(?: (.*)|$)'
)


def _figures() -> dict[int, dict[str, Any]]:
    path = corpora_dir() / "rfc9421" / "rfc9421-all-figures.json"
    return {f["line"]: f for f in json.loads(path.read_text(encoding="utf-8"))}


@pytest.mark.corpus
@pytest.mark.parametrize("base_line", sorted(_EXAMPLES))
def test_component_examples(base_line: int, http_message: Parser) -> None:
    figures = _figures()
    message_line, options = _EXAMPLES[base_line]
    message_text = figures[message_line]["text"].replace("(SP)", " ")
    if not message_text.startswith(("GET", "POST", "CONNECT", "OPTIONS", "HTTP/")):
        message_text = "GET / HTTP/1.1\n" + message_text  # a bare header fragment
    message, _ = http_message(message_text, scheme=options.get("scheme", "https"))
    sf_types = options.get("sf_types", KNOWN_SF_TYPES)
    text = figures[base_line]["text"].replace("(SP)", " ")
    lines = text.split("\n")
    if lines[-1].startswith('"@signature-params": '):
        components, params_text = components_of("x", lines[-1].split(": ", 1)[1])
        assert signature_base(message, components, params_text, sf_types=sf_types) == (
            text.encode()
        )
        return
    for line in lines:
        m = _LINE.fullmatch(line)
        assert m is not None, line
        component = sf.parse_item(m.group(1))
        assert component_value(component, message, sf_types) == (m.group(2) or "")


@pytest.mark.corpus
def test_query_absent_is_a_lone_question_mark(http_message: Parser) -> None:
    message, _ = http_message("GET /path HTTP/1.1\nHost: www.example.com")
    assert component_value(sf.Item("@query"), message) == "?"
    assert component_value(sf.Item("@request-target"), message) == "/path"
    assert component_value(sf.Item("@target-uri"), message) == "https://www.example.com/path"


@pytest.mark.corpus
def test_trailers_are_unsupported(http_message: Parser) -> None:
    message, _ = http_message(_figures()[488]["text"])
    assert component_value(sf.Item("@status"), message) == "200"
    with pytest.raises(ComponentError, match="trailer"):
        component_value(sf.Item("expires", {"tr": True}), message)


# -- refusals -------------------------------------------------------------------------------

REQUEST = HttpMessage(
    method="POST",
    scheme="https",
    authority="Example.COM:443",
    path="/foo",
    query="a=1&b=2&b=3",
    headers=[("Host", "example.com"), ("Content-Type", "application/json"), ("X-A", "1")],
)


def _base(*components: sf.Item, message: HttpMessage = REQUEST) -> bytes:
    return signature_base(message, components, "()")


def test_authority_is_lowercased_and_default_port_dropped() -> None:
    assert component_value(sf.Item("@authority"), REQUEST) == "example.com"
    http = HttpMessage(scheme="http", authority="h:80")
    assert component_value(sf.Item("@authority"), http) == "h"
    other = HttpMessage(scheme="https", authority="h:8443")
    assert component_value(sf.Item("@authority"), other) == "h:8443"


@pytest.mark.parametrize(
    "components",
    [
        [sf.Item("content-length")],  # absent field
        [sf.Item("@method"), sf.Item("@method")],  # listed twice
        [
            sf.Item("x-a", {"sf": True, "bs": True}),
        ],  # bs with sf
        [sf.Item("x-a", {"key": "a", "x": True})],  # unknown parameter
        [sf.Item("x-a", {"sf": True})],  # structured type unknown
        [sf.Item("Content-Type")],  # not lowercase
        [sf.Item(sf.Token("@method"))],  # not an sf-string
        [sf.Item("@signature-params")],  # never a covered component
        [sf.Item("@unknown")],
        [sf.Item("@status")],  # a request has none
        [sf.Item("@method", {"req": True})],  # no related request
        [sf.Item("@query-param", {"name": "b"})],  # repeated parameter
        [sf.Item("@query-param", {"name": "c"})],  # absent parameter
        [sf.Item("@query-param")],  # no name
        [sf.Item("@path", {"name": "x"})],  # name only on @query-param
        [sf.Item("x-a", {"key": "zz"})],  # absent dictionary member
    ],
)
def test_underivable_components_are_errors(components: list[sf.Item]) -> None:
    with pytest.raises(ComponentError):
        _base(*components)


def test_duplicate_detection_ignores_parameter_order() -> None:
    message = HttpMessage(headers=[("example-dict", "a=1")])
    one = sf.Item("example-dict", {"key": "a", "sf": True})
    two = sf.Item("example-dict", {"sf": True, "key": "a"})
    with pytest.raises(ComponentError, match="twice"):
        signature_base(message, [one, two], "()")


def test_values_cannot_smuggle_lines() -> None:
    for evil in ['/foo\n"@method": GET', "/f\x00o", "/caf\u00e9"]:
        message = HttpMessage(method="POST", path=evil)
        with pytest.raises(ComponentError):
            _base(sf.Item("@path"), message=message)
    with pytest.raises(ComponentError):
        signature_base(REQUEST, [sf.Item("@method")], '()\n"@method": GET')


def test_field_lines_trimmed_and_joined_and_mapping_headers() -> None:
    lines = HttpMessage(headers=[("Accept", " a/b "), ("accept", "\tc/d")])
    assert component_value(sf.Item("accept"), lines) == "a/b, c/d"
    mapping = HttpMessage(headers={"accept": " a/b, c/d "})
    assert component_value(sf.Item("accept"), mapping) == "a/b, c/d"


def test_empty_path_is_slash() -> None:
    assert component_value(sf.Item("@path"), HttpMessage(method="GET", path="")) == "/"
