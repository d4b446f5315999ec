"""A real local gate (sqlite key guard, AES-GCM sealed secrets, JSONL audit) driven in-process,
and requests signed by the real SDK signer, for the gate's refusal tests."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gpushield import SignatureAuth
from gpushield_edge.http import GateRequest, GateResponse
from gpushield_edge.keyguard import KeyLimits
from gpushield_edge.runtime_local.app import LocalGate, load_config_document
from gpushield_edge.runtime_local.state import StateDir
from gpushield_wire import algorithms, credentials

MODEL = "summarize"
GATE_URL = "http://gate.test"


@dataclass
class GateHarness:
    local: LocalGate
    state: StateDir
    key_id: str
    secret: str
    loop: asyncio.AbstractEventLoop

    def handle(self, request: GateRequest) -> GateResponse:
        return self.loop.run_until_complete(self.local.gate.handle(request))

    def state_snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every guard table: a refused request must leave all of it unchanged."""
        query = self.local.core.storage.query
        return {
            table: query(f"SELECT * FROM {table} ORDER BY 1, 2")  # noqa: S608 - fixed names
            for table in ("keys", "buckets", "nonces", "leases", "idempotency")
        }

    def new_key(self, limits: KeyLimits | None = None, scopes: tuple[str, ...] = (MODEL,)
                ) -> tuple[str, str]:
        secret = credentials.new_secret()
        record = self.loop.run_until_complete(self.local.core.create_key(
            key_id=credentials.new_key_id(), alg=algorithms.HMAC_SHA256, key_material=secret,
            scopes=scopes, limits=limits or KeyLimits(), expires_at=None, now=time.time(),
        ))
        return record.key_id, credentials.format_secret(secret)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[GateHarness]:
    document = load_config_document(None)
    # Nothing listens here: refusal tests must never reach a backend, and if one did the
    # answer would be backend_unavailable, which every test would notice.
    document["models"][MODEL]["backend"]["base_url"] = "http://127.0.0.1:9"
    loop = asyncio.new_event_loop()
    state = StateDir(tmp_path / "state")
    local = LocalGate.build(document, state, {})
    secret = credentials.new_secret()
    record = loop.run_until_complete(local.core.create_key(
        key_id=credentials.new_key_id(), alg=algorithms.HMAC_SHA256, key_material=secret,
        scopes=(MODEL,), limits=KeyLimits(), expires_at=None, now=time.time(),
    ))
    yield GateHarness(local, state, record.key_id, credentials.format_secret(secret), loop)
    loop.run_until_complete(local.aclose())
    loop.close()


def body_of(document: Any) -> bytes:
    return json.dumps(document).encode()


def default_body(prompt: str = "Summarise this, please.") -> bytes:
    return body_of({"input": {"prompt": prompt, "max_tokens": 16}})


def signed_request(
    harness: GateHarness,
    *,
    body: bytes | None = None,
    model: str = MODEL,
    key: tuple[str, str] | None = None,
    clock: Callable[[], float] = time.time,
    headers: dict[str, str] | None = None,
    query: str = "",
) -> GateRequest:
    """Signs with the SDK's own `httpx.Auth` and converts to the gate's request type."""
    key_id, secret = key or (harness.key_id, harness.secret)
    url = f"{GATE_URL}/v1/models/{model}/infer" + (f"?{query}" if query else "")
    request = httpx.Request(
        "POST", url, content=default_body() if body is None else body,
        headers={"content-type": "application/json", **(headers or {})},
    )
    signed = next(SignatureAuth(key_id, secret, clock=clock).sync_auth_flow(request))
    return to_gate_request(signed)


def to_gate_request(request: httpx.Request) -> GateRequest:
    headers, size = GateRequest.fold_headers(request.headers.multi_items())
    raw = request.url.raw_path.decode()
    path, _, query = raw.partition("?")
    return GateRequest(
        method=request.method, scheme="http", authority=request.url.netloc.decode().lower(),
        path=path, query=query, headers=headers, body=request.content, header_bytes=size,
        client_ip="127.0.0.1",
    )


def with_headers(request: GateRequest, **changes: str | None) -> GateRequest:
    headers = dict(request.headers)
    for name, value in changes.items():
        name = name.replace("_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return GateRequest(request.method, request.scheme, request.authority, request.path,
                       request.query, headers, request.body, request.header_bytes,
                       request.client_ip)


def problem_of(response: GateResponse) -> dict[str, Any]:
    assert ("content-type", "application/problem+json") in response.headers
    document = json.loads(response.body)
    assert isinstance(document, dict)
    return document
