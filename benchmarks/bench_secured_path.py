"""Speed of the secured path, as ratios measured in one run (these machines are noisy).

1. SDK cost per call (what `infer` adds: `encode_body` — JSON serialisation, size cap, shape
   check, local validation — and signing) against httpx's own per-request cost with the same
   JSON serialised by httpx (`json=`), both in-process (httpx over a MockTransport: the
   client's own work only) and over loopback.
2. Gate decision cost in CPython: everything the gate does for a signed 1 KB JSON request
   except the upstream call (which returns a RunPod answer at once), p50/p99.
3. Latency the gate adds over loopback: the same job sent straight to the RunPod worker and
   through the SDK and `gpushield dev` (its own process, as users run it), p50/p99,
   difference and ratio.

Run: .venv/bin/python benchmarks/bench_secured_path.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from _common import InstantRunPod, percentile
from gpushield import Client, SignatureAuth
from gpushield._models import compile_policy, encode_body
from gpushield.cli.demo import MODEL
from gpushield.devtools.runpod_worker import start_runpod_worker
from gpushield.devtools.serving import free_port
from gpushield_edge.http import GateRequest
from gpushield_edge.keyguard import KeyLimits
from gpushield_edge.runtime_local.app import (
    LocalGate,
    default_config_text,
    load_config_document,
)
from gpushield_edge.runtime_local.state import StateDir
from gpushield_wire import algorithms, credentials
from gpushield_wire.policy import ModelPolicy

console = Console(width=None if sys.stdout.isatty() else 120)
PROMPT_1KB = ("The quick brown fox jumps over the lazy dog. " * 23)[:990]
INPUT = {"prompt": PROMPT_1KB, "max_tokens": 64, "temperature": 0.7}


def timed(fn: Callable[[], object], n: int, progress: Progress, label: str) -> list[float]:
    task = progress.add_task(label, total=n)
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
        progress.advance(task)
    return samples


def micro(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1e6:,.1f} µs"


# -- 1. SDK cost ------------------------------------------------------------------------------


def bench_sdk(n: int, progress: Progress) -> dict[str, float]:
    key_id, secret = credentials.new_key_id(), credentials.format_secret(credentials.new_secret())
    policy = ModelPolicy.from_dict(load_config_document(None)["models"][MODEL]["policy"])
    validator = compile_policy(policy)
    auth = SignatureAuth(key_id, secret)
    answer = json.dumps({"id": "j", "status": "COMPLETED", "output": {}}).encode()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=answer))
    url = "http://gate.test/v1/models/summarize/infer"
    body = encode_body(validator, INPUT)
    headers = {"content-type": "application/json"}

    # httpx serialises the JSON itself here, as the SDK does in encode_body, so both sides
    # pay for the dump.
    with httpx.Client(transport=transport) as plain:
        httpx_cost = timed(lambda: plain.post(url, json={"input": INPUT}), n, progress,
                           "httpx alone (MockTransport)")

    def sdk_work() -> None:
        # What `Client.infer` does before sending: encode_body (dump, size cap, shape check,
        # validate), then the request built from those bytes and signed.
        request = httpx.Request("POST", url, content=encode_body(validator, INPUT),
                                headers=headers)
        auth.sign(request)

    def build_only() -> None:
        httpx.Request("POST", url, content=body, headers=headers)

    # Building the httpx.Request is httpx's own work (already inside its per-request cost),
    # so it is measured alone and taken out of the SDK's figure.
    sdk_cost = timed(sdk_work, n, progress, "SDK encode + validate + sign")
    build_cost = timed(build_only, n, progress, "httpx.Request alone")
    return {"httpx": statistics.median(httpx_cost),
            "sdk": statistics.median(sdk_cost) - statistics.median(build_cost)}


# -- 2. gate decision cost --------------------------------------------------------------------


def bench_gate(n: int, progress: Progress, root: Path) -> list[float]:
    return asyncio.run(_bench_gate(n, progress, root))


async def _bench_gate(n: int, progress: Progress, root: Path) -> list[float]:
    document = load_config_document(None)
    local = LocalGate.build(document, StateDir(root / "bench-gate"), {}, upstream=InstantRunPod())
    secret = credentials.new_secret()
    record = await local.core.create_key(
        key_id=credentials.new_key_id(), alg=algorithms.HMAC_SHA256, key_material=secret,
        scopes=(MODEL,), limits=KeyLimits(rate_per_minute=1e9, burst=10**9,
                                          max_concurrency=1000),
        expires_at=None, now=time.time(),
    )
    auth = SignatureAuth(record.key_id, credentials.format_secret(secret))
    body = json.dumps({"input": INPUT}).encode()
    task = progress.add_task("signing requests for the gate", total=n)
    requests = []
    for _ in range(n):
        signed = httpx.Request("POST", "http://127.0.0.1:8787/v1/models/summarize/infer",
                               content=body, headers={"content-type": "application/json"})
        auth.sign(signed)
        headers, size = GateRequest.fold_headers(signed.headers.multi_items())
        requests.append(GateRequest("POST", "http", "127.0.0.1:8787",
                                    "/v1/models/summarize/infer", "", headers, body, size,
                                    "127.0.0.1"))
        progress.advance(task)

    samples = []
    task = progress.add_task("gate.handle (CPython, in-process)", total=n)
    for request in requests:
        start = time.perf_counter()
        response = await local.gate.handle(request)
        samples.append(time.perf_counter() - start)
        if response.status != 200:
            raise RuntimeError(f"gate refused the benchmark request: {response.body!r}")
        progress.advance(task)
    await local.aclose()
    return samples


# -- 3. added latency over loopback -----------------------------------------------------------


def _serve_gate_process(worker_url: str, root: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`gpushield dev` in its own process, as users run it (no GIL shared with the client),
    on the embedded default config pointed at the benchmark's worker."""
    default = default_config_text()
    config_text = default.replace('base_url = "http://127.0.0.1:8000"',
                                  f'base_url = "{worker_url}"')
    if config_text == default:
        raise RuntimeError("the default config no longer names the local worker's base_url")
    config_path = root / "gpushield.toml"
    config_path.write_text(config_text, encoding="utf-8")
    port = free_port()
    gpushield = Path(sys.executable).with_name("gpushield")
    process = subprocess.Popen(
        [str(gpushield), "dev", "--port", str(port), "--config", str(config_path),
         "--state-dir", str(root / "gate")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", trust_env=False).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("gpushield dev did not start")


def bench_loopback(n: int, progress: Progress, root: Path) -> tuple[list[float], list[float]]:
    with start_runpod_worker(root / "worker", hooks=False) as worker:
        process, gate_url = _serve_gate_process(worker.url, root)
        try:
            created = subprocess.run(
                [str(Path(sys.executable).with_name("gpushield")), "keys", "create", "--json",
                 "--model", MODEL, "--rate", "1000000000", "--burst", "1000000000",
                 "--concurrency", "1000", "--state-dir", str(root / "gate")],
                check=True, capture_output=True, text=True,
            )
            key = json.loads(created.stdout)
            return _interleaved(n, progress, worker.url, gate_url, key["key_id"], key["secret"])
        finally:
            process.terminate()
            process.wait(timeout=10)


def _interleaved(n: int, progress: Progress, worker_url: str, gate_url: str, key_id: str,
                 secret: str) -> tuple[list[float], list[float]]:
    payload = json.dumps({"input": INPUT}).encode()
    with httpx.Client(trust_env=False,
                      headers={"content-type": "application/json"}) as direct, \
            Client(gate_url, key_id, secret) as sdk:
        for _ in range(20):  # warm both paths (connections, caches, the model list)
            direct.post(f"{worker_url}/runsync", content=payload)
            sdk.infer(MODEL, INPUT)
        # Interleave the two so drift on this machine hits both equally.
        direct_samples: list[float] = []
        gated_samples: list[float] = []
        task = progress.add_task("direct vs through the gate (loopback)", total=n)
        for _ in range(n):
            start = time.perf_counter()
            direct.post(f"{worker_url}/runsync", content=payload).raise_for_status()
            direct_samples.append(time.perf_counter() - start)
            start = time.perf_counter()
            sdk.infer(MODEL, INPUT)
            gated_samples.append(time.perf_counter() - start)
            progress.advance(task)
    return direct_samples, gated_samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (CI smoke run)")
    args = parser.parse_args()
    n_micro, n_gate, n_loop = (300, 300, 50) if args.quick else (5000, 3000, 400)
    root = Path(tempfile.mkdtemp(prefix="gpushield-bench-"))
    with Progress(console=console, transient=True) as progress:
        sdk = bench_sdk(n_micro, progress)
        gate = bench_gate(n_gate, progress, root)
        direct, gated = bench_loopback(n_loop, progress, root)

    table = Table(title="gpushield secured path (medians unless noted)", title_justify="left")
    for column in ("measure", "value", "baseline (same run)", "ratio", "goal"):
        table.add_column(column)
    table.add_row("SDK validate + sign per call", micro([sdk["sdk"]]),
                  f"httpx in-process {micro([sdk['httpx']])}",
                  f"{sdk['sdk'] / sdk['httpx']:.1%}", "≤ 10% of httpx")
    loop_p50 = statistics.median(direct)
    table.add_row("", "", f"httpx over loopback {loop_p50 * 1e6:,.0f} µs",
                  f"{sdk['sdk'] / loop_p50:.1%}", "")
    table.add_row("gate decision, signed 1 KB JSON", f"p50 {micro(gate)}",
                  f"p99 {percentile(gate, 0.99) * 1e6:,.1f} µs", "", "p50 ≤ 150 µs")
    d50, d99 = statistics.median(direct), percentile(direct, 0.99)
    g50, g99 = statistics.median(gated), percentile(gated, 0.99)
    table.add_row("through gate + SDK (loopback)",
                  f"p50 {g50 * 1e3:.2f} ms / p99 {g99 * 1e3:.2f} ms",
                  f"direct p50 {d50 * 1e3:.2f} ms / p99 {d99 * 1e3:.2f} ms",
                  f"×{g50 / d50:.2f} (+{(g50 - d50) * 1e3:.2f} ms p50)", "≤ 1 ms added at p50")
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
