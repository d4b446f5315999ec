"""Benign prompts for the benchmarks: deterministic prose as varied as a real prompt.

A paragraph repeated to size is the cheapest input the WAF can get — a few dozen distinct
words, each looked at once — and real prompts are nothing like it: a 4 KB request (a
document to summarise, a long question) has three to four hundred distinct words, typographic
quotes and dashes, names and numbers. Timing only the repeated paragraph flattered the engine
about fourfold, so the benchmarks time this too. Words are drawn with Zipf-like weights from a
general vocabulary, in sentences; the same seed gives the same text everywhere (CPython and
Pyodide). Standard library only: the Pyodide runs copy this file next to the workload.
"""

from __future__ import annotations

import random

__all__ = ["repeated_paragraph", "varied_prose"]

_PARAGRAPH = (
    "The committee met on Tuesday to review the quarterly report. Revenue grew by 12 percent, "
    "driven mostly by new customers in the northern region, while costs stayed flat. Several "
    "members asked whether the marketing budget should be moved towards online channels; the "
    "chair suggested waiting for the survey results (due in March) before deciding. Please "
    "summarise the discussion above in three bullet points, and list any open questions that "
    "the team should answer before the next meeting. Keep the tone neutral and the wording "
    "simple, because the summary will be shared with new staff who missed the meeting. "
)

_WORD_TEXT = """
the of and to a in is that for it as was with be by on not he this are or his from at which
but have an they you were her she there been one all we their has would when if so no what
out up into them some could time these two may then do first any my now such like our over
man me even most made after also did many before must through back years where much your way
well down should because each just those people how too little state good very make world
still own see men work long get here between both life being under never day same another
know while last might us great old year off come since against go came right used take three
place small found part against water house light story answer question report market price
company customer region budget survey meeting member chair staff summary point team result
growth cost revenue quarter month week morning evening city country river mountain forest
garden kitchen school student teacher lesson history science language music picture letter
friend family mother father child doctor patient nurse hospital medicine recipe bread butter
sugar flour oven minute hour season winter summer spring autumn weather rain wind snow storm
travel journey train station ticket airport flight hotel museum library village harbour boat
engine machine design problem solution method process system project product service value
quality model data table chart figure number average total percent increase decrease change
improve explain describe compare summarise translate write read listen speak remember forget
believe decide suggest consider include continue follow provide produce develop create build
open close begin finish start stop wait watch carry bring send receive share offer support
careful quick slow bright dark heavy gentle simple clear honest useful modern ancient local
national public private social economic political cultural natural different important large
early late recent several various certain possible likely special general major minor basic
paper board window garden corner street bridge tower island valley desert ocean shore field
animal bird horse dog cat fish tree flower leaf stone metal glass wood cotton silk wool
painter writer poet farmer baker engineer lawyer judge officer captain soldier sailor pilot
neighbour visitor stranger guest crowd audience reader player winner partner leader manager
because although however therefore meanwhile perhaps usually often rarely always sometimes
quietly suddenly finally clearly nearly almost already again together forward instead rather
"""
_WORDS = _WORD_TEXT.split()

_NAMES = ["Amélie", "José", "Zoë", "Ingrid", "Tomás", "Chloé", "Søren", "Renée", "Björn", "Noémi"]
_OPENERS = ["In the end,", "Meanwhile,", "According to the report,", "As a result,",
            "For example,", "On the other hand,", "Later that week,", "Even so,"]


def _sentence(rng: random.Random, weights: list[float]) -> str:
    words = rng.choices(_WORDS, weights, k=rng.randint(7, 20))
    if rng.random() < 0.25:
        words.insert(rng.randrange(len(words)), rng.choice(_NAMES) + "’s")
    if rng.random() < 0.2:
        words.insert(rng.randrange(len(words)), f"{rng.randint(2, 980)}")
    if rng.random() < 0.15:
        at = rng.randrange(len(words) - 1)
        words[at:at + 2] = [f"“{words[at]} {words[at + 1]}”"]
    if rng.random() < 0.2:
        words.insert(rng.randrange(1, len(words)), "—")
    if rng.random() < 0.3:
        words[rng.randrange(1, len(words))] += ","
    text = " ".join(words)
    if rng.random() < 0.2:
        text = f"{rng.choice(_OPENERS)} {text}"
    return text[0].upper() + text[1:] + rng.choice(".....?!")


def varied_prose(size: int, seed: int = 0) -> str:
    """`size` characters of prose, with about as many distinct words as a real prompt."""
    rng = random.Random(seed)
    weights = [1.0 / (rank + 8) for rank in range(len(_WORDS))]  # Zipf-like, flattened
    sentences: list[str] = []
    length = 0
    while length < size:
        sentence = _sentence(rng, weights)
        sentences.append(sentence)
        length += len(sentence) + 1
        if rng.random() < 0.12:
            sentences.append("\n\n")
    return " ".join(sentences).replace(" \n\n ", "\n\n")[:size]


def repeated_paragraph(size: int) -> str:
    """One paragraph repeated to `size` characters: the easiest benign input there is."""
    return (_PARAGRAPH * (size // len(_PARAGRAPH) + 1))[:size]
