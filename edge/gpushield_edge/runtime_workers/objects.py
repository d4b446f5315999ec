"""What runs inside the Durable Objects: one key guard per API key, and the key directory."""

from __future__ import annotations

import json
from typing import Any

from gpushield_wire import credentials

from ..admin.directory import KeyDirectoryCore
from ..keyguard.guard import KeyGuardCore
from ..keyguard.rpc import GuardEndpoint
from .app import EnvStrings
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
                        WebCrypto(credentials.parse_key_encryption_key(kek_text, KEK_VAR)))
    core.migrate()
    return GuardEndpoint(core, WorkersClock())


class DirectoryEndpoint:
    def __init__(self, ctx: Any) -> None:
        self.core = KeyDirectoryCore(DurableSqlStorage(_js_state(ctx).storage))
        self.core.migrate()

    async def dispatch(self, method: str, payload: str) -> str:
        return json.dumps(await self.core.dispatch(method, json.loads(payload)))
