"""Which of a fixed set of literals occur in a text, found in one pass of one regex.

The engine runs a rule only when one of its prefilter literals occurs in the text, so for
every long value it must learn which of several hundred literals are present. Asking `in`
once per literal costs a scan of the text each (hundreds of scans); a Python loop over the
text's positions costs ~100 ns a character. Instead the literals become one regex shaped like
their trie (`sel(?:ect)?|un(?:ion)?…`): `re` walks it in C, at each position following the
one branch the next character selects, so the cost is linear in the text — a text made of
nothing but literals costs about what prose does, which is what bounds the WAF's worst case.

Each position is tried inside a lookahead, so overlapping occurrences are all found; at each
position the trie yields the longest literal starting there, and the shorter literals that
are its prefixes (also present, at the same position) are added from a table. Literals of one
or two characters (`a`, `in`) would match at most positions of any text, and every match
costs a string: they are left out of the trie and asked with `in`, a fast scan each.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["LiteralFinder"]

SHORT = 2  # literals this long are looked for one by one (see the module docstring)

_Trie = dict[str, "_Trie"]
_END = ""  # the key marking a node where a literal ends (no literal is empty)


def _trie_pattern(literals: Iterable[str]) -> str:
    root: _Trie = {}
    for literal in literals:
        node = root
        for char in literal:
            node = node.setdefault(char, {})
        node[_END] = {}
    return _branches(root)


def _branches(node: _Trie) -> str:
    # Children start with distinct characters, so at most one can match at any position
    # and a failed branch is abandoned after one character: no backtracking blow-up.
    alternatives = [re.escape(char) + _branches(child)
                    for char, child in sorted(node.items()) if char != _END]
    if not alternatives:
        return ""
    body = "|".join(alternatives)
    if _END in node:  # a literal may end here: the rest is optional (greedy: longest first)
        return f"(?:{body})?"
    return body if len(alternatives) == 1 else f"(?:{body})"


class LiteralFinder:
    """`find(text)` is exactly `{literal for literal in literals if literal in text}`."""

    __slots__ = ("_pattern", "_prefixes", "_short", "literals")

    def __init__(self, literals: Iterable[str]) -> None:
        self.literals = frozenset(literal for literal in literals if literal)
        self._short = tuple(sorted(lit for lit in self.literals if len(lit) <= SHORT))
        ordered = sorted(lit for lit in self.literals if len(lit) > SHORT)
        self._pattern = re.compile(f"(?=({_trie_pattern(ordered)}))") if ordered else None
        in_trie = set(ordered)
        # Each literal's own prefixes that are literals too (itself included): one set lookup
        # per prefix length, so building this stays linear in the literals' total length.
        self._prefixes = {
            literal: tuple(literal[:end] for end in range(SHORT + 1, len(literal) + 1)
                           if literal[:end] in in_trie)
            for literal in ordered
        }

    @property
    def pattern(self) -> str | None:
        """The trie regex (None when every literal is short): for the ReDoS lint."""
        return self._pattern.pattern if self._pattern is not None else None

    def find(self, text: str) -> frozenset[str]:
        found = {literal for literal in self._short if literal in text}
        if self._pattern is not None:
            prefixes = self._prefixes
            for longest in set(self._pattern.findall(text)):
                found.update(prefixes[longest])
        return frozenset(found)
