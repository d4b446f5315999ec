"""Speed of the WAF engine in CPython and in Pyodide (the Worker), as ratios measured in one run.

1. Benign prompts of 1, 4 and 16 KB through `Engine.evaluate` (the inspect stage's work:
   normalisation and every PL1 rule over path, headers and prompt): p50/p99 in µs per KB,
   against `json.loads` of the same request body timed in the same run. Two kinds of benign
   prompt (benchmarks/bench_prose.py): varied prose, as many distinct words as a real prompt
   has, and one paragraph repeated, the cheapest input there is.
2. When the corpora are present: real benign prompts (MT-bench, Self-Instruct, GSM8K, T0, …)
   joined and cut into 4 KB pieces — the check that the varied prose is as hard as the real
   thing.
3. The worst adversarial input at 4 KB (see waf_workload.adversarial_prompts) against the
   benign 4 KB prompts: the goal is at most 3x.
4. The same workload inside Pyodide on the Worker bundle (the offline Workers harness).

Run: .venv/bin/python benchmarks/bench_waf.py [--quick] [--no-pyodide]
The workload is `benchmarks/waf_workload.py` (standard library only).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the workloads import bench_prose
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._pyodide import build_bundle, run_workload
from benchmarks.waf_corpora import benign_prompt_samples, corpora_root
from benchmarks.waf_workload import HEADERS, items_for, percentile, run_suite, time_each
from rich.console import Console
from rich.table import Table

from gpushield_edge.waf import Engine, WafSettings, load_rules

HERE = Path(__file__).resolve().parent
KINDS = {"varied": "varied", "repeated": "repeated"}


def run_in_pyodide(repeat: int) -> dict[str, Any]:
    """The same workload inside Pyodide, on the exact wrangler bundle (the Workers harness)."""
    # The workload imports the gate's package, which the bundle holds, and the prose
    # generator, which build_bundle copies next to it for this run only.
    with tempfile.TemporaryDirectory() as tmp:
        bundle = build_bundle(Path(tmp) / "bundle")
        result = run_workload(bundle, HERE / "waf_workload.py", str(repeat))
    result["benign"] = {kind: {int(size): row for size, row in rows.items()}
                        for kind, rows in result["benign"].items()}
    return result


def corpus_pieces(size: int = 4096, pieces: int = 48) -> list[str] | None:
    """Real benign prompts joined and cut into `size`-character pieces (None: no corpora)."""
    root = corpora_root()
    if not (root / "benign-prompts").is_dir():
        return None
    text = "\n\n".join(value for sample in benign_prompt_samples(root)
                        for _, value in sample.items)
    step = max(size, (len(text) - size) // pieces)
    return [text[start:start + size] for start in range(0, len(text) - size, step)][:pieces]


def time_corpus(pieces: list[str], repeat: int) -> dict[str, float]:
    engine = Engine(load_rules(), WafSettings())
    requests = [items_for(piece) for piece in pieces]
    refused = sum(engine.evaluate(items).action != "allow" for items in requests)
    samples = time_each([lambda items=items: engine.evaluate(items) for items in requests],
                        max(repeat, len(requests)))
    return {"p50": percentile(samples, 0.5), "p99": percentile(samples, 0.99),
            "refused": refused, "pieces": len(pieces)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--no-pyodide", action="store_true",
                        help="skip the Pyodide run (it needs Node and the npm tooling)")
    args = parser.parse_args()
    repeat = 60 if args.quick else 400
    console = Console(width=None if sys.stdout.isatty() else 140)
    started = time.perf_counter()
    result = run_suite(repeat=repeat)
    pieces = corpus_pieces()
    corpus = time_corpus(pieces, repeat) if pieces else None
    edge = None if args.no_pyodide else run_in_pyodide(repeat)

    table = Table(title=f"WAF cost per benign prompt: CPython {sys.version.split()[0]}"
                        + ("" if edge is None else f" and Pyodide {edge['python']} (the Worker)")
                        + ", same run")
    columns = ["prompt", "CPython p50 µs/KB", "CPython p99 µs/KB", "WAF / json.loads"]
    if edge is not None:
        columns += ["Pyodide p50 µs/KB", "Pyodide p99 µs/KB", "Pyodide / CPython"]
    for column in columns:
        table.add_column(column, justify="right")
    for kind, label in KINDS.items():
        for size, row in result["benign"][kind].items():
            kb = size / 1024
            cells = [f"{label}, {kb:.0f} KB", f"{row['p50'] / kb:.0f}", f"{row['p99'] / kb:.0f}",
                     f"{row['p50'] / row['json_p50']:.0f}x"]
            if edge is not None:
                there = edge["benign"][kind][size]
                cells += [f"{there['p50'] / kb:.0f}", f"{there['p99'] / kb:.0f}",
                          f"{there['p50'] / row['p50']:.2f}x"]
            table.add_row(*cells)
    if corpus is not None:
        cells = [f"real, 4 KB ×{corpus['pieces']:.0f}",
                 f"{corpus['p50'] / 4:.0f}", f"{corpus['p99'] / 4:.0f}", ""]
        table.add_row(*([*cells, "", "", ""] if edge is not None else cells))
    console.print(table)
    console.print("varied: prose with a real prompt's variety of words; repeated: one paragraph "
                  "again and again; real: the corpora's benign prompts joined and cut to 4 KB")
    if corpus is None:
        console.print("(no corpora: the real-prompt row needs ../shared/corpora or "
                      "$GPUSHIELD_CORPORA)")
    elif corpus["refused"]:
        console.print(f"[red]{corpus['refused']:.0f} real benign pieces were refused[/red]")

    baselines = result["benign_same_size_p50"]
    adversarial = Table(title="Adversarial 4 KB inputs against benign 4 KB prompts (p50)")
    for column in ("input", "CPython µs", "x varied", "x repeated", "blocked"):
        adversarial.add_column(column, justify="right")
    if edge is not None:
        for column in ("Pyodide µs", "x varied (Pyodide)"):
            adversarial.add_column(column, justify="right")
    for name, row in sorted(result["adversarial"].items(), key=lambda item: -item[1]["p50"]):
        cells = [name, f"{row['p50']:.0f}", f"{row['p50'] / baselines['varied']:.2f}",
                 f"{row['p50'] / baselines['repeated']:.2f}", "yes" if row["blocked"] else "no"]
        if edge is not None:
            there = edge["adversarial"][name]["p50"]
            cells += [f"{there:.0f}", f"{there / edge['benign_same_size_p50']['varied']:.2f}"]
        adversarial.add_row(*cells)
    console.print(adversarial)
    name, worst = max(result["adversarial"].items(), key=lambda item: item[1]["p50"])
    console.print(
        f"CPython: varied 4 KB p50 {baselines['varied']:.0f} µs, repeated "
        f"{baselines['repeated']:.0f} µs; worst adversarial {name!r} {worst['p50']:.0f} µs = "
        f"{worst['p50'] / baselines['varied']:.2f}x varied, "
        f"{worst['p50'] / baselines['repeated']:.2f}x repeated (goal ≤ 3x)")
    if edge is not None:
        name, there = max(edge["adversarial"].items(), key=lambda item: item[1]["p50"])
        base = edge["benign_same_size_p50"]
        console.print(
            f"Pyodide: varied 4 KB p50 {base['varied']:.0f} µs, repeated {base['repeated']:.0f}"
            f" µs; worst adversarial {name!r} {there['p50']:.0f} µs = "
            f"{there['p50'] / base['varied']:.2f}x varied, "
            f"{there['p50'] / base['repeated']:.2f}x repeated")
    console.print(f"(headers inspected with each prompt: {len(HEADERS)}; "
                  f"run took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
