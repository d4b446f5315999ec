"""The key guard's tables, in the SQL dialect both runtimes share.

The same statements run on CPython's sqlite3 (one database for all keys, the local gate) and on
a Durable Object's `ctx.storage.sql` (one database per key). Every table is keyed by `key_id`
so the statements need no change between the two; in a Durable Object the column is simply
constant. Times are Unix seconds as REAL.
"""

from __future__ import annotations

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
        label TEXT NOT NULL DEFAULT '',
        last_used_at REAL,
        admitted_count INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE IF NOT EXISTS buckets (
        key_id TEXT PRIMARY KEY,
        tokens REAL NOT NULL,
        updated_at REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS nonces (
        key_id TEXT NOT NULL,
        nonce TEXT NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (key_id, nonce)
    )""",
    "CREATE INDEX IF NOT EXISTS nonces_by_expiry ON nonces (key_id, expires_at)",
    """CREATE TABLE IF NOT EXISTS leases (
        lease_id TEXT PRIMARY KEY,
        key_id TEXT NOT NULL,
        expires_at REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS leases_by_key ON leases (key_id, expires_at)",
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
    )""",
)
