"""Every JWS test vector in the corpora, through the gate's JWS layer (`verify_jws`).

Wycheproof `json_web_signature_test.json` and `json_web_key_test.json` (C2SP), the JOSE
cookbook (RFC 7520, RFC 8037) and the RFC 7515/7519 examples: each group's keys become one
trusted key set whose algorithm allowlist is the algorithms its keys declare — the way an
operator configures an issuer. Every "invalid" vector must be refused with a 401 catalog
code; every "valid" one accepted, except the few listed in PROFILE_REFUSALS, each with the
rule of ours that refuses it and why that rule is right. The cookbook's JSON serialisations
(no compact form) are sent the only way one could reach the gate, as an Authorization
header's bearer credential: the bearer stage's parsing, then the JWS layer.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.corpora_path import corpora_dir

from gpushield_edge.runtime_local.crypto import LocalCrypto
from gpushield_edge.stages import bearer
from gpushield_edge.tokens.jwk import JwkError, KeySet, build_keyset
from gpushield_edge.tokens.verifier import verify_jws
from gpushield_wire.errors import CATALOG, ProblemError

pytestmark = pytest.mark.corpus

CRYPTO = LocalCrypto(b"k" * 32)

# Vectors Wycheproof labels "valid" that gpushield's profile refuses on purpose.
PROFILE_REFUSALS = {
    ("json_web_signature", 346): "RFC 8725 §3.1: the key is declared alg PS256 (its JWK 'alg'),"
    " the token uses PS384; a key is used with exactly one algorithm",
    ("json_web_signature", 350): "same as 346 (the key_ops variant of RFC 7520 Figure 20)",
    ("json_web_signature", 372): "RFC 7515 §2/§7.1: '?' is not base64url; the MAC only matches"
    " if a parser drops the character, i.e. verifies bytes other than the ones received",
    ("json_web_signature", 373): "same as 372, in the payload segment",
    ("json_web_signature", 347): "the key declares alg 'ES521', which is no registered JWS"
    " algorithm (RFC 7518 §3.1 calls P-521 ECDSA 'ES512'): a key bound to an unknown"
    " algorithm is not loaded, so nothing verifies under it",
    ("json_web_signature", 351): "same as 347 (the key_ops variant of RFC 7520 Figure 27)",
}


@dataclass(frozen=True)
class Vector:
    source: str
    case: Any
    comment: str
    token: Any
    keyset: KeySet | None  # None: the key set itself was refused (no key trusted)
    allowed: tuple[str, ...]
    valid: bool


def _group_keys(group: dict[str, Any]) -> list[dict[str, Any]]:
    """The verification key(s) of a Wycheproof group: `public`, else `private` (oct keys)."""
    if "public" in group:
        key = group["public"]
        return key.get("keys", [key]) if isinstance(key, dict) else []
    private = group.get("private", {})
    keys = private.get("keys", [private])
    return [dict(k) for k in keys]


def _keyset(keys: list[dict[str, Any]]) -> tuple[KeySet | None, tuple[str, ...]]:
    allowed = tuple(sorted({k["alg"] for k in keys if isinstance(k.get("alg"), str)}))
    if not allowed:  # a key without alg: the issuer allows what its type implies
        allowed = ("ES256", "RS256")
    try:
        keyset = build_keyset(keys, [a for a in allowed if a != "none"], allow_symmetric=True)
    except JwkError:
        return None, allowed
    return keyset, allowed


def wycheproof_vectors(root: Path, name: str) -> Iterator[Vector]:
    document = json.loads((root / "jwt/wycheproof" / f"{name}_test.json").read_text())
    for group in document["testGroups"]:
        keyset, allowed = _keyset(_group_keys(group))
        for test in group["tests"]:
            yield Vector(name, int(test["tcId"]), test["comment"], test["jws"], keyset, allowed,
                         test["result"] == "valid")


def _cookbook_keys(example: dict[str, Any]) -> list[dict[str, Any]]:
    """An example's key(s), each bound to its algorithm (4.8 signs with three keys)."""
    keys, algs = example["key"], example["alg"]
    if isinstance(keys, dict):
        keys, algs = [keys], [algs]
    bound = [dict(key) for key in keys]
    for key, alg in zip(bound, algs, strict=True):
        key.setdefault("alg", alg)
    return bound


def cookbook_vectors(root: Path) -> Iterator[Vector]:
    base = root / "jwt/jose-cookbook"
    for path in [*sorted((base / "jws").glob("*.json")), base / "curve25519/jws.json"]:
        document = json.loads(path.read_text())
        keyset, allowed = _keyset(_cookbook_keys(document["input"]))
        compact = document["output"].get("compact")
        if compact is None:
            # 4.6-4.8 exist only as JSON serialisations (unprotected headers, several
            # signatures): a bearer token is compact, so the JSON forms must be refused.
            yield Vector(path.name, "json", document["title"], document["output"]["json"],
                         keyset, allowed, False)
            continue
        detached = "." in compact and compact.split(".")[1] == ""
        yield Vector(path.name, "compact", document["title"], compact, keyset, allowed,
                     not detached)  # 4.5: detached content is not a token we accept
        # Tampered variants: each must be refused.
        head, payload, signature = compact.split(".")
        flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
        for label, token in (("payload-swapped", f"{head}.{payload[::-1]}.{signature}"),
                             ("signature-flipped", f"{head}.{payload}.{flipped}"),
                             ("signature-stripped", f"{head}.{payload}."),
                             ("alg-none", f"eyJhbGciOiJub25lIn0.{payload}.")):
            yield Vector(path.name, label, document["title"], token, keyset, allowed, False)


def all_vectors() -> list[Vector]:
    root = corpora_dir()
    return [*wycheproof_vectors(root, "json_web_signature"),
            *wycheproof_vectors(root, "json_web_key"), *cookbook_vectors(root)]


def outcome(vector: Vector) -> str:
    """'accepted' or the refusal's catalog code, as the gate's own code decides it."""
    keyset = KeySet() if vector.keyset is None else vector.keyset  # no key trusted
    try:
        if isinstance(vector.token, str):
            token = vector.token
        else:
            # A JSON serialisation can only reach the gate as the credential of an
            # Authorization header: it goes through the bearer stage's parsing first.
            token = bearer.token_of(
                "Bearer " + json.dumps(vector.token, separators=(",", ":")))
        asyncio.run(verify_jws(token, keyset, vector.allowed, CRYPTO))
    except ProblemError as error:
        code = error.code
    else:
        return "accepted"
    assert CATALOG[code].status == 401
    return code


def test_every_invalid_jws_is_refused_and_every_valid_one_accepted() -> None:
    vectors = all_vectors()
    invalid_accepted, valid_refused, by_design, codes = [], [], [], Counter[str]()
    # "invalid" vectors byte-identical to a "valid" one under the same key: the corpus
    # contradicts itself (Wycheproof 367/370 "invalidBase64Padding" lost their padding
    # upstream and are now exactly 357 "ValidMac"); no verifier can satisfy both labels.
    valid_tokens = {(v.source, v.token, id(v.keyset)) for v in vectors
                    if v.valid and isinstance(v.token, str)}
    contradictions = sorted(v.case for v in vectors if not v.valid and isinstance(v.token, str)
                            and (v.source, v.token, id(v.keyset)) in valid_tokens)
    for vector in vectors:
        if not vector.valid and vector.case in contradictions:
            continue
        result = outcome(vector)
        codes[result] += 1
        if vector.valid and result != "accepted":
            if (vector.source, vector.case) in PROFILE_REFUSALS:
                by_design.append((vector.case, result))
            else:
                valid_refused.append((vector.source, vector.case, vector.comment, result))
        if not vector.valid and result == "accepted":
            invalid_accepted.append((vector.source, vector.case, vector.comment))
    print(f"\n{len(vectors)} JWS vectors: {len(invalid_accepted)} invalid accepted, "
          f"{len(valid_refused)} valid refused; {len(by_design)} refused by profile "
          f"rule ({', '.join(str(c) for c, _ in by_design)}); {len(contradictions)} "
          f"self-contradictory vectors not counted ({contradictions}); codes {dict(codes)}")
    assert invalid_accepted == []
    assert valid_refused == []
    assert len(by_design) == len(PROFILE_REFUSALS)
    assert contradictions == [367, 370]
