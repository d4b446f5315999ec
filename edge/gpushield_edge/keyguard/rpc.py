"""The key guard's RPC surface: what a gate may ask one key's guard, as JSON text.

At the edge every key's guard is a Durable Object and the gate reaches it by RPC. Arguments
cross that boundary as structured clones, so each call carries one JSON string each way
(bytes as base64) — a shape that is identical in the Node harness and in workerd, cheap to
copy, and easy to audit: `GuardEndpoint.METHODS` is the complete list of what a gate can ask.
The local runtime calls `KeyGuardCore` directly and never encodes anything.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict, fields, is_dataclass
from typing import Any

from gpushield_wire import credentials
from gpushield_wire.errors import ProblemError

from ..ports import Clock
from . import budget, rotation, usage
from .grants import GrantRequest, GrantResult, grant
from .guard import KeyGuardCore, KeyGuardError
from .records import AdmitRequest, AdmitResult, KeyLimits, StoredResponse
from .settlement import SettlePolicy, SettleRequest, SettleResult

_BYTES = "$b64"


def _default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {_BYTES: base64.b64encode(bytes(value)).decode("ascii")}
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in fields(value)}
    raise TypeError(f"cannot encode {type(value).__name__}")


def _hook(document: dict[str, Any]) -> Any:
    if len(document) == 1 and _BYTES in document:
        return base64.b64decode(document[_BYTES])
    return document


def encode(value: Any) -> str:
    return json.dumps(value, default=_default, separators=(",", ":"))


def decode(text: str) -> Any:
    return json.loads(text, object_hook=_hook)


def admit_request_from(document: dict[str, Any]) -> AdmitRequest:
    return AdmitRequest(**document)


def stored_from(document: dict[str, Any] | None) -> StoredResponse | None:
    if document is None:
        return None
    headers = tuple((str(name), str(value)) for name, value in document["headers"])
    return StoredResponse(int(document["status"]), headers, bytes(document["body"]))


def settle_request_from(document: dict[str, Any]) -> SettleRequest:
    used_ms = document.get("used_ms")
    return SettleRequest(
        str(document["key_id"]), str(document["lease_id"]), document.get("idempotency_key"),
        stored_from(document.get("response")), float(document["now"]), bool(document["ran"]),
        None if used_ms is None else int(used_ms),
        SettlePolicy.from_dict(document.get("policy") or {}))


def admit_result_from(document: dict[str, Any]) -> AdmitResult:
    return AdmitResult(**{**document, "stored": stored_from(document.get("stored"))})


class GuardUnreachable(ProblemError):
    """The key's guard did not answer (timeout, dead object, transport error). It is the
    refusal itself: wherever it surfaces, the gate answers 503 guard_unavailable and
    forwards nothing."""

    def __init__(self) -> None:
        super().__init__("guard_unavailable")


class GuardRpcError(Exception):
    """The guard refused an RPC (unknown method, unknown key); the message is safe to show."""


class GuardEndpoint:
    """Serves one guard's RPCs (the Durable Object's side). Each method takes and returns
    plain JSON-able values; `dispatch` does the encoding and is the only entry point."""

    def __init__(self, core: KeyGuardCore, clock: Clock) -> None:
        self.core = core
        self.clock = clock
        self.METHODS: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
            "admit": self.admit,
            "settle": self.settle,
            "create": self.create,
            "get": self.get,
            "set_status": self.set_status,
            "grant": self.grant,
            "rotate": self.rotate,
            "set_budgets": self.set_budgets,
            "usage": self.usage,
            "release_unused": self.release_unused,
        }

    async def dispatch(self, method: str, payload: str) -> str:
        handler = self.METHODS.get(method)
        if handler is None:
            raise GuardRpcError(f"unknown guard method {method!r}")
        try:
            result = await handler(decode(payload))
        except (KeyGuardError, rotation.RotationError) as error:
            return encode({"error": str(error), "missing": error.missing})
        return encode({"ok": result})

    async def admit(self, args: dict[str, Any]) -> Any:
        return asdict(await self.core.admit(admit_request_from(args["request"])))

    async def settle(self, args: dict[str, Any]) -> Any:
        return self.core.settle(settle_request_from(args["request"])).to_dict()

    async def set_budgets(self, args: dict[str, Any]) -> Any:
        specs = [budget.BudgetSpec.from_dict(item) for item in args["budgets"]]
        key_id = str(args["key_id"])
        self.core.get_key(key_id)  # KeyGuardError(missing) for an unknown key
        self.core.set_budgets(key_id, specs)
        return None

    async def usage(self, args: dict[str, Any]) -> Any:
        key_id = str(args["key_id"])
        self.core.get_key(key_id)
        return usage.key_usage(
            self.core.storage, key_id, self.clock.now(),
            budget.parse_specs(args.get("account_budgets", ())), args.get("history_since"))

    async def release_unused(self, args: dict[str, Any]) -> Any:
        """Key side of returning idle account chunks; the caller hands them to the account."""
        released = usage.release_unused(
            self.core.storage, str(args["key_id"]),
            budget.parse_specs(args.get("account_budgets", ())), self.clock.now())
        return [{"spec": spec.to_dict(), "bucket": bucket, "gpu_ms": ms, "micros": micros}
                for spec, bucket, ms, micros in released]

    async def create(self, args: dict[str, Any]) -> Any:
        """The secret is generated here, inside the key's own guard, and leaves it once."""
        spec = args["spec"]
        secret = credentials.new_secret()
        record = await self.core.create_key(
            key_id=str(args["key_id"]), alg=str(args.get("alg", "hmac-sha256")),
            key_material=secret, scopes=tuple(spec["scopes"]),
            limits=KeyLimits(**spec["limits"]), expires_at=spec.get("expires_at"),
            now=self.clock.now(), label=str(spec.get("label", "")),
        )
        specs = [budget.BudgetSpec.from_dict(item) for item in spec.get("budgets", ())]
        if specs:
            self.core.set_budgets(record.key_id, specs)
        return {"key": record.to_dict(), "secret": credentials.format_secret(secret)}

    async def get(self, args: dict[str, Any]) -> Any:
        key_id = str(args["key_id"])
        record = self.core.get_key(key_id)
        return {"key": record.to_dict(), "in_flight": self.core.in_flight(key_id, self.clock.now())}

    async def set_status(self, args: dict[str, Any]) -> Any:
        return {"key": self.core.set_status(str(args["key_id"]), args["status"]).to_dict()}

    async def grant(self, args: dict[str, Any]) -> Any:
        """Token endpoint authentication; a client secret is compared here, never returned."""
        return asdict(await grant(self.core, GrantRequest(**args["request"])))

    async def rotate(self, args: dict[str, Any]) -> Any:
        """A new secret, generated inside the key's guard and returned once."""
        key_id = str(args["key_id"])
        secret, until = await rotation.rotate_key(
            self.core.storage, self.core.crypto, key_id, float(args["grace_s"]),
            self.clock.now())
        return {"key": self.core.get_key(key_id).to_dict(),
                "secret": credentials.format_secret(secret), "previous_valid_until": until}


GuardCall = Callable[[str, str, str], Awaitable[str]]
"""`call(key_id, method, payload_json) -> result_json`: one RPC to that key's guard."""


async def call_guard(call: GuardCall, key_id: str, method: str, args: dict[str, Any]) -> Any:
    """Client side of `GuardEndpoint.dispatch`; raises KeyGuardError for the guard's refusals
    and lets transport failures (timeouts, a dead object) propagate to fail closed."""
    answer = decode(await call(key_id, method, encode(args)))
    if "error" in answer:
        raise KeyGuardError(str(answer["error"]), missing=bool(answer.get("missing")))
    return answer["ok"]


class RemoteKeyGuard:
    """The gate's KeyGuard port over RPC (the edge): one round trip per decision."""

    def __init__(self, call: GuardCall) -> None:
        self._call = call

    async def admit(self, request: AdmitRequest) -> AdmitResult:
        result = await call_guard(self._call, request.key_id, "admit", {"request": request})
        return admit_result_from(result)

    async def grant(self, request: GrantRequest) -> GrantResult:
        result = await call_guard(self._call, request.key_id, "grant", {"request": request})
        return GrantResult(**{**result, "scopes": tuple(result["scopes"])})

    async def settle(self, request: SettleRequest) -> SettleResult:
        answer = await call_guard(self._call, request.key_id, "settle",
                                  {"request": request.to_dict()})
        return SettleResult.from_dict(answer)
