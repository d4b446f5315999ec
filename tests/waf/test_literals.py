"""The literal finder must be exact: a literal it misses is a rule that never runs (an
evasion), so it is checked against the definition — `literal in text` — on random literal
sets and texts built from the same few characters (many overlaps, prefixes and repeats), and
on the real rule set against the corpora-like prose the benchmarks use."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gpushield_edge.waf import Engine, WafSettings, load_rules
from gpushield_edge.waf.literals import LiteralFinder

ALPHABET = "ab(c.)' ’é\\"
literal_sets = st.sets(st.text(ALPHABET, min_size=1, max_size=6), max_size=30)
texts = st.text(ALPHABET, max_size=200)


@settings(max_examples=400, deadline=None)
@given(literals=literal_sets, text=texts)
def test_finds_exactly_the_literals_that_occur(literals: set[str], text: str) -> None:
    assert LiteralFinder(literals).find(text) == {lit for lit in literals if lit in text}


@settings(max_examples=200, deadline=None)
@given(literals=literal_sets, data=st.data())
def test_finds_literals_glued_and_overlapping(literals: set[str], data: st.DataObject) -> None:
    """Texts made of the literals themselves: every one present, many overlapping."""
    chosen = data.draw(st.lists(st.sampled_from(sorted(literals)), max_size=12)) \
        if literals else []
    text = "".join(chosen)
    assert LiteralFinder(literals).find(text) == {lit for lit in literals if lit in text}


def test_nested_prefixes_and_suffixes() -> None:
    finder = LiteralFinder(["sel", "select", "elect", "lect", "t", "ec", "union select"])
    assert finder.find("reunion selection") == {
        "sel", "select", "elect", "lect", "t", "ec", "union select"}
    assert finder.find("seletc") == {"sel", "t"}
    assert finder.find("") == frozenset()
    assert LiteralFinder([]).find("anything") == frozenset()
    assert LiteralFinder(["ab"]).pattern is None  # short literals only: no trie at all


def test_the_rule_sets_finders_agree_with_in_on_every_literal() -> None:
    """Each target's finder, on a text holding every one of its literals between words."""
    engine = Engine(load_rules(), WafSettings(paranoia_level=4))
    assert engine.targets()
    for target in engine.targets():
        plan = engine.plan(target)
        assert plan is not None
        finder = plan.word_finder
        assert finder.literals, target
        text = " x ".join(sorted(finder.literals))
        assert finder.find(text) == finder.literals, target
        assert finder.find("x".join(sorted(finder.literals))) == {
            literal for literal in finder.literals
            if literal in "x".join(sorted(finder.literals))}, target
