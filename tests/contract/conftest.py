"""Shared helpers for the contract tests: corpus records, a test CryptoPort, an HTTP parser.

Helpers reach tests as fixtures (and, for the RFC 9421 records, through
`pytest_generate_tests`), so no test module imports this file by name.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

# tests/ holds `corpora_path.py`; this directory has no __init__.py, so put tests/ on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corpora_path import corpora_dir, corpora_path
from gpushield_wire.signature_base import HttpMessage

# -- a CryptoPort backed by `cryptography` -------------------------------------------------


class CryptographyPort:
    def ed25519_sign(self, private_key: bytes, data: bytes) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(private_key).sign(data)

    def ed25519_verify(self, public_key: bytes, data: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
        except InvalidSignature:
            return False
        return True


@pytest.fixture(scope="session")
def crypto() -> CryptographyPort:
    return CryptographyPort()


# -- a small HTTP/1.1 message parser for the RFC's figures (test support only) -------------


def parse_http_message(text: str, *, scheme: str = "https") -> tuple[HttpMessage, bytes]:
    """Request or response text → (HttpMessage, body). Continuation lines (obs-fold) stay
    in the value as LF + indentation, for the package to unfold as RFC 9421 §2.1 says."""
    head, _, body = text.partition("\n\n")
    start, *lines = head.split("\n")
    headers: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in (" ", "\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + "\n" + line)
            continue
        name, _, value = line.partition(":")
        headers.append((name, value))
    host = next((v.strip() for n, v in headers if n.lower() == "host"), None)
    if start.startswith("HTTP/"):
        status = int(start.split(" ")[1])
        return HttpMessage(headers=headers, status=status), body.encode()
    method, target, _version = start.split(" ")
    path: str | None
    query: str | None = None
    request_target: str | None = None
    authority = host
    if "://" in target:  # absolute-form
        request_target = target
        scheme, rest = target.split("://", 1)
        authority, _slash, path_query = rest.partition("/")
        path, question, raw_query = ("/" + path_query).partition("?")
        query = raw_query if question else None
    elif target.startswith("/"):  # origin-form
        path, question, raw_query = target.partition("?")
        query = raw_query if question else None
    else:  # authority-form (CONNECT) or asterisk-form (OPTIONS *)
        request_target = target
        path = None
    message = HttpMessage(
        method=method,
        scheme=scheme,
        authority=authority,
        path=path,
        query=query,
        headers=headers,
        request_target=request_target,
    )
    return message, body.encode()


@pytest.fixture(scope="session")
def http_message() -> Callable[..., tuple[HttpMessage, bytes]]:
    return parse_http_message


# -- RFC 9421 corpus -----------------------------------------------------------------------


def _load(name: str) -> Any:
    return json.loads((corpora_path() / "rfc9421" / name).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Rfc9421Record:
    """One record of rfc9421-signature-vectors.json with the message its base is built from.

    `message` is None when the record has no base (illustrative header only).
    `base_matches` is False for the B.4 transformations that must no longer verify.
    """

    index: int
    raw: dict[str, Any]
    message: HttpMessage | None
    base_matches: bool
    forwarded: HttpMessage | None = None  # §4.3's proxy-altered copy, which must differ

    @property
    def label(self) -> str:
        return str(self.raw["label"])

    @property
    def signature_input(self) -> str:
        return str(self.raw["signature_input"])

    @property
    def expected_base(self) -> bytes:
        return str(self.raw["signature_base"]).encode()

    @property
    def signature(self) -> bytes:
        return base64.b64decode(self.raw["signature"])

    @property
    def keyid(self) -> str:
        return str(self.raw["keyid"])


_B24_WRONG = (
    "JlEy2bfUz7WrWIjc1qV6KVLpdr/7L5/L4h7Sxvh6sNHpDQWDCL+GauFQWcZBvVDhiyOnAQsxzZFYwi0wDH+1pw=="
)
_B24_RIGHT = (
    "mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ=="
)


def _figure(figures: list[dict[str, Any]], line: int) -> str:
    return next(str(f["text"]) for f in figures if f["line"] == line)


def rfc9421_records() -> list[Rfc9421Record]:
    """Pairs each vector with its message. The B.2 records print only the signature fields;
    their message is Appendix B.2's test-request (line 2537) or test-response (2553)."""
    vectors = _load("rfc9421-signature-vectors.json")
    figures = _load("rfc9421-all-figures.json")
    test_request = _figure(figures, 2537)
    # Known erratum (httpwg PR #2669): the printed test-response digest is not that of its
    # body; sig-b24's base uses the right one, so the message is corrected before use.
    test_response = _figure(figures, 2553).replace(_B24_WRONG, _B24_RIGHT)
    reqres_request, _ = parse_http_message(_figure(figures, 984))
    original_client = _figure(figures, 1580)
    records = []
    for index, raw in enumerate(vectors):
        line, text = raw["line"], raw["message"]
        forwarded = None
        if raw["signature_base"] is None:
            records.append(Rfc9421Record(index, raw, None, False))
            continue
        if line in (1036, 1108):  # §2.4: a response signing parts of its request
            response, _ = parse_http_message(text)
            message = HttpMessage(
                headers=response.headers, status=response.status, request=reqres_request
            )
        elif line == 1060:  # §2.4: the signed request, printed only as a figure
            message, _ = parse_http_message(_figure(figures, 1060))
        elif raw["label"] == "sig1" and line in (1601, 1657):
            # §4.3: sig1's base is the client's original; the record's message is the
            # proxy's forwarded copy, whose @authority no longer matches.
            message, _ = parse_http_message(original_client)
            forwarded, _ = parse_http_message(text)
        elif line == 2848:  # B.3: printed only as a figure
            message, _ = parse_http_message(_figure(figures, 2848))
        elif text.startswith("Signature-Input"):  # B.2
            signed_response = '"@status"' in raw["signature_input"]
            message, _ = parse_http_message(test_response if signed_response else test_request)
        else:
            message, _ = parse_http_message(text)
        matches = raw.get("expect_message_verifies", True)
        records.append(Rfc9421Record(index, raw, message, matches, forwarded))
    return records


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "rfc9421_record" not in metafunc.fixturenames:
        return
    if not (corpora_path() / "rfc9421").is_dir():
        metafunc.parametrize("rfc9421_record", [None], ids=["corpus-missing"])
        return
    records = rfc9421_records()
    metafunc.parametrize(
        "rfc9421_record",
        records,
        ids=[f"{r.index:02d}-{r.label}-line{r.raw['line']}" for r in records],
    )


# -- keys (RFC 9421 Appendix B.1) -----------------------------------------------------------


def _key_path(name: str) -> Path:
    return corpora_dir() / "rfc9421" / "keys" / name


def load_private_key(keyid: str) -> Any:
    pem = _key_path(f"{keyid}.private.pem").read_bytes()
    return serialization.load_pem_private_key(pem, password=None)


def load_public_key(keyid: str) -> Any:
    # Handles PKCS#1 ("RSA PUBLIC KEY", B.1.1) and SPKI alike.
    return serialization.load_pem_public_key(_key_path(f"{keyid}.public.pem").read_bytes())


@pytest.fixture(scope="session")
def rfc_keys() -> dict[str, Callable[[str], Any]]:
    return {"private": load_private_key, "public": load_public_key}


@pytest.fixture(scope="session")
def shared_secret() -> bytes:
    return base64.b64decode(_key_path("test-shared-secret.b64").read_text().strip())


@pytest.fixture(scope="session")
def ed25519_keys() -> tuple[bytes, bytes]:
    """(32-byte seed, 32-byte public key) of test-key-ed25519."""
    private = load_private_key("test-key-ed25519")
    seed = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return seed, public
