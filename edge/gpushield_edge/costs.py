"""Cost-control settings of the gate config: prices, account budgets, alerts, anomaly guard.

    [prices.models.summarize]        # money per GPU-second and per-call minimum, micro-units
    micros_per_gpu_s = 400           #   (1 000 000 = one unit of your currency)
    min_micros = 100
    [prices.backends.runpod]         # fallback for models without their own price
    micros_per_gpu_s = 300

    [[budgets.account]]              # account-wide hard caps across every key
    unit = "month"                   # hour | day | month
    tz = "Europe/Paris"              # calendar periods in this zone (default UTC)
    limit_micros = 200_000_000
    # rolling = true                 # last 30 days instead of the calendar month
    # chunk_micros = 5_000_000       # leased by each key guard at a time (default limit/20)

    [alerts]
    thresholds = [50, 80, 100]       # percent of each budget, one webhook each per period
    [[alerts.webhooks]]
    url_env = "GPUSHIELD_ALERT_WEBHOOK"   # the URL is a secret: name its variable
    format = "slack"                      # or "generic"

    [anomaly]                        # the kill switch (see anomaly.py)
    enabled = true

Unknown settings are rejected, like everywhere else in the config. Standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .alerts.sender import RetryPolicy, WebhookTarget
from .anomaly import AnomalyPolicy
from .keyguard.budget import DEFAULT_THRESHOLDS, BudgetSpec, BudgetSpecError, Price
from .keyguard.settlement import SettlePolicy
from .sections import reject_unknown

SECTIONS = frozenset({"prices", "budgets", "alerts", "anomaly"})


@dataclass(frozen=True, slots=True)
class CostConfig:
    # Resolved per model (model price, else its backend's, else free).
    prices: Mapping[str, Price] = field(default_factory=dict)
    account_budgets: tuple[BudgetSpec, ...] = ()
    settle_policy: SettlePolicy = field(default_factory=SettlePolicy)
    webhooks: tuple[WebhookTarget, ...] = ()
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # The account budgets as every admission sends them to the key's guard: built once
    # here rather than per request (the edge's request path is CPU-budgeted).
    account_budget_documents: tuple[dict[str, Any], ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "account_budget_documents",
                           tuple(spec.to_dict() for spec in self.account_budgets))

    def price_for(self, model: str) -> Price:
        return self.prices.get(model, Price())


def _price(section: str, document: Any) -> Price:
    if not isinstance(document, dict):
        raise ValueError(f"[{section}] must be a table")
    reject_unknown(section, document, {"micros_per_gpu_s", "min_micros"})
    values = []
    for name in ("micros_per_gpu_s", "min_micros"):
        value = document.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**12:
            raise ValueError(f"[{section}] {name} must be a whole number of micro-units")
        values.append(value)
    return Price(values[0], values[1])


def account_budgets_from(document: Mapping[str, Any]) -> list[BudgetSpec]:
    """The `[[budgets.account]]` entries (also read by `gpushield usage --config`)."""
    budgets_doc = dict(document.get("budgets", {}))
    reject_unknown("budgets", budgets_doc, {"account"})
    account: list[BudgetSpec] = []
    for index, entry in enumerate(budgets_doc.get("account", [])):
        entry = dict(entry)
        entry.setdefault("budget_id", f"{entry.get('unit')}{index}")
        try:
            account.append(BudgetSpec.from_dict(entry))
        except BudgetSpecError as error:
            raise ValueError(f"[[budgets.account]] #{index + 1}: {error}") from None
    if len({spec.budget_id for spec in account}) != len(account):
        raise ValueError("[[budgets.account]] budget_id values must be distinct")
    return account


def parse_costs(document: Mapping[str, Any], secrets: Mapping[str, str],
                model_backends: Mapping[str, str]) -> CostConfig:
    """`model_backends` maps each configured model to its backend type (for price fallback)."""
    prices_doc = dict(document.get("prices", {}))
    reject_unknown("prices", prices_doc, {"models", "backends"})
    by_model = {name: _price(f"prices.models.{name}", value)
                for name, value in dict(prices_doc.get("models", {})).items()}
    unknown_models = set(by_model) - set(model_backends)
    if unknown_models:
        raise ValueError(f"[prices.models] prices unknown models: {sorted(unknown_models)}")
    by_backend = {name: _price(f"prices.backends.{name}", value)
                  for name, value in dict(prices_doc.get("backends", {})).items()}
    prices = {model: by_model.get(model, by_backend.get(backend, Price()))
              for model, backend in model_backends.items()}

    account = account_budgets_from(document)

    alerts_doc = dict(document.get("alerts", {}))
    reject_unknown("alerts", alerts_doc, {"thresholds", "webhooks", "max_attempts",
                                           "backoff_s"})
    thresholds = alerts_doc.get("thresholds", list(DEFAULT_THRESHOLDS))
    if (not isinstance(thresholds, list)
            or not all(isinstance(t, int) and not isinstance(t, bool) and 0 < t <= 1000
                       for t in thresholds)):
        raise ValueError("[alerts] thresholds must be a list of percentages")
    webhooks: list[WebhookTarget] = []
    for index, hook in enumerate(alerts_doc.get("webhooks", [])):
        hook = dict(hook)
        reject_unknown(f"alerts.webhooks #{index + 1}", hook, {"url", "url_env", "format"})
        url = hook.get("url")
        if "url_env" in hook:
            url = secrets.get(str(hook["url_env"]))
            if not url:
                raise ValueError(f"alerts.webhooks: environment variable {hook['url_env']} "
                                 "is not set")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise ValueError(f"alerts.webhooks #{index + 1} needs an http(s) url or url_env")
        form = hook.get("format", "generic")
        if form not in ("slack", "generic"):
            raise ValueError("alerts.webhooks format must be 'slack' or 'generic'")
        webhooks.append(WebhookTarget(url, form))
    retry = RetryPolicy(max_attempts=int(alerts_doc.get("max_attempts", 5)),
                        base_s=float(alerts_doc.get("backoff_s", 0.5)))
    if not 1 <= retry.max_attempts <= 20 or not 0 <= retry.base_s <= 60:
        raise ValueError("[alerts] max_attempts must be 1..20 and backoff_s 0..60")

    anomaly = AnomalyPolicy.from_dict(dict(document.get("anomaly", {})))
    return CostConfig(prices, tuple(account), SettlePolicy(tuple(thresholds), anomaly),
                      tuple(webhooks), retry)
