"""A real local gate driven in-process; requests are signed by the SDK's own signer through
tests/support/bad_requests.py (`signed_request`, which takes a `BudgetGate` as its signer).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

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

    @property
    def base_url(self) -> str:  # with key_id and secret: the Signer signed_request takes
        return GATE_URL

    def handle(self, request: GateRequest) -> GateResponse:
        return self.loop.run_until_complete(self.local.gate.handle(request))

    def new_key(self, limits: KeyLimits) -> tuple[str, str]:
        secret = credentials.new_secret()
        record = self.loop.run_until_complete(self.local.core.create_key(
            key_id=credentials.new_key_id(), alg=algorithms.HMAC_SHA256, key_material=secret,
            scopes=(MODEL,), limits=limits, expires_at=None, now=time.time()))
        return record.key_id, credentials.format_secret(secret)
