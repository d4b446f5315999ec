"""Suite-wide settings: where the repository is, and CI's rule that corpora must be present."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # `tests.support` helpers


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("GPUSHIELD_REQUIRE_CORPORA") != "1":
        return
    from tests.corpora_path import corpora_path

    if not corpora_path().is_dir():
        raise pytest.UsageError(
            f"GPUSHIELD_REQUIRE_CORPORA=1 but no corpora at {corpora_path()}: "
            "corpus tests would be skipped"
        )
