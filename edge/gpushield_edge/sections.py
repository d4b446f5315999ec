"""One rule every config section follows: a setting the gate does not know is an error.

A misspelt `max_prompt_chars` silently ignored would leave a limit unset; refusing to start
names the section and the settings instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def reject_unknown(section: str, document: Mapping[str, Any], known: Iterable[str]) -> None:
    unknown = set(document) - set(known)
    if unknown:
        raise ValueError(f"[{section}] has unknown settings: {', '.join(sorted(unknown))}")
