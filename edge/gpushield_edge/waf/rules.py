"""Declarative rules, loaded from the JSON data files in `rules/` (one file per family).

A rule says *where* to look (targets), *what* to look for (an operator and its argument),
*how strongly* (action and score) and *from which paranoia level on* it runs. Rules are data so
that they ship in the Worker bundle as plain files, can be reviewed without reading code, and
can be linted (tests/waf/test_redos.py checks every regex for linear-time shape).

Operators:
- `regex`: `re.search` on the canonical (lower-case, decoded) text. No `re.I` — the text is
  already case-folded — and every quantifier bounded, so a search is linear in the input.
  The engine derives from each pattern the literals one of which every match contains
  (`derived_prefilter`) and runs the regex only where one occurs: most rules never run on an
  ordinary prompt, which is where the speed comes from. Each top-level alternative of a
  pattern (`a|b`, and `(?:a|b)c` as `ac|bc`) is prefiltered on its own, with its own window
  and up to three further literal groups that every match also contains one of.
  Phrase rules use their phrases as prefilter literals.
- `phrases`: a set of words or word sequences, matched on word boundaries (`match: "word"`),
  as plain substrings (`match: "substring"`), or as names called like functions
  (`match: "call"`: `name(`, with at most `gap` spaces before the parenthesis).
- `length`: the value is longer than `max` characters.
- `entropy` / `ratio`: Shannon entropy in bits per character, or the share of characters from
  `chars`, at least `min`, on values of at least `min_length` characters.
- `private_url`: a URL whose host is internal (loopback, private, link-local, metadata), as
  decided by `ipaddress` in ssrf.py — a regex cannot do CIDR arithmetic or octal hosts.

Views: `text` (canonical), `cmdline` (shell quoting evasions removed) or `code` (SQL/JS
`/* */` comments removed).
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "ACTIONS",
    "OPERATORS",
    "TARGETS",
    "Rule",
    "load_rules",
    "parse_rule_file",
]

Action = Literal["block", "score", "log"]
Operator = Literal["regex", "phrases", "length", "entropy", "ratio", "private_url"]
View = Literal["text", "cmdline", "code"]

ACTIONS: tuple[str, ...] = ("block", "score", "log")
OPERATORS: tuple[str, ...] = ("regex", "phrases", "length", "entropy", "ratio", "private_url")
# path: the URL path; query / body: form-encoded argument values, one by one; names: the
# argument names (and JSON keys); headers: header values; prompt: the model's prompt field;
# json: every other JSON string.
TARGETS: tuple[str, ...] = ("path", "query", "names", "headers", "body", "prompt", "json")
VIEWS: tuple[str, ...] = ("text", "cmdline", "code")

RULES_DIR = Path(__file__).parent / "rules"
_WORD_SPLIT = re.compile(r"[^\w]+")


@cache
def compiled(source: str) -> re.Pattern[str]:
    """A part's regex, compiled the first time a text gets that far: most parts never run in
    a given isolate, and compiling all ~400 up front was half a new Worker's first request."""
    return re.compile(source)


@dataclass(frozen=True, slots=True)
class Part:
    """One top-level alternative of a rule's regex (see `Rule.parts`)."""

    source: str
    prefilter_keys: frozenset[str]
    prefilter_subs: frozenset[str]
    window: int | None
    # Other literal sets each match contains one of (see `derived_groups`), each literal
    # with whether it is a word literal (the engine's literal finder sees those).
    groups: tuple[tuple[tuple[str, bool], ...], ...] = ()

    @property
    def prefilter(self) -> bool:
        return bool(self.prefilter_keys or self.prefilter_subs)

    @property
    def pattern(self) -> re.Pattern[str]:
        return compiled(self.source)


@dataclass(frozen=True, slots=True)
class Rule:
    """One detection: see the module docstring for the meaning of each field."""

    id: str
    family: str
    description: str
    targets: frozenset[str]
    operator: Operator
    action: Action = "score"
    score: int = 5
    paranoia: int = 1
    view: View = "text"
    pattern: re.Pattern[str] | None = None
    prefilter: tuple[str, ...] = ()
    # The prefilter split (see `_prefilter`): word literals and other substrings.
    prefilter_keys: frozenset[str] = frozenset()
    prefilter_subs: frozenset[str] = frozenset()
    # The top-level alternatives of the pattern, each with its own prefilter and window (the
    # longest match it can produce, when finite and it has no `$`: the engine then searches
    # only around prefilter hits instead of the whole text):
    # `A|B` matches somewhere exactly when A or B does, and each alternative alone has longer
    # literals and a shorter window than the whole (a single part when there is no `|`).
    parts: tuple[Part, ...] = ()
    words: frozenset[str] = frozenset()
    # Multi-word phrases as (first word, full phrase) for a cheap set check before `in`.
    sequences: tuple[tuple[str, str], ...] = ()
    substrings: tuple[str, ...] = ()
    calls: frozenset[str] = frozenset()
    call_gap: int = 0
    limit: float = 0.0
    min_length: int = 0
    chars: frozenset[str] = frozenset()

    @property
    def source(self) -> str | None:
        """The regex source (for the ReDoS lint), or None for other operators."""
        return self.pattern.pattern if self.pattern is not None else None


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ValueError(f"{what} must be a list of non-empty strings")
    return tuple(value)


def _rule(family: str, defaults: Mapping[str, Any], entry: Mapping[str, Any]) -> Rule:
    known = {
        "id", "description", "targets", "operator", "action", "score", "paranoia", "view",
        "pattern", "phrases", "match", "gap", "max", "min", "min_length", "chars",
    }
    unknown = set(entry) - known
    rule_id = entry.get("id")
    if not isinstance(rule_id, str) or not rule_id:
        raise ValueError(f"{family}: a rule has no id")
    if unknown:
        raise ValueError(f"{rule_id}: unknown fields {sorted(unknown)}")
    targets = frozenset(_strings(entry.get("targets", defaults.get("targets")), "targets"))
    if not targets <= set(TARGETS):
        raise ValueError(f"{rule_id}: unknown targets {sorted(targets - set(TARGETS))}")
    operator = entry.get("operator")
    action = entry.get("action", "score")
    view = entry.get("view", "text")
    paranoia = entry.get("paranoia", 1)
    score = entry.get("score", 5)
    if operator not in OPERATORS or action not in ACTIONS or view not in VIEWS:
        raise ValueError(f"{rule_id}: bad operator, action or view")
    if not isinstance(paranoia, int) or not 1 <= paranoia <= 4:
        raise ValueError(f"{rule_id}: paranoia must be 1..4")
    if not isinstance(score, int) or score < 0:
        raise ValueError(f"{rule_id}: score must be a non-negative integer")
    fields: dict[str, Any] = {}
    if operator == "regex":
        pattern = entry.get("pattern")
        # Text is case-folded before matching; an upper-case literal could never match.
        if not isinstance(pattern, str) or _has_upper_literal(pattern):
            raise ValueError(f"{rule_id}: pattern must be a lower-case regex string")
        fields["pattern"] = re.compile(pattern)
        # The prefilter is derived from the pattern, never hand-written: it cannot miss.
        derived = derivation(pattern)
        fields["prefilter"] = tuple(derived["prefilter"])
        keys, subs = _prefilter(fields["prefilter"])
        fields["prefilter_keys"], fields["prefilter_subs"] = keys, subs
        fields["parts"] = tuple(
            Part(alternative, *_prefilter(prefilter), window,
                 tuple(tuple((literal, _is_word(literal)) for literal in group)
                       for group in groups))
            for alternative, prefilter, window, groups in derived["parts"])
    elif operator == "phrases":
        phrases = _strings(entry.get("phrases"), f"{rule_id}.phrases")
        if any(phrase != phrase.casefold() for phrase in phrases):
            raise ValueError(f"{rule_id}: phrases must be case-folded")
        match = entry.get("match", "word")
        # Every match contains one of the phrases (a called name, a word, a word sequence)
        # as a substring: the phrases are their own prefilter.
        fields["prefilter"] = tuple(sorted(set(phrases)))
        fields["prefilter_keys"], fields["prefilter_subs"] = _prefilter(fields["prefilter"])
        if match == "substring":
            fields["substrings"] = phrases
        elif match == "call":
            fields["calls"] = frozenset(phrases)
            fields["call_gap"] = int(entry.get("gap", 0))
            if not 0 <= fields["call_gap"] <= 8:
                raise ValueError(f"{rule_id}: gap must be 0..8")
        else:
            single = [p for p in phrases if words_of(p) - {""} == {p}]
            fields["words"] = frozenset(single)
            fields["sequences"] = tuple(
                (next(w for w in _WORD_SPLIT.split(p) if w), p) for p in phrases if p not in single
            )
    elif operator == "length":
        fields["limit"] = float(entry["max"])
    elif operator == "private_url":
        pass
    else:
        fields["limit"] = float(entry["min"])
        fields["min_length"] = int(entry.get("min_length", 1))
        if operator == "ratio":
            fields["chars"] = frozenset(str(entry["chars"]))
    return Rule(
        id=rule_id,
        family=family,
        description=str(entry.get("description", "")),
        targets=targets,
        operator=operator,
        action=action,
        score=score,
        paranoia=paranoia,
        view=view,
        **fields,
    )


# A literal of word characters only: it lies inside one word of the text.
WORD_LITERAL = re.compile(r"[a-z0-9_]+")


def _prefilter(literals: Sequence[str]) -> tuple[frozenset[str], frozenset[str]]:
    """Splits prefilter literals into word literals and other substrings.

    Both mean "occurs as a substring". A literal made only of word characters can only occur
    inside one word, so the engine looks for it in the text's deduplicated vocabulary (each
    distinct word once) instead of the whole text — the same answer from a shorter string.
    Literals with spaces or punctuation are looked for in the text itself.
    """
    words: set[str] = set()
    subs: set[str] = set()
    for literal in literals:
        (words if WORD_LITERAL.fullmatch(literal) else subs).add(literal)
    return frozenset(words), frozenset(subs)


@cache
def _sre() -> tuple[Any, Any] | None:
    """CPython's regex parser and its constants (private modules, present in CPython and
    Pyodide alike); None elsewhere, and the engine then searches whole texts."""
    try:
        return (importlib.import_module("re._parser"),
                importlib.import_module("re._constants"))
    except ImportError:  # pragma: no cover - other Python implementations
        return None


@cache
def _parsed(pattern: str) -> Any:
    """The parse tree of `pattern`, read (never changed) by every derivation below: parsed
    once per pattern, which is most of what loading the rules costs."""
    sre = _sre()
    assert sre is not None
    return sre[0].parse(pattern)


@cache
def _required_of(pattern: str) -> frozenset[str] | None:
    sre = _sre()
    return _required(_parsed(pattern), sre[1]) if sre is not None else None


def derived_prefilter(pattern: str) -> tuple[str, ...]:
    """Literals of which every match of `pattern` contains at least one, read from the
    parsed pattern itself (so they cannot drift from it): a sequence contributes its most
    selective required part, an alternation the union of its branches' parts, a repeat with
    a minimum of one its body's. Empty when no such set exists (the rule always runs).
    """
    found = _required_of(pattern)
    return tuple(sorted(found)) if found else ()


MAX_EXACT = 32  # most strings an exactly-known stretch of a pattern may stand for


def _exact(op: Any, av: Any, c: Any) -> frozenset[str] | None:
    """Every string one item of a parsed pattern can match, when that is a small set of
    literals (`nc|ncat`, `[sr]`, `(?:ba|z)?`, and zero-width `\\b` as the empty string)."""
    if op == c.LITERAL:
        return frozenset([chr(av)])
    if op in (c.AT, c.ASSERT, c.ASSERT_NOT):
        return frozenset([""])
    if op == c.IN and 0 < len(av) <= 8 and all(item[0] == c.LITERAL for item in av):
        return frozenset(chr(item[1]) for item in av)
    if op == c.SUBPATTERN:
        return _exact_sequence(av[-1], c)
    if op == c.BRANCH:
        found: set[str] = set()
        for branch in av[1]:
            strings = _exact_sequence(branch, c)
            if strings is None:
                return None
            found |= strings
        return frozenset(found) if len(found) <= MAX_EXACT else None
    if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT) and av[0] == 0 and av[1] == 1:
        strings = _exact_sequence(av[2], c)
        return None if strings is None else strings | {""}
    return None


def _exact_sequence(sequence: Any, c: Any) -> frozenset[str] | None:
    result = frozenset([""])
    for op, av in sequence:
        strings = _exact(op, av, c)
        if strings is None:
            return None
        result = frozenset(left + right for left in result for right in strings)
        if len(result) > MAX_EXACT:
            return None
    return result


def _minimal(strings: frozenset[str]) -> frozenset[str]:
    """Drops strings containing another member: a text containing `bash` contains `sh`."""
    return frozenset(s for s in strings
                     if not any(other != s and other in s for other in strings))


def _required(sequence: Any, c: Any) -> frozenset[str] | None:
    """A set of strings one of which every match of `sequence` contains, or None: the most
    selective of `_required_sets`."""
    candidates = _required_sets(sequence, c)
    if not candidates:
        return None
    # Most selective: the set whose shortest literal is longest, then the smallest set.
    return max(candidates, key=_selectivity)


def _selectivity(part: frozenset[str]) -> tuple[int, int]:
    return min(map(len, part)), -len(part)


def _required_sets(sequence: Any, c: Any) -> list[frozenset[str]]:
    """Sets of strings such that every match of `sequence` contains one string of each set.

    Consecutive items whose possible strings are known exactly are multiplied out (`n` then
    `c|cat|etcat` gives `nc`, `ncat`, `netcat`): every match contains one of the products."""
    candidates: list[frozenset[str]] = []
    run = frozenset([""])

    def flush() -> None:
        nonlocal run
        if "" not in run:
            candidates.append(_minimal(run))
        run = frozenset([""])

    for op, av in sequence:
        strings = _exact(op, av, c)
        if strings is not None:
            product = frozenset(left + right for left in run for right in strings)
            if len(product) <= MAX_EXACT:
                run = product
                continue
            flush()
            run = strings
            continue
        flush()
        if op == c.SUBPATTERN:
            part = _required(av[-1], c)
        elif op == c.BRANCH:
            branches = [_required(branch, c) for branch in av[1]]
            part = None
            if all(branch is not None for branch in branches):
                part = frozenset(literal for branch in branches if branch for literal in branch)
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT) and av[0] >= 1:
            part = _required(av[2], c)
        else:
            part = None
        if part:
            candidates.append(part)
    flush()
    return candidates


MAX_GROUPS = 3
MAX_GROUP_SIZE = 16


def _is_word(literal: str) -> bool:
    return WORD_LITERAL.fullmatch(literal) is not None


def derived_groups(pattern: str) -> tuple[tuple[str, ...], ...]:
    """Further literal sets every match of `pattern` also contains one of, besides its
    prefilter (`derived_prefilter`), most selective first: a text lacking every literal of
    one group cannot match, which the engine checks before searching around the needles."""
    sre = _sre()
    if sre is None:  # pragma: no cover - other Python implementations
        return ()
    constants = sre[1]
    sequence = _parsed(pattern)
    while len(sequence) == 1 and sequence[0][0] == constants.SUBPATTERN:
        sequence = sequence[0][1][-1]
    candidates = _required_sets(sequence, constants)
    if not candidates:
        return ()
    chosen = _required_of(pattern)
    others = sorted({tuple(sorted(part)) for part in candidates if part != chosen
                     and len(part) <= MAX_GROUP_SIZE},
                    key=lambda part: (-min(map(len, part)), len(part), part))
    return tuple(others[:MAX_GROUPS])


def alternatives(pattern: str) -> tuple[str, ...]:
    """The top-level alternatives of `pattern` (inside one enclosing `(?:...)` if it spans
    the whole pattern), as pattern strings; `(pattern,)` when there is no top-level `|`.
    Checked by reassembly: joining the pieces must give the pattern back."""
    inner = pattern
    if pattern.startswith("(?:"):
        closing = _closing(pattern, 0)
        rest = pattern[closing + 1:]
        if closing == len(pattern) - 1:
            inner = pattern[3:-1]
        elif (closing > 0 and rest[0] not in "*+?{" and len(_split(rest)) == 1
              and len(_split(pattern[3:closing])) > 1):
            # `(?:a|b)c` is `ac|bc`: distributed over what follows the group.
            pieces = [piece + rest for piece in alternatives(pattern[:closing + 1])]
            return _checked(pattern, pieces) if len(pieces) > 1 else (pattern,)
    pieces = _split(inner)
    if len(pieces) < 2 or not all(pieces) or "|".join(pieces) != inner:
        return (pattern,)
    return _checked(pattern, pieces)


def _checked(pattern: str, pieces: list[str]) -> tuple[str, ...]:
    for piece in pieces:
        if _has_flags(piece):
            return (pattern,)
        try:  # a `|` mistaken for a top-level one leaves an unbalanced piece
            re.compile(piece)
        except re.error:
            return (pattern,)
    return tuple(pieces)


def _structure(pattern: str, start: int = 0) -> Iterator[tuple[int, str]]:
    """(index, char) of each `(`, `)` and `|` of `pattern` from `start`, skipping escapes and
    character classes (where they are literal)."""
    index, in_class, class_start = start, False, 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            index += 2
            continue
        if in_class:
            in_class = char != "]" or index == class_start  # `[]` / `[^]`: a literal `]`
        elif char == "[":
            in_class = True
            class_start = index + (2 if pattern[index + 1:index + 2] == "^" else 1)
        elif char in "()|":
            yield index, char
        index += 1


def _split(inner: str) -> list[str]:
    """`inner` cut at its top-level `|` (outside groups and character classes)."""
    pieces: list[str] = []
    depth, start = 0, 0
    for index, char in _structure(inner):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth == 0:
            pieces.append(inner[start:index])
            start = index + 1
    pieces.append(inner[start:])
    return pieces


def _has_flags(piece: str) -> bool:
    return re.search(r"\(\?[aiLmsux-]", piece) is not None


def _closing(pattern: str, open_index: int) -> int:
    """Index of the `)` that closes the group opening at `open_index` (-1 if none)."""
    depth = 0
    for index, char in _structure(pattern, open_index):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
    return -1


def _window(pattern: str) -> int | None:
    """The pattern's maximum match width if finite and small, else None (search everything).

    Uses CPython's own regex parser (see `_sre`); if it is missing the engine simply searches
    whole texts.
    """
    sre = _sre()
    if sre is None:  # pragma: no cover - other Python implementations
        return None
    constants = sre[1]
    parsed = _parsed(pattern)
    if any(op == constants.AT and av in (constants.AT_END, constants.AT_END_STRING)
           for op, av in _walk(parsed)):
        return None
    _, high = parsed.getwidth()
    return high if high <= 4096 else None


def _walk(sub: Any) -> Iterable[tuple[Any, Any]]:
    for op, av in sub:
        yield op, av
        if isinstance(av, (list, tuple)):
            for item in av:
                if hasattr(item, "data") or (isinstance(item, list) and item
                                             and isinstance(item[0], tuple)):
                    yield from _walk(item)
                elif isinstance(item, list):
                    for branch in item:
                        if hasattr(branch, "data"):
                            yield from _walk(branch)


_UPPER_LITERAL = re.compile(r"(?<!\\)[A-Z]")


def _has_upper_literal(pattern: str) -> bool:
    # Escapes such as \S, \W, \D, \A, \Z are classes/anchors, not literals.
    return bool(_UPPER_LITERAL.search(re.sub(r"\\[A-Za-z]", "", pattern)))


def parse_rule_file(document: Mapping[str, Any]) -> list[Rule]:
    """Builds the rules of one family file; raises ValueError on anything malformed."""
    family = document.get("family")
    if not isinstance(family, str) or not family:
        raise ValueError("rule file has no family")
    defaults = {"targets": document.get("targets")}
    entries = document.get("rules")
    if not isinstance(entries, list):
        raise ValueError(f"{family}: rules must be a list")
    return [_rule(family, defaults, entry) for entry in entries]


def _check_unique(rules: Sequence[Rule]) -> None:
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise ValueError(f"duplicate rule id {rule.id}")
        seen.add(rule.id)


# What a regex rule's pattern yields for the engine (`derive`), computed at build time for the
# Worker bundle: analysing ~500 patterns costs about 0.4 s in CPython and twice that in
# Pyodide, which a new isolate's first request would otherwise pay. Keyed by the pattern text
# itself, so an edited pattern simply misses and is derived on the spot.
DERIVED_FILE = Path(__file__).parent / "derived.json"
DERIVATION_FORMAT = 2


def derive(pattern: str) -> dict[str, Any]:
    """Prefilter and prefiltered, windowed top-level alternatives of `pattern`, as JSON."""
    return {
        "prefilter": list(derived_prefilter(pattern)),
        "parts": [[alternative, list(derived_prefilter(alternative)), _window(alternative),
                   [list(group) for group in derived_groups(alternative)]]
                  for alternative in alternatives(pattern)],
    }


@cache
def _shipped_derivations() -> Mapping[str, Any]:
    """The build's derivations when the bundle has them (and they are of this format)."""
    try:
        document = json.loads(DERIVED_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(document, dict) or document.get("format") != DERIVATION_FORMAT:
        return {}
    patterns = document.get("patterns")
    return patterns if isinstance(patterns, dict) else {}


def derivation(pattern: str) -> dict[str, Any]:
    shipped = _shipped_derivations().get(pattern)
    return shipped if isinstance(shipped, dict) else derive(pattern)


def write_derivations(path: Path, directory: Path = RULES_DIR) -> int:
    """Writes every regex rule's derivation to `path` (the Worker build calls this); returns
    how many patterns it holds."""
    patterns: dict[str, Any] = {}
    for rule_file in sorted(directory.glob("*.json")):
        for entry in json.loads(rule_file.read_text(encoding="utf-8")).get("rules", []):
            if entry.get("operator") == "regex" and isinstance(entry.get("pattern"), str):
                patterns[entry["pattern"]] = derive(entry["pattern"])
    path.write_text(json.dumps({"format": DERIVATION_FORMAT, "patterns": patterns},
                               sort_keys=True), encoding="utf-8")
    return len(patterns)


@cache
def load_rules(directory: Path = RULES_DIR) -> tuple[Rule, ...]:
    """Every rule shipped with the gate, parsed once per process (rule files never change
    while a Worker isolate lives)."""
    rules: list[Rule] = []
    for path in sorted(directory.glob("*.json")):
        rules.extend(parse_rule_file(json.loads(path.read_text(encoding="utf-8"))))
    _check_unique(rules)
    return tuple(rules)


def families(rules: Iterable[Rule]) -> tuple[str, ...]:
    """The family names, in file order."""
    return tuple(dict.fromkeys(rule.family for rule in rules))


def words_of(text: str) -> frozenset[str]:
    """The words of a canonical text (shared by every phrase rule of one view)."""
    return frozenset(_WORD_SPLIT.split(text))
