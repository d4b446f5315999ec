"""The rule engine: CRS-style anomaly scoring over normalised targets, one Decision per request.

Like OWASP CRS, most rules only add to an anomaly score and the request is refused when the
score reaches a threshold (default 5: one critical match, or two weaker ones); a rule with
action `block` refuses on its own, and `log` rules are only reported. Each family has a mode —
`block`, `shadow` (decide and report, never refuse) or `off` — and a route's mode caps its
families' modes, so a model can be put in shadow while rules are tuned for it.

The Decision carries rule ids and the score, never the matched text: it goes into the audit
trail and the problem+json answer, and both must be free of request content.

Matching is a function of (target, value) alone, so short values (header values, paths,
form arguments: the same ones arrive with request after request) have their matching rules
remembered in a bounded memo; modes and scores are applied per request afterwards.

An exception inside the engine is a bug in a rule or in the engine; the request is refused
(`fail_open = false`, the default) because an attacker who can make the WAF crash must not get
through by doing so.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .literals import LiteralFinder
from .normalize import Views, cmdline_view, code_view, normalize
from .rules import WORD_LITERAL, Part, Rule, words_of
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


# ASCII bytes that end a word become spaces before splitting into words (bytes ≥ 0x80, the
# UTF-8 of other characters, stay: a word literal is ASCII, so no split can cut one).
_WORD_BYTES = bytes(32 if code < 128 and not (chr(code).isalnum() or chr(code) == "_") else code
                    for code in range(256))
MAX_WINDOWS = 32
# The views rules read, cheapest first: the normalised text, then the shell and code views.
VIEWS = ("text", "cmdline", "code")
# Up to this length a text's literals are found in one pass over it (see `_ViewCache._scan`).
SHORT_TEXT = 256
# A view whose rules have at most this many literals in all looks for them one by one.
FEW_LITERALS = 8
# Short values' matches are remembered (bounded: the memo is emptied when full).
MEMO_CHARS = 256
MEMO_ENTRIES = 4096


def _entropy(text: str) -> float:
    counts = Counter(text)
    length = len(text)
    return -sum(n / length * math.log2(n / length) for n in counts.values())


def _words(text: str) -> set[bytes]:
    """The distinct words of `text`: a word-only literal occurs in the text exactly when it
    occurs in one of them. Split on UTF-8 bytes, where `translate` runs in C whatever the
    text (on a non-ASCII `str` it is a dict lookup per character); `surrogatepass` because
    decoded `\\ud800` escapes may leave lone surrogates."""
    return set(text.encode("utf-8", "surrogatepass").translate(_WORD_BYTES).split())


def _joined(words: Iterable[bytes]) -> str:
    """Words as one space-separated string (a vocabulary) to search for literals."""
    return b" ".join(words).decode("utf-8", "surrogatepass")


@dataclass(frozen=True, slots=True)
class _TargetPlan:
    """One target's rules, indexed by their prefilter literals so that only rules whose
    literals occur are even looked at (most rules never are, for an ordinary value)."""

    rules: tuple[Rule, ...]
    always: tuple[Rule, ...]  # no prefilter: evaluated on every value
    # Per view: prefilter key / substring -> the rules that listed it.
    by_key: dict[str, dict[str, tuple[Rule, ...]]]
    by_sub: dict[str, dict[str, tuple[Rule, ...]]]
    order: dict[str, int]
    # For short texts, literals are found by one pass over the text instead of one search
    # per literal: single characters, and the rest bucketed by their first two characters.
    singles: tuple[str, ...]
    by_pair: dict[str, tuple[str, ...]]
    word_set: frozenset[str]
    # Long texts: every word literal (the rules', their parts' and their groups', and the
    # substring literals' tokens) found in one pass over the text's vocabulary.
    word_finder: LiteralFinder
    # Long texts: each substring literal with the word tokens (two or more characters) it
    # contains, filed under its longest token. A text lacking one of them lacks the literal,
    # which is then not searched for: `'don't follow'` costs a scan only when "don" and
    # "follow" are both present. Literals without tokens (`://`, `${`) are always searched.
    sub_plain: tuple[str, ...]
    sub_by_token: dict[str, tuple[tuple[str, frozenset[str]], ...]]
    sub_set: frozenset[str]

    @classmethod
    def build(cls, rules: tuple[Rule, ...]) -> _TargetPlan:
        by_key: dict[str, dict[str, tuple[Rule, ...]]] = {}
        by_sub: dict[str, dict[str, tuple[Rule, ...]]] = {}
        for rule in rules:
            for key in rule.prefilter_keys:
                index = by_key.setdefault(rule.view, {})
                index[key] = (*index.get(key, ()), rule)
            for sub in rule.prefilter_subs:
                index = by_sub.setdefault(rule.view, {})
                index[sub] = (*index.get(sub, ()), rule)
        # The parts' own literals are looked up too (see `_matches`).
        words = {lit for rule in rules for lit in rule.prefilter_keys}
        words.update(lit for rule in rules for part in rule.parts for lit in part.prefilter_keys)
        subs = {lit for rule in rules for lit in rule.prefilter_subs}
        subs.update(lit for rule in rules for part in rule.parts for lit in part.prefilter_subs)
        gates = [(sub, frozenset(token for token in WORD_LITERAL.findall(sub)
                                 if len(token) >= 2))
                 for sub in sorted(subs)]
        by_token: dict[str, list[tuple[str, frozenset[str]]]] = {}
        for sub, tokens in gates:
            if tokens:
                by_token.setdefault(max(sorted(tokens), key=len), []).append((sub, tokens))
        buckets: dict[str, list[str]] = {}
        for literal in sorted(words | subs):
            if len(literal) > 1:
                buckets.setdefault(literal[:2], []).append(literal)
        pairs = {pair: tuple(found) for pair, found in buckets.items()}
        return cls(
            rules=rules,
            always=tuple(rule for rule in rules if not rule.prefilter),
            by_key=by_key,
            by_sub=by_sub,
            order={rule.id: index for index, rule in enumerate(rules)},
            singles=tuple(sorted(lit for lit in words | subs if len(lit) == 1)),
            by_pair=pairs,
            word_set=frozenset(words),
            word_finder=LiteralFinder(words.union(
                (literal for rule in rules for part in rule.parts for group in part.groups
                 for literal, is_word in group if is_word),
                (token for _, tokens in gates for token in tokens))),
            sub_plain=tuple(sub for sub, tokens in gates if not tokens),
            sub_by_token={token: tuple(found) for token, found in by_token.items()},
            sub_set=frozenset(subs),
        )



class _ViewCache:
    """Per value: the extra views, word keys, present substrings and called names are computed
    at most once per text, on demand, and shared by every rule."""

    __slots__ = ("_calls", "_cmd", "_code", "_first_words", "_keys", "_plan", "_present_words",
                 "_subs", "_words", "views")

    def __init__(self, views: Views, plan: _TargetPlan) -> None:
        self.views = views.all()
        self._plan = plan
        self._cmd: tuple[str, ...] | None = None
        self._code: tuple[str, ...] | None = None
        self._words: dict[str, frozenset[str]] = {}
        self._calls: dict[str, dict[str, int]] = {}
        self._keys: dict[str, frozenset[str]] = {}
        # Per long text: the finder's word literals present in it (see `_find_words`).
        self._present_words: dict[str, frozenset[str]] = {}
        self._first_words: tuple[set[bytes], frozenset[str]] | None = None
        self._subs: dict[str, frozenset[str]] = {}

    def _scan(self, text: str) -> frozenset[str]:
        """Every literal of the plan present in a short `text`, in one pass over it."""
        plan = self._plan
        found = [char for char in plan.singles if char in text]
        by_pair = plan.by_pair
        for index in range(len(text) - 1):
            bucket = by_pair.get(text[index:index + 2])
            if bucket:
                found.extend(literal for literal in bucket if text.startswith(literal, index))
        return frozenset(found)

    def _present_keys(self, text: str) -> frozenset[str]:
        keys = self._keys.get(text)
        if keys is None and len(text) <= SHORT_TEXT:
            present = self._scan(text)
            keys = self._keys[text] = present & self._plan.word_set
            self._subs[text] = present & self._plan.sub_set
        if keys is None:
            present = self._present_words[text] = self._find_words(text)
            keys = self._keys[text] = present & self._plan.word_set
        return keys

    def _find_words(self, text: str) -> frozenset[str]:
        """The finder's literals occurring in `text`'s words. A value's other long texts (its
        command-line and code views) share most words with the first: only their new words
        are searched, and the first text's finds are kept — a superset of the literals
        present, which only ever adds candidates (each rule's regex still decides)."""
        words = _words(text)
        finder = self._plan.word_finder
        if self._first_words is None:
            present = finder.find(_joined(words))
            self._first_words = (words, present)
            return present
        first_words, first_present = self._first_words
        new = words - first_words
        return first_present | finder.find(_joined(new)) if new else first_present

    def has_any(self, text: str, group: tuple[tuple[str, bool], ...]) -> bool:
        """Whether one literal of a part's group occurs in `text`; in a long text, word
        literals (see `Part.groups`) were all found already."""
        present = self._present_words.get(text)
        if present is None:
            return any(literal in text for literal, _ in group)
        return any(literal in present if is_word else literal in text
                   for literal, is_word in group)

    def _present_subs(self, text: str) -> frozenset[str]:
        subs = self._subs.get(text)
        if subs is not None:
            return subs
        # A short text's scan finds the substrings too; a long text's words gate them.
        self._present_keys(text)
        subs = self._subs.get(text)
        if subs is None:
            present = self._present_words[text]
            plan = self._plan
            found = [literal for literal in plan.sub_plain if literal in text]
            for token in present.intersection(plan.sub_by_token):
                found.extend(literal for literal, tokens in plan.sub_by_token[token]
                             if tokens <= present and literal in text)
            subs = self._subs[text] = frozenset(found)
        return subs

    def candidates(self, views: tuple[str, ...] = VIEWS) -> list[Rule]:
        """The rules of `views` worth evaluating on this value, in rule-file order: those
        without a prefilter, and those with a prefilter literal present in their view's
        texts. Asking one view at a time lets a blocked request skip the other views' work."""
        plan = self._plan
        chosen: dict[str, Rule] = {rule.id: rule for rule in plan.always if rule.view in views}
        for view in views:
            by_key = plan.by_key.get(view)
            by_sub = plan.by_sub.get(view)
            if not by_key and not by_sub:
                continue
            for text in self.texts_of(view):
                # Looked up one present literal at a time: `set.intersection(dict)` would
                # walk the whole (large) index instead.
                if by_key:
                    for key in self._present_in(text, by_key, self._present_keys):
                        for rule in by_key.get(key, ()):
                            chosen[rule.id] = rule
                if by_sub:
                    for sub in self._present_in(text, by_sub, self._present_subs):
                        for rule in by_sub.get(sub, ()):
                            chosen[rule.id] = rule
        return sorted(chosen.values(), key=lambda rule: plan.order[rule.id])

    def _present_in(self, text: str, index: Mapping[str, object],
                    present: Callable[[str], frozenset[str]]) -> Iterable[str]:
        """The literals of a view's `index` occurring in `text`. A view with only a few (a
        prompt's command-line view has one) asks for them one by one, unless everything
        present in the text is known already: finding all of the plan's literals in a second
        long text would cost as much as in the first, for a handful of rules."""
        if len(index) <= FEW_LITERALS and text not in self._keys:
            return [literal for literal in index if literal in text]
        return present(text)

    def hits(self, text: str, rule: Rule | Part) -> tuple[str, ...]:
        """The prefilter needles of a rule or part found in `text` (empty: no match)."""
        found: tuple[str, ...] = ()
        if rule.prefilter_keys:
            keys = self._present_keys(text)
            if not rule.prefilter_keys.isdisjoint(keys):
                found = tuple(rule.prefilter_keys & keys)
        if rule.prefilter_subs:
            subs = self._present_subs(text)
            if not rule.prefilter_subs.isdisjoint(subs):
                found += tuple(rule.prefilter_subs & subs)
        return found

    def texts(self, rule: Rule) -> tuple[str, ...]:
        return self.texts_of(rule.view)

    def texts_of(self, view: str) -> tuple[str, ...]:
        if view == "text":
            return self.views
        if view == "code":
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


def _matches(rule: Rule, text: str, cache: _ViewCache, prefilter: bool = True) -> bool:
    operator = rule.operator
    if operator == "regex":
        pattern = rule.pattern
        assert pattern is not None
        if not rule.prefilter or not prefilter:
            return pattern.search(text) is not None
        if not cache.hits(text, rule):
            return False
        if len(text) <= SHORT_TEXT:  # one search of a short text beats a look at each part
            return pattern.search(text) is not None
        # Each top-level alternative on its own: its literals and window are tighter.
        for part in rule.parts:
            if not part.prefilter:
                if part.pattern.search(text) is not None:
                    return True
                continue
            needles = cache.hits(text, part)
            if not needles or not all(cache.has_any(text, group) for group in part.groups):
                continue
            if part.window is None:
                if part.pattern.search(text) is not None:
                    return True
            elif _search_windows(part.pattern, text, needles, part.window):
                return True
        return False
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


def _search_windows(pattern: re.Pattern[str], text: str, needles: tuple[str, ...],
                    width: int) -> bool:
    """Searches only around the needles' occurrences: a match contains one of them and is at
    most `width` long, so it lies within `width` characters of it. Many occurrences (an input
    built to defeat this) fall back to one whole-text search: never worse than no windows."""
    if sum(text.count(needle) for needle in needles) > MAX_WINDOWS:
        return pattern.search(text) is not None
    spans: list[tuple[int, int]] = []
    for needle in needles:
        start = text.find(needle)
        while start != -1:
            if len(spans) >= MAX_WINDOWS:
                return pattern.search(text) is not None
            # +8 on the right: lookaheads and \b just past a match's last character.
            spans.append((max(0, start - width), start + len(needle) + width + 8))
            start = text.find(needle, start + 1)
    spans.sort()
    merged_end = -1
    merged_start = 0
    for start, end in spans:
        if start > merged_end:
            if merged_end >= 0 and pattern.search(text, merged_start, merged_end):
                return True
            merged_start, merged_end = start, end
        else:
            merged_end = max(merged_end, end)
    return merged_end >= 0 and pattern.search(text, merged_start, merged_end) is not None


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

    def __init__(self, rules: Sequence[Rule], settings: WafSettings,
                 *, prefilter: bool = True) -> None:
        """`prefilter=False` evaluates every rule on the whole text: the reference the
        prefilters and windows must agree with (tests compare the two on the corpora)."""
        self.settings = settings
        self.prefilter = prefilter
        active = [rule for rule in rules if rule.paranoia <= settings.paranoia_level]
        self.rules = tuple(active)
        self._by_target: dict[str, tuple[Rule, ...]] = {}
        for rule in active:
            for target in rule.targets:
                self._by_target[target] = (*self._by_target.get(target, ()), rule)
        # Built on a target's first value: a prompt request never needs the query's plan,
        # and each costs milliseconds to build (more in Pyodide) on a new isolate's first
        # request.
        self._plans: dict[str, _TargetPlan] = {}
        self._modes: dict[str | None, dict[str, Mode]] = {}
        # (target, value) -> matching rules, for values of at most MEMO_CHARS characters.
        self._memo: dict[tuple[str, str], tuple[Rule, ...]] = {}

    def plan(self, target: str) -> _TargetPlan | None:
        """The target's rules, indexed (None: no rule looks at this target)."""
        plan = self._plans.get(target)
        if plan is None:
            rules = self._by_target.get(target)
            if rules is None:
                return None
            plan = self._plans[target] = _TargetPlan.build(rules)
        return plan

    def targets(self) -> tuple[str, ...]:
        return tuple(self._by_target)

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
        modes = self._modes_for(route)
        found = _Matches()
        memo = self._memo
        for target, value in items:
            if not value:
                continue
            plan = self.plan(target)
            if plan is None:
                continue
            if self.prefilter and len(value) <= MEMO_CHARS:
                matched = memo.get((target, value))
                if matched is None:
                    matched = self._matched(target, value, plan)
                    if len(memo) >= MEMO_ENTRIES:
                        memo.clear()
                    memo[(target, value)] = matched
                for rule in matched:
                    mode = modes[rule.family]
                    if rule.id not in found.seen and mode != "off":
                        self._record(found, rule, mode)
                if self._blocked(found):
                    return self._decide(found)
                continue
            cache = self._views(target, value, plan)
            for rule in self._ordered(cache, plan):
                if rule.id in found.seen:
                    continue
                mode = modes[rule.family]
                if mode == "off":
                    continue
                if any(_matches(rule, text, cache, self.prefilter)
                       for text in cache.texts(rule)):
                    self._record(found, rule, mode)
                    if self._blocked(found):
                        # The request is refused whatever else matches: stop here, so an
                        # input stuffed with every rule's trigger costs one match, not all.
                        return self._decide(found)
        return self._decide(found)

    def _ordered(self, cache: _ViewCache, plan: _TargetPlan) -> Iterator[Rule]:
        """Rules to evaluate, one view at a time (the plain text first: its views are built
        already), so a request blocked on the text never pays for its command-line and code
        views. Without prefilters, simply every rule in file order (the reference engine)."""
        if not self.prefilter:
            yield from plan.rules
            return
        for view in VIEWS:
            yield from cache.candidates((view,))

    def _blocked(self, found: _Matches) -> bool:
        return found.enforced_block or found.enforced_score >= self.settings.threshold

    def _matched(self, target: str, value: str, plan: _TargetPlan) -> tuple[Rule, ...]:
        """Every rule of the target matching `value`, whatever the route's modes: what the
        memo keeps for short values (the same header values come with request after
        request; matching is a function of target and value alone)."""
        cache = self._views(target, value, plan)
        return tuple(rule for rule in cache.candidates()
                     if any(_matches(rule, text, cache) for text in cache.texts(rule)))

    def _views(self, target: str, value: str, plan: _TargetPlan) -> _ViewCache:
        """The value normalised once, with its views and literal finds shared by every rule."""
        settings = self.settings
        return _ViewCache(normalize(value, max_chars=settings.max_inspect_chars,
                                    depth=settings.decode_depth,
                                    form=target in _FORM_TARGETS), plan)

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
