"""Linear time by construction, checked two ways for every regex the WAF runs:

1. shape: the parsed pattern has only bounded quantifiers and none nested (regex_shape.py);
2. behaviour: adversarial inputs derived from the pattern itself — runs of each character its
   literals and classes accept, its own near-match repeated, `"a" * n + "!"` — are searched at
   n and 4n characters; the time ratio must stay near 4 (linear), far from 16 (quadratic).

Only ratios are asserted, never absolute times; each size is measured several times and the
fastest run kept, which is what makes the ratio stable on a busy machine.
"""

from __future__ import annotations

import re
import time

import pytest

from gpushield_edge.waf import Engine, WafSettings, load_rules
from gpushield_edge.waf import normalize as normalize_module
from gpushield_edge.waf import ssrf as ssrf_module
from gpushield_edge.waf.engine import _CALL

from .regex_shape import atoms, problems, sample

# Every regex in the WAF: the rules' and the machinery's own.
PATTERNS: dict[str, str] = {
    rule.id: rule.source for rule in load_rules() if rule.source is not None
}
PATTERNS.update({
    "normalize._ESCAPE": normalize_module._ESCAPE.pattern,
    "normalize._B64_RUN": normalize_module._B64_RUN.pattern,
    "normalize._HEX_RUN": normalize_module._HEX_RUN.pattern,
    "normalize._HEX_ONLY": normalize_module._HEX_ONLY.pattern,
    "normalize._ENTITY": normalize_module._ENTITY.pattern,
    "normalize._UTF7_RUN": normalize_module._UTF7_RUN.pattern,
    "normalize._COMMENT": normalize_module._COMMENT.pattern,
    "normalize._EMPTY_EXPANSION": normalize_module._EMPTY_EXPANSION.pattern,
    "ssrf._URL": ssrf_module._URL.pattern,
    "normalize._INVISIBLE_RUN": normalize_module._INVISIBLE_RUN.pattern,
    "normalize._CONTROL_CHAR": normalize_module._CONTROL_CHAR.pattern,
    "normalize._HIDDEN_CHAR": normalize_module._HIDDEN_CHAR.pattern,
    "normalize._CMD_DELETE_RUN": normalize_module._CMD_DELETE_RUN.pattern,
    "engine._CALL": _CALL.pattern,
})
# The literal finders' trie regexes, one per target, at the highest paranoia level (the most
# literals): only `?` quantifiers, and branches that start with distinct characters.
_ENGINE = Engine(load_rules(), WafSettings(paranoia_level=4))
for _target in _ENGINE.targets():
    _plan = _ENGINE.plan(_target)
    if _plan is not None and _plan.word_finder.pattern is not None:
        PATTERNS[f"literals.{_target}"] = _plan.word_finder.pattern

MAX_RATIO = 10.0  # linear growth gives ~4 for 4x the input, quadratic ~16
START = 2_000
LONGEST = 128_000


def adversarial(pattern: str) -> list[tuple[str, str]]:
    """(unit, suffix) pairs: the input of size n is unit repeated to n, then suffix."""
    near = sample(pattern)
    units = [char for char in atoms(pattern) if char.isprintable() or char in " \n"]
    shapes = [(char, "!") for char in units] + [("a", "!"), (" ", "x"), ("\\", "")]
    if len(near) > 1:
        shapes.append((near[:-1], ""))  # the pattern's own prefix, again and again
        shapes.append((near[: len(near) // 2] + " ", ""))
    return shapes


def build(unit: str, suffix: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size] + suffix


def best_time(compiled: re.Pattern[str], text: str, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        compiled.search(text)
        best = min(best, time.perf_counter() - started)
    return best


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_regex_has_a_linear_shape(name: str) -> None:
    assert problems(PATTERNS[name]) == []


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_regex_time_grows_linearly_on_adversarial_input(name: str) -> None:
    compiled = re.compile(PATTERNS[name])
    shapes = adversarial(PATTERNS[name])
    # The two costliest shapes at a small size get the growth test.
    costs = sorted(shapes, key=lambda s: best_time(compiled, build(*s, START), 1), reverse=True)
    for unit, suffix in costs[:2]:
        size = START
        # Grow until one search is long enough to time reliably (or the text is huge).
        while best_time(compiled, build(unit, suffix, size), 1) < 0.002 and size < LONGEST:
            size *= 2
        small = best_time(compiled, build(unit, suffix, size))
        large = best_time(compiled, build(unit, suffix, 4 * size))
        ratio = large / max(small, 1e-9)
        if ratio > MAX_RATIO:  # one retry: a scheduler hiccup, or real super-linear growth
            small = best_time(compiled, build(unit, suffix, size), 5)
            large = best_time(compiled, build(unit, suffix, 4 * size), 5)
            ratio = large / max(small, 1e-9)
        assert ratio <= MAX_RATIO, (
            f"{name}: {unit!r}*n+{suffix!r} took {ratio:.1f}x longer at 4x the size")


def test_the_test_catches_a_quadratic_pattern() -> None:
    """The growth check itself works: a classic quadratic shape fails it."""
    compiled = re.compile(r"a{0,100000}b")
    small = best_time(compiled, build("a", "", 4_000))
    large = best_time(compiled, build("a", "", 16_000))
    assert large / small > MAX_RATIO
    assert problems(r"(?:a+)+b") and problems(r"x*y")
