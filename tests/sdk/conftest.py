"""A recording gate: a tiny real HTTP server that checks signatures with the contract.

It is not the gate (that lives in `edge/`): it verifies each request exactly as the gate's
authenticate stage does (`parse_signature` → `check_profile` → Content-Digest →
`request_signature_base` → `algorithms.verify`), remembers nonces, records what arrived
(idempotency key, nonce, attempt number, client connection) and answers whatever the test
scripted — 503, 503, 200; a 429 with Retry-After; any problem+json. Served by uvicorn on a
free 127.0.0.1 port in a background thread, so the SDK runs over real sockets.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gpushield.devtools.serving import listening_socket, request_body, serve_asgi
from gpushield_wire import algorithms, digest, signing, structured_fields
from gpushield_wire.credentials import format_secret
from gpushield_wire.errors import CATALOG, PROBLEM_CONTENT_TYPE, Problem, ProblemError
from gpushield_wire.policy import ModelPolicy, ParameterSpec

Message = MutableMapping[str, Any]

KEY_ID = "gsk_testtesttesttest"
SECRET_BYTES = bytes(range(32))
SECRET = format_secret(SECRET_BYTES)
ED_KEY_ID = "gsk_edkeyedkeyedkeyed"

POLICY = ModelPolicy(
    max_prompt_chars=100,
    parameters={
        "max_tokens": ParameterSpec(type="integer", minimum=1, maximum=512),
        "temperature": ParameterSpec(type="number", minimum=0, maximum=2),
    },
)


class _Ed25519Port:
    def ed25519_sign(self, private_key: bytes, data: bytes) -> bytes:  # pragma: no cover
        raise NotImplementedError

    def ed25519_verify(self, public_key: bytes, data: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def problem(
    code: str, *, status: int | None = None, headers: dict[str, str] | None = None, **extra: Any
) -> Reply:
    document = Problem(code=code, extra=extra).to_dict()
    if status is not None:
        document["status"] = status
    return Reply(
        status or CATALOG[code].status,
        json.dumps(document).encode(),
        (("content-type", PROBLEM_CONTENT_TYPE), *(headers or {}).items()),
    )


def completed(output: Any = "ok", *, replayed: bool = False) -> Reply:
    body = {
        "id": "job-1",
        "model": "echo",
        "status": "COMPLETED",
        "output": output,
        "usage": {"execution_ms": 12, "delay_ms": 3},
    }
    headers: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)
    if replayed:
        headers += (("idempotency-replayed", "true"),)
    return Reply(200, json.dumps(body).encode(), headers)


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    connection: tuple[str, int]
    refused: str | None  # the catalog code if the signature check failed
    idempotency_key: str | None = None
    nonce: str | None = None
    attempt: int = 0


@dataclass
class RecordingGate:
    base_url: str = ""
    keys: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    models: dict[str, ModelPolicy] = field(default_factory=lambda: {"echo": POLICY})
    script: deque[Reply] = field(default_factory=deque)
    requests: list[Recorded] = field(default_factory=list)
    nonces: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.models = {"echo": POLICY}
            self.script.clear()
            self.requests.clear()
            self.nonces.clear()

    def answer(self, *replies: Reply) -> None:
        self.script.extend(replies)

    @property
    def posts(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST"]

    @property
    def connections(self) -> set[tuple[str, int]]:
        return {r.connection for r in self.requests}

    # -- verification, as the gate's authenticate stage does it ------------------------------

    def _verify(self, record: Recorded) -> None:
        headers = record.headers
        parsed = signing.parse_signature(headers.get("signature-input"), headers.get("signature"))
        key_header = headers.get("idempotency-key")
        if key_header is not None:
            item = structured_fields.parse_item(key_header)
            assert type(item.value) is str
            record.idempotency_key = item.value
        signing.check_profile(
            parsed,
            now=time.time(),
            has_body=bool(record.body),
            has_idempotency_key=key_header is not None,
        )
        if record.body:
            digest.verify_content_digest(headers.get("content-digest"), record.body)
        parts = signing.RequestParts(
            method=record.method,
            authority=headers["host"],
            path=record.path,
            query=record.query,
            headers=headers,
        )
        base = signing.request_signature_base(parts, parsed)
        alg, key = self.keys.get(parsed.keyid or "", ("", b""))
        if not alg:
            raise ProblemError("key_unknown")
        if parsed.alg != alg:
            raise ProblemError("signature_alg_unsupported")
        if not algorithms.verify(alg, key, base, parsed.signature, _Ed25519Port()):
            raise ProblemError("signature_invalid")
        assert parsed.nonce is not None
        if parsed.nonce in self.nonces:
            raise ProblemError("signature_replayed")
        self.nonces.add(parsed.nonce)
        record.nonce = parsed.nonce

    def handle(self, record: Recorded) -> Reply:
        with self.lock:
            if record.method == "GET" and record.path == "/v1/models":
                self.requests.append(record)
                listing = [
                    {
                        "name": name,
                        "backend": "runpod",
                        "policy": policy.to_dict(),
                        "policy_hash": policy.policy_hash(),
                    }
                    for name, policy in self.models.items()
                ]
                return Reply(
                    200,
                    json.dumps({"models": listing}).encode(),
                    (("content-type", "application/json"),),
                )
            try:
                self._verify(record)
            except ProblemError as error:
                record.refused = error.code
            except ValueError:
                record.refused = "signature_malformed"
            if record.idempotency_key is not None:
                record.attempt = 1 + sum(
                    1 for r in self.requests if r.idempotency_key == record.idempotency_key
                )
            self.requests.append(record)
            if record.refused is not None:
                return problem(record.refused)
            if self.script:
                return self.script.popleft()
            document = json.loads(record.body) if record.body else {}
            return completed(document.get("input"))

    # -- ASGI ----------------------------------------------------------------------------------

    async def __call__(
        self,
        scope: Message,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            return
        body = await request_body(receive)
        record = Recorded(
            method=scope["method"],
            path=scope["raw_path"].decode("ascii"),
            query=scope["query_string"].decode("ascii"),
            headers={k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
            body=body,
            connection=tuple(scope["client"]),  # type: ignore[arg-type]
            refused=None,
        )
        reply = self.handle(record)
        headers = [(b"x-request-id", f"req-{len(self.requests)}".encode())]
        headers += [(k.encode(), v.encode()) for k, v in reply.headers]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})


@pytest.fixture(scope="session")
def _server() -> Iterator[RecordingGate]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    gate = RecordingGate()
    gate.keys[KEY_ID] = (algorithms.HMAC_SHA256, SECRET_BYTES)
    ed_public = (
        Ed25519PrivateKey.from_private_bytes(ED_SEED)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    gate.keys[ED_KEY_ID] = (algorithms.ED25519, ed_public)
    sock, gate.base_url = listening_socket()
    with serve_asgi(gate, sock, name="recording-gate", lifespan="off", timeout_keep_alive=30):
        yield gate


ED_SEED = bytes(range(100, 132))


@pytest.fixture
def gate(_server: RecordingGate) -> RecordingGate:
    _server.reset()
    return _server
