"""The key guard's tables, in the SQL dialect both runtimes share.

The same statements run on CPython's sqlite3 (one database for all keys, the local gate) and on
a Durable Object's `ctx.storage.sql` (one database per key). Every table is keyed by `key_id`
so the statements need no change between the two; in a Durable Object the column is simply
constant. Times are Unix seconds as REAL.

The hot tables are WITHOUT ROWID with their natural key as the primary key: one B-tree per
table, so an admission dirties three pages (bucket, nonce, lease) and commits in a few
microseconds. The per-use counters live on the bucket row, which is written anyway, rather
than on the key row.
"""

from __future__ import annotations

from ..anomaly import ANOMALY_SCHEMA
from .budget import BUDGET_SCHEMA

# Migrations, in order: migration N (1-based) brings a store from version N-1 to N. Append new
# steps (ALTER TABLE ... ADD COLUMN, new tables); never edit a released one, since local stores
# and Durable Objects both keep the version they reached in `guard_meta`.
META = """CREATE TABLE IF NOT EXISTS guard_meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID"""

SCHEMA: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS keys (
        key_id TEXT PRIMARY KEY,
        alg TEXT NOT NULL,
        sealed_secret BLOB NOT NULL,
        scopes TEXT NOT NULL,
        status TEXT NOT NULL,
        version INTEGER NOT NULL,
        rate_per_minute REAL NOT NULL,
        burst INTEGER NOT NULL,
        max_concurrency INTEGER NOT NULL,
        max_call_gpu_ms INTEGER NOT NULL,
        expires_at REAL,
        created_at REAL NOT NULL,
        label TEXT NOT NULL DEFAULT ''
    )""",
    """CREATE TABLE IF NOT EXISTS buckets (
        key_id TEXT PRIMARY KEY,
        tokens REAL NOT NULL,
        updated_at REAL NOT NULL,
        last_used_at REAL,
        admitted_count INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS nonces (
        key_id TEXT NOT NULL,
        nonce TEXT NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (key_id, nonce)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS leases (
        key_id TEXT NOT NULL,
        lease_id TEXT NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (key_id, lease_id)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS idempotency (
        key_id TEXT NOT NULL,
        idem_key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        state TEXT NOT NULL,
        lease_id TEXT,
        status INTEGER,
        response_headers TEXT,
        response_body BLOB,
        expires_at REAL NOT NULL,
        PRIMARY KEY (key_id, idem_key)
    ) WITHOUT ROWID""",
)

# Tokens and key lifecycle (issue 4): during a rotation's grace window the previous sealed
# secret still verifies until `prev_valid_until`; `token_ttl_s` is the lifetime of the access
# tokens this key is granted (NULL: the gate's default).
ROTATION: tuple[str, ...] = (
    "ALTER TABLE keys ADD COLUMN prev_sealed_secret BLOB",
    "ALTER TABLE keys ADD COLUMN prev_valid_until REAL",
    "ALTER TABLE keys ADD COLUMN token_ttl_s INTEGER",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    SCHEMA,
    ROTATION,
    # Budgets, reservations ledger, account chunks, sent alerts, anomaly baselines (issue 6).
    (*BUDGET_SCHEMA, *ANOMALY_SCHEMA),
)
