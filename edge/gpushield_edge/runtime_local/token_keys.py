"""Where the local gate's token-signing key comes from (like the KEK, see state.py).

`GPUSHIELD_TOKEN_SIGNING_KEY` when set (its format, rotation included, is documented in
`tokens/issuer.py`), otherwise `<state>/token-signing-key`, created on first start with
owner-only permissions. To rotate a local gate's key, edit that file to
`gts_NEW, gts_OLD@<unix time>` (or set the variable) and restart.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..tokens.issuer import SIGNING_KEY_ENV, new_signing_key_text
from .state import StateDir

FILE_NAME = "token-signing-key"


def token_signing_key_text(state: StateDir, environ: Mapping[str, str] = os.environ) -> str:
    if text := environ.get(SIGNING_KEY_ENV):
        return text
    path = state.ensure().root / FILE_NAME
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(new_signing_key_text() + "\n")
    return path.read_text(encoding="ascii")
