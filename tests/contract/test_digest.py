"""RFC 9530 Content-Digest against the RFC's own samples and message examples."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from corpora_path import corpora_dir
from gpushield_wire.digest import content_digest, parse_content_digest, verify_content_digest
from gpushield_wire.errors import ProblemError

HELLO = b'{"hello": "world"}'


def _vectors() -> dict[str, Any]:
    path = corpora_dir() / "rfc9421" / "rfc9530-content-digest-vectors.json"
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _code(value: str | None, body: bytes, **kwargs: Any) -> str | None:
    try:
        verify_content_digest(value, body, **kwargs)
    except ProblemError as error:
        return error.code
    return None


@pytest.mark.corpus
def test_appendix_d_samples() -> None:
    samples = _vectors()["sample_digest_values_appendix_D"]
    body = samples["input"].encode()
    assert body == HELLO
    assert content_digest(body) == f"sha-256=:{samples['sha-256']}:"
    assert content_digest(body, ("sha-512",)) == f"sha-512=:{samples['sha-512']}:"
    both = content_digest(body, ("sha-256", "sha-512"))
    assert parse_content_digest(both) == {
        "sha-256": base64.b64decode(samples["sha-256"]),
        "sha-512": base64.b64decode(samples["sha-512"]),
    }
    assert _code(both, body) is None


@pytest.mark.corpus
@pytest.mark.parametrize("algorithm", ["md5", "sha", "unixsum", "unixcksum", "adler", "crc32c"])
def test_deprecated_algorithms_are_never_accepted(algorithm: str) -> None:
    samples = _vectors()["sample_digest_values_appendix_D"]
    value = f"{algorithm}=:{samples[algorithm]}:"
    assert _code(value, HELLO) == "digest_alg_unsupported"
    assert _code(value, HELLO, accepted=(algorithm, "sha-256")) == "digest_alg_unsupported"
    with pytest.raises(ValueError, match="unsupported"):
        content_digest(HELLO, (algorithm,))


@pytest.mark.corpus
def test_rfc9421_test_messages() -> None:
    vectors = _vectors()
    request = vectors["rfc9421_test_request"]
    assert _code(request["content-digest"], request["body"].encode()) is None
    # The printed B.2 test-response digest is wrong upstream (httpwg PR #2669): we flag it.
    response = vectors["rfc9421_test_response"]
    assert _code(response["content-digest"], response["body"].encode()) == "digest_mismatch"
    fixed = f"sha-512=:{response['correct_sha512']}:"
    assert _code(fixed, response["body"].encode()) is None


def _message_examples() -> list[Any]:
    try:
        examples = _vectors()["message_examples"]
    except pytest.skip.Exception:
        return [pytest.param(None, id="corpus-missing")]
    return [
        pytest.param(e, id=f"line{e['rfc_md_line']}-{e['field']}-{e['alg']}-{i}")
        for i, e in enumerate(examples)
    ]


def _strict_base64(text: str) -> bool:
    try:
        return base64.b64encode(base64.b64decode(text, validate=True)).decode() == text
    except ValueError:
        return False


@pytest.mark.corpus
@pytest.mark.parametrize("example", _message_examples())
def test_message_examples(example: dict[str, Any] | None) -> None:
    corpora_dir()
    assert example is not None
    body = example["message"].split("\n\n", 1)[1].encode()
    value = f"{example['alg']}=:{example['value']}:"
    # The RFC's examples carry a trailing LF (Content-Length 19 for an 18-byte JSON body).
    with_lf = body + b"\n"
    if not _strict_base64(example["value"]):
        # Three RFC 9530 examples print `…FabDg==` (two pad characters for a 32-byte
        # digest): invalid base64, so a strict sf-binary parser refuses the field.
        assert _code(value, with_lf) == "digest_malformed"
        return
    if example["digest_of_body_plus_LF_matches"]:
        assert _code(value, with_lf) is None
        assert _code(value, body) == "digest_mismatch"
    else:
        # Repr-Digest of an encoded or partial representation: not these message bytes.
        assert _code(value, with_lf) == "digest_mismatch"


def test_refusals() -> None:
    good = content_digest(HELLO, ("sha-256", "sha-512"))
    assert _code(None, HELLO) == "digest_missing"
    for malformed in [
        "",
        "sha-256",
        "sha-256=abc",
        'sha-256="abc"',
        "sha-256=:!!:",
        "SHA-256=:AA==:",
        "sha-256=(:AA==:)",
        "sha-256=:AA==:, sha-256=:AA==:",
    ]:
        assert _code(malformed, HELLO) == "digest_malformed", malformed
    assert _code("sha-384=:AA==:", HELLO) == "digest_alg_unsupported"
    assert _code(good, HELLO + b" ") == "digest_mismatch"
    # Several accepted algorithms: all must match, even if one does.
    sha256 = base64.b64encode(hashlib.sha256(HELLO).digest()).decode()
    wrong512 = base64.b64encode(hashlib.sha512(b"other").digest()).decode()
    assert _code(f"sha-256=:{sha256}:, sha-512=:{wrong512}:", HELLO) == "digest_mismatch"
    # …unless the caller does not accept the failing one.
    assert _code(f"sha-256=:{sha256}:, sha-512=:{wrong512}:", HELLO, accepted=("sha-256",)) is None
    # A truncated digest is a mismatch, not a crash.
    assert _code(f"sha-256=:{sha256[:8]}:", HELLO) == "digest_mismatch"
    # Unknown algorithms next to an accepted one are ignored; parameters are ignored.
    assert _code(f"md5=:AA==:, sha-256=:{sha256}:;x=1", HELLO) is None


def test_tampered_copies_of_a_good_value_fail() -> None:
    good = content_digest(HELLO)
    raw = bytearray(base64.b64decode(good.split(":")[1]))
    for index in range(len(raw)):
        tampered = raw.copy()
        tampered[index] ^= 0x01
        value = f"sha-256=:{base64.b64encode(bytes(tampered)).decode()}:"
        assert _code(value, HELLO) == "digest_mismatch"


def test_custom_hasher_is_used() -> None:
    calls: list[tuple[str, int]] = []

    def hasher(algorithm: str, body: bytes) -> bytes:
        calls.append((algorithm, len(body)))
        return hashlib.new(algorithm.replace("-", ""), body).digest()

    value = content_digest(HELLO, ("sha-512",), hasher=hasher)
    verify_content_digest(value, HELLO, hasher=hasher)
    assert calls == [("sha-512", 18), ("sha-512", 18)]
