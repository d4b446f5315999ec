"""Gate configuration: what a user writes in `gpushield.toml` (or Worker vars), parsed once.

Every setting has a documented default so the embedded configuration needs nothing else.
Secrets are never in this file: the config names the environment variable that holds them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gpushield_wire.policy import ModelPolicy

from .backends.runpod import RunPodConfig
from .costs import SECTIONS as COST_SECTIONS
from .costs import CostConfig, parse_costs
from .sections import reject_unknown
from .tokens.config import TokensConfig, parse_tokens_config
from .waf.engine import WafSettings
from .waf.settings import parse_waf_settings


@dataclass(frozen=True, slots=True)
class ModelConfig:
    name: str
    backend: RunPodConfig
    policy: ModelPolicy = field(default_factory=ModelPolicy)
    # Wall-clock seconds a caller waits for this model, queueing included.
    deadline_s: float = 120.0


@dataclass(frozen=True, slots=True)
class GateConfig:
    models: Mapping[str, ModelConfig] = field(default_factory=dict)
    # RFC 9421 freshness: tolerated clock difference and longest created→expires window.
    clock_skew_s: int = 30
    max_signature_window_s: int = 300
    # Caps checked before any parsing: all header field lines, and any single body.
    max_header_bytes: int = 8 * 1024
    max_body_bytes: int = 1024 * 1024
    # When set, `@authority` must be this value (the public host behind a proxy); else Host.
    public_authority: str | None = None
    # How long the gate waits for a key's guard (a Durable Object at the edge) before
    # refusing with guard_unavailable. Locally the guard is in-process and this is unused.
    guard_timeout_s: float = 2.0
    # Access tokens: the gate's own issuer and trusted external ones (tokens/config.py).
    tokens: TokensConfig = field(default_factory=TokensConfig)
    # Prices, account budgets, alerts, anomaly guard (costs.py).
    costs: CostConfig = field(default_factory=CostConfig)
    # The `[waf]` section: rule engine modes, paranoia level, threshold (see waf/settings.py).
    waf: WafSettings = field(default_factory=WafSettings)

    @property
    def largest_body(self) -> int:
        sizes = [model.policy.max_body_bytes for model in self.models.values()]
        return min(self.max_body_bytes, max(sizes, default=self.max_body_bytes))


def parse_config(document: Mapping[str, Any], secrets: Mapping[str, str]) -> GateConfig:
    """Builds the config from a parsed TOML document; `secrets` resolves `*_env` names."""
    gate = dict(document.get("gate", {}))
    reject_unknown("gate", gate, {
        "clock_skew_s", "max_signature_window_s", "max_header_bytes", "max_body_bytes",
        "public_authority", "guard_timeout_s",
    })
    reject_unknown("top level", document, {"gate", "models", "tokens", "waf", *COST_SECTIONS})
    models: dict[str, ModelConfig] = {}
    for name, entry in dict(document.get("models", {})).items():
        entry = dict(entry)
        reject_unknown(f"models.{name}", entry, {"backend", "policy", "deadline_s"})
        backend = dict(entry.get("backend", {}))
        kind = backend.pop("type", "runpod")
        if kind != "runpod":
            raise ValueError(f"models.{name}: backend type {kind!r} is not supported yet")
        api_key_env = backend.pop("api_key_env", None)
        reject_unknown(f"models.{name}.backend", backend, {
            "base_url", "endpoint_id", "flavor", "sync_wait_ms", "poll_interval_s",
        })
        api_key = secrets.get(api_key_env) if api_key_env else None
        if api_key_env and not api_key:
            raise ValueError(f"models.{name}: environment variable {api_key_env} is not set")
        if "base_url" not in backend:
            raise ValueError(f"models.{name}.backend needs a base_url")
        backend.setdefault("endpoint_id", None)
        models[name] = ModelConfig(
            name=name,
            backend=RunPodConfig(api_key=api_key, **backend),
            policy=ModelPolicy.from_dict(entry.get("policy", {})),
            deadline_s=float(entry.get("deadline_s", 120.0)),
        )
    tokens = parse_tokens_config(document.get("tokens", {}), secrets,
                                 gate.get("public_authority"))
    costs = parse_costs(document, secrets, {name: "runpod" for name in models})
    waf = parse_waf_settings(dict(document.get("waf", {})), routes=models)
    return GateConfig(models=models, tokens=tokens, costs=costs, waf=waf, **gate)
