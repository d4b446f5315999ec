"""The `[waf]` configuration section: parsed and validated here, next to the engine it tunes
(the gate's config.py only hands the table over), so the schema lives with the capability."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..sections import reject_unknown
from .engine import MODES, WafSettings
from .rules import families, load_rules

__all__ = ["parse_waf_settings"]

_KNOWN = {"mode", "paranoia_level", "threshold", "fail_open", "max_inspect_chars",
          "decode_depth", "families", "routes"}


def _mode(where: str, value: Any) -> Any:
    if value not in MODES:
        raise ValueError(f"{where} must be one of {', '.join(MODES)}, got {value!r}")
    return value


def _int(where: str, value: Any, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{where} must be an integer in {low}..{high}")
    return value


def parse_waf_settings(document: Mapping[str, Any], routes: Iterable[str]) -> WafSettings:
    """Builds WafSettings from the `[waf]` table; `routes` are the configured model names
    (a per-route mode for a model that does not exist is a typo, and refused)."""
    reject_unknown("waf", document, _KNOWN)
    defaults = WafSettings()
    known_families = set(families(load_rules()))
    family_modes = dict(document.get("families", {}))
    for name, value in family_modes.items():
        if name not in known_families:
            raise ValueError(f"[waf.families] has no family {name!r} "
                             f"(known: {', '.join(sorted(known_families))})")
        _mode(f"waf.families.{name}", value)
    route_modes = dict(document.get("routes", {}))
    known_routes = set(routes)
    for name, value in route_modes.items():
        if name not in known_routes:
            raise ValueError(f"[waf.routes] names no configured model: {name!r}")
        _mode(f"waf.routes.{name}", value)
    fail_open = document.get("fail_open", defaults.fail_open)
    if not isinstance(fail_open, bool):
        raise ValueError("waf.fail_open must be true or false")
    return WafSettings(
        mode=_mode("waf.mode", document.get("mode", defaults.mode)),
        paranoia_level=_int("waf.paranoia_level",
                            document.get("paranoia_level", defaults.paranoia_level), 1, 4),
        threshold=_int("waf.threshold", document.get("threshold", defaults.threshold), 1, 1000),
        fail_open=fail_open,
        max_inspect_chars=_int("waf.max_inspect_chars",
                               document.get("max_inspect_chars", defaults.max_inspect_chars),
                               256, 1024 * 1024),
        decode_depth=_int("waf.decode_depth",
                          document.get("decode_depth", defaults.decode_depth), 0, 4),
        families=tuple(sorted(family_modes.items())),
        routes=tuple(sorted(route_modes.items())),
    )
