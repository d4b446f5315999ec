"""The rule engine: CRS-style anomaly scoring over normalised targets, one Decision per request.

Like OWASP CRS, most rules only add to an anomaly score and the request is refused when the
score reaches a threshold (default 5: one critical match, or two weaker ones); a rule with
action `block` refuses on its own, and `log` rules are only reported. Each family has a mode —
`block`, `shadow` (decide and report, never refuse) or `off` — and a route's mode caps its
families' modes, so a model can be put in shadow while rules are tuned for it.

The Decision carries rule ids and the score, never the matched text: it goes into the audit
trail and the problem+json answer, and both must be free of request content.

An exception inside the engine is a bug in a rule or in the engine; the request is refused
(`fail_open = false`, the default) because an attacker who can make the WAF crash must not get
through by doing so.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .normalize import Views, cmdline_view, code_view, normalize
from .rules import Rule, words_of
from .ssrf import has_internal_url

__all__ = ["MODES", "Decision", "Engine", "WafSettings"]

Mode = Literal["block", "shadow", "off"]
MODES: tuple[str, ...] = ("off", "shadow", "block")  # weakest first
_FORM_TARGETS = frozenset({"query", "body", "names"})
# A name directly before `(`: identifiers with dots/$ (`dbms_pipe.receive_message`, `$.get`).
_CALL = re.compile(r"([a-z_$][a-z0-9_$.]{0,63})(\s{0,8})\(")


@dataclass(frozen=True, slots=True)
class WafSettings:
    """The `[waf]` configuration section (see runtime_local/default.toml for the documented
    defaults). Mappings are tuples of pairs so settings are hashable and an engine can be
    built once per distinct configuration."""

    mode: Mode = "block"
    paranoia_level: int = 1
    threshold: int = 5
    fail_open: bool = False
    # Characters inspected per value (after this, a value is not looked at: the body-size
    # caps of the parse stage bound how much can hide past it).
    max_inspect_chars: int = 16 * 1024
    decode_depth: int = 2
    families: tuple[tuple[str, Mode], ...] = ()
    # Per route (model name) mode: caps every family's mode on that route.
    routes: tuple[tuple[str, Mode], ...] = ()

    def family_mode(self, family: str, route: str | None) -> Mode:
        family_mode = dict(self.families).get(family, "block")
        route_mode = dict(self.routes).get(route, self.mode) if route else self.mode
        return min(family_mode, route_mode, key=MODES.index)


@dataclass(frozen=True, slots=True)
class Decision:
    """What the engine decided: `block` refuses, `shadow` would have refused (reported only),
    `allow` lets the request on. `score` counts enforcing and shadow families alike."""

    action: Literal["allow", "shadow", "block"]
    score: int = 0
    rule_ids: tuple[str, ...] = ()
    families: tuple[str, ...] = ()
    error: bool = False

    def audit(self) -> dict[str, object]:
        """The audit/problem view: ids, score and outcome, no request content."""
        document: dict[str, object] = {
            "action": self.action, "score": self.score, "rule_ids": list(self.rules_sorted),
        }
        if self.error:
            document["engine_error"] = True
        return document

    @property
    def rules_sorted(self) -> tuple[str, ...]:
        return tuple(sorted(self.rule_ids))


@dataclass(slots=True)
class _Matches:
    ids: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    enforced_score: int = 0
    total_score: int = 0
    enforced_block: bool = False
    shadow_block: bool = False
    families: dict[str, None] = field(default_factory=dict)


class LiteralScanner:
    """Finds which of many literals occur in a text in one regex pass.

    The literals are compiled into a trie-shaped regex inside a lookahead, tried at every
    position: at each position the trie follows at most one branch per character, so a pass
    is linear in the text (times the longest literal). The match at a position is the longest
    literal starting there; every shorter literal starting there is one of its prefixes, so
    the prefixes are checked too. This replaces one substring scan per literal (hundreds of
    scans of the same text) with one.
    """

    __slots__ = ("_literals", "pattern")

    def __init__(self, literals: Iterable[str]) -> None:
        self._literals = frozenset(literals)
        trie: dict[str, dict[str, object]] = {}
        for literal in self._literals:
            node: dict[str, object] = trie
            for char in literal:
                node = node.setdefault(char, {})  # type: ignore[assignment]
            node[""] = {}
        self.pattern = re.compile("(?=(" + _trie_regex(trie) + "))") if trie else None

    def scan(self, text: str) -> frozenset[str]:
        if self.pattern is None:
            return frozenset()
        longest = set(self.pattern.findall(text))
        literals = self._literals
        found = set(longest)
        for match in longest:
            for end in range(1, len(match)):
                prefix = match[:end]
                if prefix in literals:
                    found.add(prefix)
        return frozenset(found)


def _trie_regex(node: dict[str, object]) -> str:
    branches = [re.escape(char) + _trie_regex(child)  # type: ignore[arg-type]
                for char, child in sorted(node.items()) if char]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    # A literal ends here: the longer continuations are tried first (greedy `?`).
    if "" in node:
        return body + "?" if len(branches) == 1 and len(body) == 1 else f"(?:{body})?"
    return body


def _entropy(text: str) -> float:
    counts = Counter(text)
    length = len(text)
    return -sum(n / length * math.log2(n / length) for n in counts.values())


class _ViewCache:
    """Per value: the extra views, word sets, called names and which prefilter literals occur
    are computed at most once per text, on demand, and shared by every rule."""

    __slots__ = ("_calls", "_cmd", "_code", "_literals", "_present", "_words", "views")

    def __init__(self, views: Views, literals: LiteralScanner) -> None:
        self.views = views.all()
        self._literals = literals
        self._cmd: tuple[str, ...] | None = None
        self._code: tuple[str, ...] | None = None
        self._words: dict[str, frozenset[str]] = {}
        self._calls: dict[str, dict[str, int]] = {}
        self._present: dict[str, frozenset[str]] = {}

    def present(self, text: str) -> frozenset[str]:
        """The prefilter literals (of the rules for this target) that occur in `text`, found
        in one pass however many rules and literals there are (see LiteralScanner)."""
        found = self._present.get(text)
        if found is None:
            found = self._present[text] = self._literals.scan(text)
        return found

    def texts(self, rule: Rule) -> tuple[str, ...]:
        if rule.view == "text":
            return self.views
        if rule.view == "code":
            if self._code is None:
                self._code = tuple(code_view(text) for text in self.views)
            return self._code
        if self._cmd is None:
            self._cmd = tuple(cmdline_view(text) for text in self.views)
        return self._cmd

    def calls(self, text: str) -> dict[str, int]:
        """Names written like function calls, with the fewest spaces seen before `(`."""
        calls = self._calls.get(text)
        if calls is None:
            calls = {}
            if "(" in text:
                for match in _CALL.finditer(text):
                    name, gap = match.group(1), len(match.group(2))
                    if gap < calls.get(name, 9):
                        calls[name] = gap
            self._calls[text] = calls
        return calls

    def words(self, text: str) -> frozenset[str]:
        words = self._words.get(text)
        if words is None:
            words = self._words[text] = words_of(text)
        return words


def _matches(rule: Rule, text: str, cache: _ViewCache) -> bool:
    operator = rule.operator
    if operator == "regex":
        if rule.prefilter and rule.prefilter_set.isdisjoint(cache.present(text)):
            return False
        assert rule.pattern is not None
        return rule.pattern.search(text) is not None
    if operator == "phrases":
        if rule.substrings:
            return any(phrase in text for phrase in rule.substrings)
        if rule.calls:
            return any(name in rule.calls and gap <= rule.call_gap
                       for name, gap in cache.calls(text).items())
        words = cache.words(text)
        if not rule.words.isdisjoint(words):
            return True
        return any(first in words and _has_phrase(text, phrase)
                   for first, phrase in rule.sequences)
    if operator == "private_url":
        return has_internal_url(text)
    if operator == "length":
        return len(text) > rule.limit
    if len(text) < rule.min_length:
        return False
    if operator == "entropy":
        return _entropy(text) >= rule.limit
    share = sum(1 for char in text if char in rule.chars) / len(text)
    return share >= rule.limit


def _has_phrase(text: str, phrase: str) -> bool:
    """`phrase` occurs in `text` on word boundaries (bounded: one scan per occurrence)."""
    start = text.find(phrase)
    end_gap = len(phrase)
    while start != -1:
        before = text[start - 1] if start else " "
        after_index = start + end_gap
        after = text[after_index] if after_index < len(text) else " "
        if not (before.isalnum() or before == "_") and not (after.isalnum() or after == "_"):
            return True
        start = text.find(phrase, start + 1)
    return False


class Engine:
    """Rules selected for one paranoia level, grouped by target, ready to evaluate."""

    def __init__(self, rules: Sequence[Rule], settings: WafSettings) -> None:
        self.settings = settings
        active = [rule for rule in rules if rule.paranoia <= settings.paranoia_level]
        self.rules = tuple(active)
        self._by_target: dict[str, tuple[Rule, ...]] = {}
        for rule in active:
            for target in rule.targets:
                self._by_target[target] = (*self._by_target.get(target, ()), rule)
        self._literals = {
            target: LiteralScanner(lit for rule in rules for lit in rule.prefilter)
            for target, rules in self._by_target.items()
        }
        self._modes: dict[str | None, dict[str, Mode]] = {}

    def _modes_for(self, route: str | None) -> dict[str, Mode]:
        modes = self._modes.get(route)
        if modes is None:
            modes = {rule.family: self.settings.family_mode(rule.family, route)
                     for rule in self.rules}
            if len(self._modes) < 1024:  # routes are configured model names: few
                self._modes[route] = modes
        return modes

    def evaluate(self, items: Iterable[tuple[str, str]], route: str | None = None) -> Decision:
        """Inspects (target, value) pairs; never raises (see the fail-open setting)."""
        try:
            return self._evaluate(items, route)
        except Exception:
            # Deliberately not logged with the exception text: it could quote the request.
            action: Literal["allow", "block"] = "allow" if self.settings.fail_open else "block"
            return Decision(action=action, error=True)

    def _evaluate(self, items: Iterable[tuple[str, str]], route: str | None) -> Decision:
        settings = self.settings
        modes = self._modes_for(route)
        found = _Matches()
        for target, value in items:
            rules = self._by_target.get(target)
            if not rules or not value:
                continue
            cache = _ViewCache(
                normalize(value, max_chars=settings.max_inspect_chars,
                          depth=settings.decode_depth, form=target in _FORM_TARGETS),
                self._literals[target],
            )
            for rule in rules:
                if rule.id in found.seen:
                    continue
                mode = modes[rule.family]
                if mode == "off":
                    continue
                if any(_matches(rule, text, cache) for text in cache.texts(rule)):
                    self._record(found, rule, mode)
        return self._decide(found)

    def _record(self, found: _Matches, rule: Rule, mode: Mode) -> None:
        found.seen.add(rule.id)
        found.ids.append(rule.id)
        found.families[rule.family] = None
        if rule.action == "log":
            return
        found.total_score += rule.score
        if mode == "block":
            found.enforced_score += rule.score
            found.enforced_block |= rule.action == "block"
        else:
            found.shadow_block |= rule.action == "block"

    def _decide(self, found: _Matches) -> Decision:
        threshold = self.settings.threshold
        if found.enforced_block or found.enforced_score >= threshold:
            action: Literal["allow", "shadow", "block"] = "block"
        elif found.shadow_block or found.total_score >= threshold:
            action = "shadow"
        else:
            action = "allow"
        return Decision(action, found.total_score, tuple(found.ids), tuple(found.families))


def request_items(
    path: str, query: str, headers: Mapping[str, str], skip_headers: frozenset[str]
) -> list[tuple[str, str]]:
    """The HTTP parts of a request as (target, value) pairs: path, each query argument's name
    and value, and each header value not in `skip_headers`."""
    items: list[tuple[str, str]] = [("path", path)]
    items.extend(form_items("query", query))
    items.extend(("headers", value) for name, value in headers.items()
                 if name not in skip_headers)
    return items


MAX_FORM_ARGS = 128


def form_items(target: str, encoded: str) -> list[tuple[str, str]]:
    """A form-encoded string split into names and values (decoding happens in normalize)."""
    items: list[tuple[str, str]] = []
    if not encoded:
        return items
    # The last part keeps any remainder unsplit, so nothing past the cap goes uninspected.
    for part in encoded.split("&", MAX_FORM_ARGS - 1):
        name, sep, value = part.partition("=")
        if sep:
            items.append(("names", name))
            items.append((target, value))
        else:
            # A bare value (`?payload`): no name, the whole part is the value.
            items.append((target, name))
    return items
