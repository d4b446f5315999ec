"""Where the local gate keeps its state (`.gpushield/` by default) and its one secret.

The key-encryption key (KEK) comes from `GPUSHIELD_KEK` (base64url, 32 bytes) when set — the
way a deployment injects secrets — and otherwise from `<state>/kek`, created on first use with
owner-only permissions, so `gpushield dev` needs nothing to start.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gpushield_wire import credentials

KEK_ENV = "GPUSHIELD_KEK"


@dataclass(frozen=True, slots=True)
class StateDir:
    root: Path

    @property
    def keys_db(self) -> Path:
        return self.root / "keys.db"

    @property
    def audit_log(self) -> Path:
        return self.root / "audit.jsonl"

    def ensure(self) -> StateDir:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self

    def key_encryption_key(self, environ: Mapping[str, str] = os.environ) -> bytes:
        if text := environ.get(KEK_ENV):
            return credentials.parse_key_encryption_key(text, KEK_ENV)
        path = self.ensure().root / "kek"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(32))
        kek = path.read_bytes()
        if len(kek) != 32:
            raise ValueError(f"{path} is not a 32-byte key-encryption key")
        return kek
