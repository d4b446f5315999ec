"""What the gate knows about one request as it moves through the stages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gpushield_wire.signing import ParsedSignature

from .backends.base import Backend, BackendResult
from .config import GateConfig, ModelConfig
from .http import GateRequest, GateResponse
from .keyguard import AdmitResult, KeyGuard
from .keyguard.settlement import SettleResult
from .ports import AuditSink, Background, Clock, Crypto, Upstream

if TYPE_CHECKING:
    from .admin.api import AdminAccess
    from .alerts import AlertSender
    from .tokens.service import TokenService
    from .tokens.verifier import Grant


@dataclass(frozen=True, slots=True)
class Services:
    """The ports and configuration every stage may use (one instance per gate)."""

    config: GateConfig
    clock: Clock
    crypto: Crypto
    upstream: Upstream
    guard: KeyGuard
    audit: AuditSink
    background: Background
    backends: Mapping[str, Backend]
    # The signed admin API (key management); None leaves /admin routes unrouted.
    admin: AdminAccess | None = None
    # /oauth/token, JWKS and Bearer verification; None: the gate takes signatures only.
    tokens: TokenService | None = None
    # Spend alert webhooks, sent after the response; None sends none.
    alerts: AlertSender | None = None


@dataclass(slots=True)
class RequestContext:
    request: GateRequest
    request_id: str
    started: float
    now: float
    model: ModelConfig | None = None
    document: Any = None
    input: dict[str, Any] | None = None
    signature: ParsedSignature | None = None
    signature_base: bytes = b""
    idempotency_key: str | None = None
    fingerprint: str | None = None
    admission: AdmitResult | None = None
    result: BackendResult | None = None
    # Whether the backend may have started a job (decides idempotent replay vs. retry).
    dispatched: bool = False
    response: GateResponse | None = None
    stage: str = "route"
    # The catalog code the request was refused with (for the audit event).
    code: str | None = None
    # The WAF decision's rule ids and score, when any rule matched (audit `extra["waf"]`).
    waf: dict[str, Any] | None = None
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    # Admin API requests: what was done, to which key (audited; never a secret).
    admin_action: str | None = None
    admin_target: str | None = None
    # A verified bearer token (stages/bearer.py), and the key a request acts for when it
    # is not (only) signed: a token's key, or the client of a token request.
    bearer: Grant | None = None
    principal: str | None = None
    # What settlement charged (and whether it quarantined the key), for the audit event.
    settlement: SettleResult | None = None

    @property
    def key_id(self) -> str | None:
        signature = self.signature
        return signature.keyid if signature is not None else self.principal
