"""The gate's WAF: declarative rules (rules.py, data in rules/*.json), bounded normalisation
(normalize.py) and CRS-style anomaly scoring (engine.py). Standard library only: it runs in
Pyodide inside the Worker as well as in CPython."""

from __future__ import annotations

from .engine import Decision, Engine, WafSettings, form_items, request_items
from .rules import Rule, load_rules

__all__ = ["Decision", "Engine", "Rule", "WafSettings", "form_items", "load_rules",
           "request_items"]
