"""Assembles a gate on CPython: config + state dir + ports → `Gate`.

Used by the ASGI runner (`gpushield dev`), by the CLI (`gpushield keys`, which opens the same
key guard directly), by tests and by benchmarks, so all of them run the same wiring.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from gpushield_wire import credentials

from ..admin.api import AdminAccess
from ..admin.service import LocalKeyAdmin
from ..alerts import AlertSender
from ..backends.base import Backend
from ..backends.runpod import RunPodBackend
from ..config import GateConfig, parse_config
from ..context import Services
from ..costs import SECTIONS as COST_SECTIONS
from ..gate import Gate
from ..keyguard.account import AccountGuardCore, local_reclaim
from ..keyguard.guard import KeyGuardCore
from ..keyguard.inprocess import InProcessKeyGuard
from ..ports import Upstream
from ..tokens.service import build_token_service
from .audit import JsonLinesAuditSink
from .background import TaskBackground
from .clock import SystemClock
from .crypto import LocalCrypto
from .state import StateDir
from .storage import SqliteStorage
from .token_keys import token_signing_key_text
from .upstream import HttpxUpstream


def default_config_text() -> str:
    return resources.files(__package__).joinpath("default.toml").read_text(encoding="utf-8")


def load_config_document(path: Path | None) -> dict[str, Any]:
    """The embedded defaults, overlaid by the user's file: `[gate]` settings merge one by
    one; a `[models]` table in the user's file replaces the default models entirely."""
    document = tomllib.loads(default_config_text())
    if path is None:
        return document
    with path.open("rb") as handle:
        user = tomllib.load(handle)
    merged = dict(document)
    merged["gate"] = {**document.get("gate", {}), **user.get("gate", {})}
    if "models" in user:
        merged["models"] = user["models"]
    if "tokens" in user:
        merged["tokens"] = user["tokens"]
    if "waf" in user:  # settings merge one by one, like [gate]
        merged["waf"] = {**document.get("waf", {}), **user["waf"]}
    for section in COST_SECTIONS:  # cost settings come only from the user's file
        if section in user:
            merged[section] = user[section]
    unknown = set(user) - {"gate", "models", "tokens", "waf", *COST_SECTIONS}
    if unknown:
        raise ValueError(f"{path}: unknown sections {sorted(unknown)}")
    return merged


# The admin API's credential (gss_… text); the API is off when it is unset.
ADMIN_SECRET_ENV = "GPUSHIELD_ADMIN_SECRET"  # noqa: S105 - a variable name


def open_key_guard(state: StateDir, environ: Mapping[str, str] = os.environ) -> KeyGuardCore:
    state.ensure()
    crypto = LocalCrypto(state.key_encryption_key(environ))
    storage = SqliteStorage(state.keys_db)
    # The account guard shares the local database (its own tables); at the edge it is a
    # Durable Object of its own and key guards reach it by RPC (and it reaches them back to
    # reclaim unused chunks).
    account = AccountGuardCore(storage, reclaim=local_reclaim(storage))
    account.migrate()
    core = KeyGuardCore(storage, crypto, account=account)
    core.migrate()
    return core


@dataclass(slots=True)
class LocalGate:
    gate: Gate
    core: KeyGuardCore
    upstream: HttpxUpstream
    audit: JsonLinesAuditSink
    background: TaskBackground

    @property
    def config(self) -> GateConfig:
        return self.gate.services.config

    @classmethod
    def build(
        cls,
        config_document: Mapping[str, Any],
        state: StateDir,
        environ: Mapping[str, str] = os.environ,
        upstream: Upstream | None = None,
    ) -> LocalGate:
        config = parse_config(config_document, environ)
        core = open_key_guard(state, environ)
        http_upstream = HttpxUpstream()
        audit = JsonLinesAuditSink(state.audit_log)
        background = TaskBackground()
        clock = SystemClock()
        admin_secret = environ.get(ADMIN_SECRET_ENV)
        admin = AdminAccess(
            LocalKeyAdmin(core, clock),
            credentials.parse_secret(admin_secret) if admin_secret else None,
        )
        backends: dict[str, Backend] = {
            name: RunPodBackend(model.backend) for name, model in config.models.items()
        }
        tokens = build_token_service(
            config.tokens, token_signing_key_text(state, environ), core.crypto,
            upstream or http_upstream, skew_s=config.clock_skew_s,
        ) if config.tokens.enabled else None
        services = Services(
            config=config,
            clock=clock,
            crypto=core.crypto,
            upstream=upstream or http_upstream,
            guard=InProcessKeyGuard(core),
            audit=audit,
            background=background,
            backends=backends,
            admin=admin,
            tokens=tokens,
            alerts=AlertSender(config.costs.webhooks, upstream or http_upstream, clock,
                               background, config.costs.retry),
        )
        return cls(Gate(services), core, http_upstream, audit, background)

    async def aclose(self) -> None:
        await self.background.drain()
        await self.upstream.aclose()
        self.audit.close()
