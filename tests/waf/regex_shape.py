"""Structural lint for WAF regexes: what makes a backtracking regex super-linear, found in the
parsed pattern rather than guessed from its text.

Rules (see edge/gpushield_edge/waf/rules.py):
- every quantifier is bounded (`{m,n}`, never `*`, `+` or `{m,}`), so one match attempt from
  one position does at most a bounded amount of work;
- no quantified group contains another quantifier (nested quantifiers are the classic
  exponential shape), except an optional group (`?`, max 1), which cannot multiply.

Uses `re._parser`, CPython's own parser, so what is checked is what `re` compiles; tests only.
"""

from __future__ import annotations

import re
import re._constants as sre_constants
import re._parser as sre_parse
from collections.abc import Iterator
from typing import Any

MAXREPEAT = sre_constants.MAXREPEAT
REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT}


def _children(op: Any, av: Any) -> Iterator[sre_parse.SubPattern | list[Any]]:
    if op in REPEATS:
        yield av[2]
    elif op == sre_constants.SUBPATTERN:
        yield av[-1]
    elif op == sre_constants.BRANCH:
        yield from av[1]
    elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
        yield av[1]
    elif op == sre_constants.GROUPREF_EXISTS:
        yield av[1]
        if av[2] is not None:
            yield av[2]


def problems(pattern: str) -> list[str]:
    """Every shape violation in `pattern` (empty list: linear by construction)."""
    found: list[str] = []

    def walk(sub: Any, inside_repeat: bool) -> None:
        for op, av in sub:
            if op in REPEATS:
                low, high, _ = av
                if high == MAXREPEAT:
                    found.append(f"unbounded quantifier {{{low},}}")
                if inside_repeat:
                    found.append("quantifier nested inside a quantified group")
                walk(av[2], inside_repeat or high > 1)
            else:
                for child in _children(op, av):
                    walk(child, inside_repeat)

    walk(sre_parse.parse(pattern), False)
    return found


def atoms(pattern: str) -> list[str]:
    """Characters that the pattern's literals and classes accept (one representative per
    class range plus every literal), for building adversarial inputs."""
    chars: list[str] = []

    def walk(sub: Any) -> None:
        for op, av in sub:
            if op == sre_constants.LITERAL:
                chars.append(chr(av))
            elif op == sre_constants.IN:
                for item_op, item_av in av:
                    if item_op == sre_constants.LITERAL:
                        chars.append(chr(item_av))
                    elif item_op == sre_constants.RANGE:
                        chars.append(chr(item_av[0]))
                    elif item_op == sre_constants.CATEGORY:
                        chars.extend(_CATEGORY.get(item_av, "a"))
            elif op == sre_constants.NOT_LITERAL:
                chars.append("a" if av != ord("a") else "b")
            else:
                for child in _children(op, av):
                    walk(child)

    walk(sre_parse.parse(pattern))
    return list(dict.fromkeys(chars))


def sample(pattern: str, limit: int = 200) -> str:
    """A short string walking the pattern's first branch with minimum repeats: the 'almost
    matching' prefix that adversarial inputs repeat."""
    out: list[str] = []

    def walk(sub: Any) -> None:
        for op, av in sub:
            if len(out) > limit:
                return
            if op == sre_constants.LITERAL:
                out.append(chr(av))
            elif op == sre_constants.IN:
                first = av[0]
                if first[0] == sre_constants.NEGATE:
                    out.append("a")
                elif first[0] == sre_constants.LITERAL:
                    out.append(chr(first[1]))
                elif first[0] == sre_constants.RANGE:
                    out.append(chr(first[1][0]))
                else:
                    out.append(_CATEGORY.get(first[1], "a")[0])
            elif op == sre_constants.NOT_LITERAL or op == sre_constants.ANY:
                out.append("a")
            elif op in REPEATS:
                for _ in range(max(av[0], 1)):
                    walk(av[2])
            elif op == sre_constants.BRANCH:
                walk(av[1][0])
            elif op == sre_constants.SUBPATTERN:
                walk(av[-1])

    walk(sre_parse.parse(pattern))
    return "".join(out)


_CATEGORY = {
    sre_constants.CATEGORY_DIGIT: "0",
    sre_constants.CATEGORY_NOT_DIGIT: "a",
    sre_constants.CATEGORY_SPACE: " \n",
    sre_constants.CATEGORY_NOT_SPACE: "a",
    sre_constants.CATEGORY_WORD: "a_0",
    sre_constants.CATEGORY_NOT_WORD: " .",
}


def compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)
