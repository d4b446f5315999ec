"""A real local gate driven in-process, with requests signed by the SDK's own signer.

Self-contained on purpose (it does not borrow tests/gate's helpers), so the budget suite
stays independent of how the refusal suite organises its own fixtures.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from gpushield import SignatureAuth
from gpushield_edge.http import GateRequest, GateResponse
from gpushield_edge.keyguard import KeyLimits
from gpushield_edge.runtime_local.app import LocalGate
from gpushield_wire import algorithms, credentials

MODEL = "summarize"
GATE_URL = "http://gate.test"


@dataclass
class BudgetGate:
    local: LocalGate
    key_id: str
    secret: str
    loop: asyncio.AbstractEventLoop

    def handle(self, request: GateRequest) -> GateResponse:
        return self.loop.run_until_complete(self.local.gate.handle(request))

    def new_key(self, limits: KeyLimits) -> tuple[str, str]:
        secret = credentials.new_secret()
        record = self.loop.run_until_complete(self.local.core.create_key(
            key_id=credentials.new_key_id(), alg=algorithms.HMAC_SHA256, key_material=secret,
            scopes=(MODEL,), limits=limits, expires_at=None, now=time.time()))
        return record.key_id, credentials.format_secret(secret)

    def signed(self, headers: dict[str, str] | None = None) -> GateRequest:
        body = json.dumps({"input": {"prompt": "Summarise this, please.", "max_tokens": 16}})
        request = httpx.Request(
            "POST", f"{GATE_URL}/v1/models/{MODEL}/infer", content=body.encode(),
            headers={"content-type": "application/json", **(headers or {})})
        signed = next(SignatureAuth(self.key_id, self.secret).sync_auth_flow(request))
        folded, size = GateRequest.fold_headers(signed.headers.multi_items())
        return GateRequest(
            method="POST", scheme="http", authority=signed.url.netloc.decode().lower(),
            path=signed.url.raw_path.decode(), query="", headers=folded,
            body=signed.content, header_bytes=size, client_ip="127.0.0.1")


def problem_of(response: GateResponse) -> dict[str, Any]:
    assert ("content-type", "application/problem+json") in response.headers
    document = json.loads(response.body)
    assert isinstance(document, dict)
    return document
