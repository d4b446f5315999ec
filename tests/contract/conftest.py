"""Shared helpers for the contract tests: corpus access, a test CryptoPort, an HTTP parser."""

from __future__ import annotations

import sys
from pathlib import Path

# tests/ holds `corpora_path.py`; without an __init__.py it is not importable by default.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
