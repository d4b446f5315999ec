"""The gate's token-signing key rotation: the new key signs at once, the old kid stays in the
JWKS and keeps verifying until its end, then tokens under it are refused."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from gpushield_edge.runtime_local.crypto import LocalCrypto
from gpushield_edge.tokens.issuer import GateIssuer, new_signing_key_text, parse_signing_keys
from gpushield_edge.tokens.verifier import BearerVerifier
from gpushield_wire import credentials
from gpushield_wire.errors import ProblemError

ISS = "https://gate.example.test"
CRYPTO = LocalCrypto(b"k" * 32)


def test_old_kid_verifies_until_its_end_then_not() -> None:
    old_text, new_text = new_signing_key_text(), new_signing_key_text()
    now = time.time()
    key_id = credentials.new_key_id()

    async def main() -> None:
        before = GateIssuer(ISS, ISS, old_text, CRYPTO)
        old_token, _ = await before.mint(key_id=key_id, key_version=1, scopes=("m",),
                                         ttl_s=600, now=now)
        after = GateIssuer(ISS, ISS, f"{new_text}, {old_text}@{int(now) + 900}", CRYPTO)
        new_token, _ = await after.mint(key_id=key_id, key_version=1, scopes=("m",),
                                        ttl_s=600, now=now)
        old_kid = (await before.keys())[0].kid
        new_kid = (await after.keys())[0].kid
        assert [k["kid"] for k in (await after.jwks(now))["keys"]] == [new_kid, old_kid]
        verifier = BearerVerifier([after], CRYPTO)
        for token in (old_token, new_token):
            assert (await verifier.verify(token, now + 60)).key_id == key_id
        assert [k["kid"] for k in (await after.jwks(now + 901))["keys"]] == [new_kid]
        with pytest.raises(ProblemError) as caught:
            await verifier.verify(old_token, now + 901)
        assert caught.value.code == "token_kid_unknown"

    asyncio.run(main())


@pytest.mark.parametrize("text", ["", "gts_short", "gts_" + "A" * 43 + "@12, gts_" + "B" * 43,
                                  "not-a-key"])
def test_bad_signing_key_text_is_refused_without_echo(text: str) -> None:
    with pytest.raises(ValueError, match="GPUSHIELD_TOKEN_SIGNING_KEY") as caught:
        parse_signing_keys(text)
    message = str(caught.value)
    # No entry of the text (the empty text has none), nor the key material in it, is echoed.
    for entry in re.split(r"[\s,]+", text):
        if entry:
            assert entry not in message
            assert entry.removeprefix("gts_").partition("@")[0] not in message
