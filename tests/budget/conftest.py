from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from .guardkit import Guard


@pytest.fixture
def guard(tmp_path: Path) -> Iterator[Guard]:
    loop = asyncio.new_event_loop()
    yield Guard.open(tmp_path / "keys.db", loop)
    loop.close()
