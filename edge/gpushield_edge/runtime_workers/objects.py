"""What runs inside the Durable Objects: one key guard per API key, and the key directory."""

from __future__ import annotations

import json
from typing import Any

from gpushield_wire import credentials

from ..admin.directory import KeyDirectoryCore
from ..keyguard.account import (
    AccountEndpoint,
    AccountGuardCore,
    RemoteAccount,
    remote_reclaim,
)
from ..keyguard.guard import KeyGuardCore
from ..keyguard.rpc import GuardEndpoint
from .app import (
    ACCOUNT_BINDING,
    ACCOUNT_NAME,
    GUARD_BINDING,
    OBJECT_TIMEOUT_S,
    EnvHolder,
    EnvStrings,
    object_call,
)
from .crypto import WebCrypto
from .services import WorkersClock
from .storage import DurableSqlStorage

KEK_VAR = "GPUSHIELD_KEK"


def _js_state(ctx: Any) -> Any:
    # The SDK wraps the DurableObjectState to convert RPC values; SQL needs only scalars and
    # blobs, so the guard uses the underlying JS object (see storage.py).
    return getattr(ctx, "_ctx", ctx)


def guard_endpoint(ctx: Any, env: Any) -> GuardEndpoint:
    """The key's guard; its HMAC secret is opened only here, with the KEK only guards hold.
    A missing or malformed KEK raises, the RPC fails, and the gate fails closed."""
    kek_text = EnvStrings(env).get(KEK_VAR)
    if not kek_text:
        raise ValueError(f"the {KEK_VAR} secret is not set")
    core = KeyGuardCore(DurableSqlStorage(_js_state(ctx).storage),
                        WebCrypto(credentials.parse_key_encryption_key(kek_text, KEK_VAR)),
                        account=RemoteAccount(_account_call(env)))
    core.migrate()
    return GuardEndpoint(core, WorkersClock())


def _holder(env: Any) -> EnvHolder:
    holder = EnvHolder()
    holder.env = env
    return holder


def _account_call(env: Any) -> Any:
    """A key guard's line to the account guard (leases of account-budget chunks)."""
    call = object_call(_holder(env), ACCOUNT_BINDING, OBJECT_TIMEOUT_S)

    async def account(method: str, payload: str) -> str:
        return str(await call(ACCOUNT_NAME, method, payload))

    return account


def account_endpoint(ctx: Any, env: Any) -> AccountEndpoint:
    """The account guard: one object holding how much of each account budget every key has
    leased; it takes unused chunks back from key guards when the cap is nearly reached."""
    guard_call = object_call(_holder(env), GUARD_BINDING, OBJECT_TIMEOUT_S)
    core = AccountGuardCore(DurableSqlStorage(_js_state(ctx).storage),
                            reclaim=remote_reclaim(guard_call))
    core.migrate()
    return AccountEndpoint(core)


class DirectoryEndpoint:
    def __init__(self, ctx: Any) -> None:
        self.core = KeyDirectoryCore(DurableSqlStorage(_js_state(ctx).storage))
        self.core.migrate()

    async def dispatch(self, method: str, payload: str) -> str:
        return json.dumps(await self.core.dispatch(method, json.loads(payload)))
