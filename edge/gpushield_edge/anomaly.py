"""The anomaly guard (kill switch): quarantine a key whose spending stops looking like itself.

Budgets bound how much a leaked key can burn; this notices *that* it leaked, usually long
before the budget is gone. Two rules, evaluated inside the key's settlement transaction (so a
key is quarantined exactly once, by the settle that crossed the line, and its very next
admission is refused with `key_quarantined`):

- **Spend velocity** against the key's own baseline: GPU milliseconds settled per bucket
  (`bucket_s`, default one minute) feed an exponentially weighted mean and variance (EWMA,
  West 1979 incremental form). A bucket that exceeds mean + z·σ, after a warm-up and above an
  absolute floor (tiny keys are noisy), trips the switch. Empty buckets count as zeros, so a
  key idle for days and suddenly running flat out is measured against "idle".
- **Abuse shapes**: many distinct models from one key within an hour (model enumeration or a
  scripted sweep), which honest keys rarely do; and, opt-in, a call from a country the key has
  never been used from once it has an established history (a stolen key used from elsewhere).

On trigger the spike is not folded into the baseline (it would teach the detector that the
attack is normal), and the rule windows restart at the trigger time, so a key restored by an
administrator (`gpushield keys restore`) is not re-quarantined for what it already did.

Stdlib only: runs in Pyodide inside the key's Durable Object.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the key guard imports this module; types only, no import cycle
    from .keyguard.budget import Query, Settlement

ANOMALY_SCHEMA: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS anomaly_state (
        key_id TEXT PRIMARY KEY,
        bucket REAL NOT NULL,
        bucket_gpu_ms INTEGER NOT NULL,
        mean REAL NOT NULL,
        var REAL NOT NULL,
        seen INTEGER NOT NULL,
        since REAL NOT NULL
    ) WITHOUT ROWID""",
    # Countries a key was called from, with how many calls: the new-country rule.
    """CREATE TABLE IF NOT EXISTS anomaly_countries (
        key_id TEXT NOT NULL,
        country TEXT NOT NULL,
        calls INTEGER NOT NULL,
        first_seen REAL NOT NULL,
        PRIMARY KEY (key_id, country)
    ) WITHOUT ROWID""",
    # The models a key called and when last: a handful of rows per key, so the many-models
    # rule never scans the reservation ledger.
    """CREATE TABLE IF NOT EXISTS anomaly_models (
        key_id TEXT NOT NULL,
        model TEXT NOT NULL,
        last_seen REAL NOT NULL,
        PRIMARY KEY (key_id, model)
    ) WITHOUT ROWID""",
)

# Empty buckets folded at most this many at a time (past that the mean is ~0 anyway).
MAX_FOLD = 1000


@dataclass(frozen=True, slots=True)
class AnomalyPolicy:
    enabled: bool = True
    bucket_s: float = 60.0
    alpha: float = 0.1
    z: float = 6.0
    warmup_buckets: int = 30
    min_gpu_ms: int = 120_000
    # 0 turns the rule off.
    max_models_per_hour: int = 8
    # Quarantine a key that, after this many calls from known countries, calls from a country
    # it never used (0: off). Needs `country_header`, a header only the edge can set
    # (Cloudflare's cf-ipcountry): a client-supplied one would let a thief pick the country.
    new_country_after_calls: int = 0
    country_header: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> AnomalyPolicy:
        unknown = set(document) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"[anomaly] has unknown settings: {', '.join(sorted(unknown))}")
        policy = cls(**document)
        if (policy.bucket_s <= 0 or not 0 < policy.alpha <= 1 or policy.z <= 0
                or policy.warmup_buckets < 1 or policy.min_gpu_ms < 0
                or policy.max_models_per_hour < 0 or policy.new_country_after_calls < 0):
            raise ValueError("[anomaly] settings are out of range")
        return policy


def _fold(mean: float, var: float, value: float, alpha: float) -> tuple[float, float]:
    diff = value - mean
    increment = alpha * diff
    return mean + increment, (1 - alpha) * (var + diff * increment)


def observe(query: Query, key_id: str, settled: Settlement, now: float,
            policy: AnomalyPolicy) -> str | None:
    """Feeds one settlement to the key's baseline; returns the rule that tripped, if any,
    after quarantining the key (same transaction)."""
    if not policy.enabled:
        return None
    bucket = math.floor(now / policy.bucket_s) * policy.bucket_s
    rows = query("SELECT bucket, bucket_gpu_ms, mean, var, seen, since FROM anomaly_state "
                 "WHERE key_id = ?", (key_id,))
    if rows:
        last, current, mean, var, seen, since = rows[0]
        last, current, mean, var = float(last), int(current), float(mean), float(var)
        seen, since = int(seen), float(since)
    else:
        last, current, mean, var, seen, since = bucket, 0, 0.0, 0.0, 0, 0.0
    if bucket > last:
        # Close the previous bucket, then the empty ones in between (as zeros).
        mean, var = _fold(mean, var, current, policy.alpha)
        empty = min(MAX_FOLD, round((bucket - last) / policy.bucket_s) - 1)
        for _ in range(max(0, empty)):
            mean, var = _fold(mean, var, 0.0, policy.alpha)
        seen += 1 + max(0, empty)
        last, current = bucket, 0
    # A clock that went backwards keeps adding to the newest bucket.
    current += settled.charged_gpu_ms
    reason: str | None = None
    if (seen >= policy.warmup_buckets and current >= policy.min_gpu_ms
            and current > mean + policy.z * math.sqrt(max(var, 0.0))):
        reason = "spend_velocity"
    elif policy.max_models_per_hour:
        query("INSERT INTO anomaly_models (key_id, model, last_seen) VALUES (?, ?, ?) "
              "ON CONFLICT (key_id, model) DO UPDATE SET "
              "last_seen = MAX(last_seen, excluded.last_seen)", (key_id, settled.model, now))
        (models,) = query(
            "SELECT COUNT(*) FROM anomaly_models WHERE key_id = ? AND last_seen > ?",
            (key_id, max(now - 3600.0, since)))[0]
        if int(models) > policy.max_models_per_hour:
            reason = "many_models"
    if reason is None and policy.new_country_after_calls and settled.country:
        reason = _new_country(query, key_id, settled.country, now,
                              policy.new_country_after_calls)
    if reason is not None:
        current, since = 0, now
        status = query("SELECT status FROM keys WHERE key_id = ?", (key_id,))
        if status and status[0][0] == "active":
            query("UPDATE keys SET status = 'quarantined', version = version + 1 "
                  "WHERE key_id = ?", (key_id,))
        else:
            reason = None  # already quarantined or revoked: nothing new to report
    query(
        "INSERT INTO anomaly_state (key_id, bucket, bucket_gpu_ms, mean, var, seen, since) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key_id) DO UPDATE SET bucket = excluded.bucket,"
        " bucket_gpu_ms = excluded.bucket_gpu_ms, mean = excluded.mean, var = excluded.var, "
        "seen = excluded.seen, since = excluded.since",
        (key_id, last, current, mean, var, seen, since),
    )
    return reason


def _new_country(query: Query, key_id: str, country: str, now: float,
                 after_calls: int) -> str | None:
    """A country never seen for a key with an established history (calls counted from known
    countries). After a restore the new country counts as known: the admin vouched for it."""
    (history,) = query("SELECT COALESCE(SUM(calls), 0) FROM anomaly_countries "
                       "WHERE key_id = ?", (key_id,))[0]
    known = query("SELECT 1 FROM anomaly_countries WHERE key_id = ? AND country = ?",
                  (key_id, country))
    query("INSERT INTO anomaly_countries (key_id, country, calls, first_seen) "
          "VALUES (?, ?, 1, ?) ON CONFLICT (key_id, country) DO UPDATE SET calls = calls + 1",
          (key_id, country, now))
    if not known and int(history) >= after_calls:
        return "new_country"
    return None
