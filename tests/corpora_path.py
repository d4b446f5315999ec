"""Where the third-party test corpora live (read-only, never copied into the repo).

`$GPUSHIELD_CORPORA` wins; otherwise the sibling `shared/corpora` of the repository root.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_DEFAULT = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpora"


def corpora_path() -> Path:
    """The configured location, whether or not it exists (for collection-time globbing)."""
    configured = os.environ.get("GPUSHIELD_CORPORA")
    return Path(configured) if configured else _DEFAULT.resolve()


def corpora_dir() -> Path:
    """The corpora root, or skip the calling test when it is not there."""
    path = corpora_path()
    if not path.is_dir():
        pytest.skip(f"corpora not found at {path}; set GPUSHIELD_CORPORA")
    return path
