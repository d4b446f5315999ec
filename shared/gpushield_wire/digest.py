"""RFC 9530 Content-Digest: binding the request body to the signature.

RFC 9421 signs header fields, not content (§7.2.8). Covering `content-digest` in the
signature and checking the digest against the received bytes is what makes the body part of
what was signed; the two checks are separate and both must pass.

Only SHA-256 and SHA-512 are ever accepted: RFC 9530 §5 marks md5, sha, unixsum, unixcksum,
adler and crc32c as deprecated or insecure, and a digest is only as strong as its weakest
accepted algorithm. When several accepted algorithms are present, every one must match: a
message where one digest matches and another does not has been tampered with.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Iterable

from .errors import ProblemError
from .structured_fields import Item, ParseError, parse_dictionary

__all__ = [
    "SUPPORTED_ALGORITHMS",
    "Hasher",
    "check_digests",
    "checked_algorithms",
    "content_digest",
    "parse_content_digest",
    "verify_content_digest",
]

Hasher = Callable[[str, bytes], bytes]
"""`hasher(algorithm, body)`; lets the Workers runtime hash large bodies with WebCrypto."""

# RFC 9530 §7.2 registry names → hashlib names; nothing else is ever accepted.
SUPPORTED_ALGORITHMS: dict[str, str] = {"sha-256": "sha256", "sha-512": "sha512"}


def _hash(algorithm: str, body: bytes, hasher: Hasher | None) -> bytes:
    if hasher is not None:
        return hasher(algorithm, body)
    return hashlib.new(SUPPORTED_ALGORITHMS[algorithm], body).digest()


def content_digest(
    body: bytes, algorithms: Iterable[str] = ("sha-256",), *, hasher: Hasher | None = None
) -> str:
    """The Content-Digest field value (a Dictionary of Byte Sequences, RFC 9530 §2)."""
    members = []
    for algorithm in algorithms:
        if algorithm not in SUPPORTED_ALGORITHMS:
            raise ValueError(f"unsupported digest algorithm {algorithm!r}")
        encoded = base64.b64encode(_hash(algorithm, body, hasher)).decode("ascii")
        members.append(f"{algorithm}=:{encoded}:")
    if not members:
        raise ValueError("at least one digest algorithm is required")
    return ", ".join(members)


def parse_content_digest(value: str) -> dict[str, bytes]:
    """Algorithm → digest for every member, whatever the algorithm.

    A repeated algorithm is refused rather than "last one wins" (RFC 8941 §4.2.2 allows
    either): two different sha-256 values in one field can only be an attack or a bug.
    Parameters on members carry no meaning in RFC 9530 and are ignored.
    """
    try:
        members = parse_dictionary(value, reject_duplicate_keys=True)
    except ParseError:
        raise ProblemError("digest_malformed") from None
    digests: dict[str, bytes] = {}
    for algorithm, member in members.items():
        if not isinstance(member, Item) or not isinstance(member.value, bytes):
            raise ProblemError("digest_malformed")
        digests[algorithm] = member.value
    if not digests:
        raise ProblemError("digest_malformed")
    return digests


def verify_content_digest(
    value: str | None,
    body: bytes,
    *,
    accepted: Iterable[str] = ("sha-256", "sha-512"),
    hasher: Hasher | None = None,
) -> None:
    """Raises ProblemError unless `value` carries a matching digest of `body`.

    Codes: digest_missing, digest_malformed, digest_alg_unsupported (no accepted algorithm
    present), digest_mismatch (any accepted algorithm present that does not match).
    """
    if value is None:
        raise ProblemError("digest_missing")
    digests = parse_content_digest(value)
    check_digests(digests, {name: _hash(name, body, hasher)
                            for name in checked_algorithms(digests, accepted)})


def checked_algorithms(
    digests: dict[str, bytes], accepted: Iterable[str] = ("sha-256", "sha-512")
) -> list[str]:
    """The accepted algorithms present in a parsed field; refuses a field with none."""
    checked = [name for name in accepted if name in SUPPORTED_ALGORITHMS and name in digests]
    if not checked:
        raise ProblemError("digest_alg_unsupported")
    return checked


def check_digests(digests: dict[str, bytes], computed: dict[str, bytes]) -> None:
    """Every computed digest must equal the one received (see `verify_content_digest`)."""
    for algorithm, actual in computed.items():
        # compare_digest: a verifier must not leak, through timing, how much of a digest
        # an attacker got right.
        if not hmac.compare_digest(actual, digests[algorithm]):
            raise ProblemError("digest_mismatch")
