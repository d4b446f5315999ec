"""The gate at the edge, built once per isolate from the Worker's env.

Configuration is the same TOML as `gpushield.toml`, passed as the `GPUSHIELD_CONFIG` var;
secrets (the RunPod API key named by `api_key_env`, the admin credential, the key-encryption
key) are Worker secrets. Per-key state lives in the `KEY_GUARD` Durable Objects (one per API
key, addressed by key id) and the key list in the `KEY_DIRECTORY` object.
"""

from __future__ import annotations

import asyncio
import logging
import tomllib
from collections.abc import Iterator, Mapping
from typing import Any

from gpushield_wire import credentials
from gpushield_wire.errors import Problem

from ..admin.api import AdminAccess
from ..admin.durable import DurableKeyAdmin
from ..alerts import AlertSender
from ..backends.base import Backend
from ..backends.runpod import RunPodBackend
from ..config import parse_config
from ..context import Services
from ..gate import Gate
from ..http import GateResponse
from ..keyguard.rpc import GuardUnreachable, RemoteKeyGuard
from ..tokens.issuer import SIGNING_KEY_ENV
from ..tokens.service import build_token_service
from .crypto import WebCrypto
from .request import gate_request, js_response
from .services import ConsoleAuditSink, WaitUntilBackground, WorkersClock
from .upstream import FetchUpstream

logger = logging.getLogger("gpushield.edge")

CONFIG_VAR = "GPUSHIELD_CONFIG"
ADMIN_SECRET_VAR = "GPUSHIELD_ADMIN_SECRET"  # noqa: S105 - a variable name
GUARD_BINDING = "KEY_GUARD"
ACCOUNT_BINDING = "ACCOUNT_GUARD"
ACCOUNT_NAME = "default"
# Between Durable Objects (key guard ↔ account guard): the same bound as the gate's calls.
OBJECT_TIMEOUT_S = 2.0
DIRECTORY_BINDING = "KEY_DIRECTORY"
DIRECTORY_NAME = "directory"


class EnvStrings(Mapping[str, str]):
    """Worker vars and secrets as a read-only mapping for `parse_config` (only string
    values; bindings are not strings, so a config cannot name a binding as its API key).
    Lookups only: Python cannot enumerate a Worker's env, so it iterates as empty."""

    def __init__(self, env: Any) -> None:
        self._env = env

    def __getitem__(self, name: str) -> str:
        value = getattr(self._env, name, None)
        if not isinstance(value, str):
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


class EnvHolder:
    """The isolate's env. Bindings are looked up per call, never cached across requests."""

    env: Any = None


def object_call(holder: EnvHolder, binding: str, timeout_s: float) -> Any:
    """`call(name, method, payload) -> str`: one RPC to the Durable Object `name` of
    `binding`, bounded by `timeout_s`. Any failure to get an answer — timeout, an error in
    the object, a missing binding — is GuardUnreachable, and the caller fails closed."""

    async def call(name: str, method: str, payload: str) -> str:
        try:
            stub = getattr(holder.env, binding).getByName(name)
            return str(await asyncio.wait_for(stub.call(method, payload), timeout_s))
        except Exception:
            raise GuardUnreachable from None

    return call


def _guard_call(holder: EnvHolder, timeout_s: float) -> Any:
    return object_call(holder, GUARD_BINDING, timeout_s)


def _directory_call(holder: EnvHolder, timeout_s: float) -> Any:
    call = object_call(holder, DIRECTORY_BINDING, timeout_s)

    async def directory(method: str, payload: str) -> str:
        return str(await call(DIRECTORY_NAME, method, payload))

    return directory


def build_gate(env: Any, holder: EnvHolder) -> Gate:
    strings = EnvStrings(env)
    text = strings.get(CONFIG_VAR)
    if not text:
        raise ValueError(f"the {CONFIG_VAR} var is not set (the gate's TOML configuration)")
    config = parse_config(tomllib.loads(text), strings)
    guard_call = _guard_call(holder, config.guard_timeout_s)
    admin_secret = strings.get(ADMIN_SECRET_VAR)
    admin = AdminAccess(
        DurableKeyAdmin(guard_call, _directory_call(holder, config.guard_timeout_s)),
        credentials.parse_secret(admin_secret) if admin_secret else None,
    )
    backends: dict[str, Backend] = {
        name: RunPodBackend(model.backend) for name, model in config.models.items()
    }
    crypto = WebCrypto()
    upstream = FetchUpstream()
    tokens = None
    if config.tokens.enabled:
        signing_key = strings.get(SIGNING_KEY_ENV)
        if not signing_key:
            raise ValueError(f"[tokens] is enabled but the {SIGNING_KEY_ENV} secret is not set")
        tokens = build_token_service(config.tokens, signing_key, crypto, upstream,
                                     skew_s=config.clock_skew_s)
    clock = WorkersClock()
    background = WaitUntilBackground()
    services = Services(
        config=config,
        clock=clock,
        crypto=crypto,
        upstream=upstream,
        guard=RemoteKeyGuard(guard_call),
        audit=ConsoleAuditSink(),
        background=background,
        backends=backends,
        admin=admin,
        tokens=tokens,
        alerts=AlertSender(config.costs.webhooks, upstream, clock, background,
                           config.costs.retry),
    )
    return Gate(services)


class EdgeGate:
    """Builds the gate on the first request (never at import: workerd snapshots the top
    level at deploy, where env, randomness and I/O are unavailable) and serves requests."""

    def __init__(self) -> None:
        self._holder = EnvHolder()
        self._gate: Gate | None = None

    async def handle(self, env: Any, js_request: Any) -> Any:
        self._holder.env = env
        if self._gate is None:
            try:
                self._gate = build_gate(env, self._holder)
            except (ValueError, KeyError, tomllib.TOMLDecodeError) as error:
                logger.error("gate configuration is invalid: %s", error)
                return js_response(GateResponse.problem(
                    Problem("gate_misconfigured", detail=str(error))))
        gate = self._gate
        request = await gate_request(js_request, gate.services.config.largest_body)
        return js_response(await gate.handle(request))
