"""Speed of bearer tokens against signed requests, as ratios measured in one run.

1. Token verification (CPython, in-process): `BearerVerifier.verify` on one of the gate's
   EdDSA access tokens — strict JWS parsing, issuer/key lookup, Ed25519 via the Crypto port
   (`cryptography` here; WebCrypto at the edge), claim checks — p50/p99, against the cost of
   authenticating a signed request in the same run (the authenticate stage — RFC 9421 parse,
   profile, Content-Digest — plus the guard's HMAC check).
2. Whole-gate cost per request (`gate.handle`, upstream answering at once): a Bearer request
   against a signed one, p50/p99 and the ratio.

Run: .venv/bin/python benchmarks/bench_tokens.py [--quick]
Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from _common import InstantRunPod, percentile
from gpushield import SignatureAuth
from gpushield.cli.demo import MODEL
from gpushield_edge.context import RequestContext
from gpushield_edge.http import GateRequest
from gpushield_edge.keyguard import AdmitRequest, KeyLimits
from gpushield_edge.runtime_local.app import LocalGate, load_config_document
from gpushield_edge.runtime_local.state import StateDir
from gpushield_edge.stages import authenticate
from gpushield_wire import algorithms, credentials

console = Console(width=None if sys.stdout.isatty() else 120)
URL = f"http://127.0.0.1:8787/v1/models/{MODEL}/infer"
BODY = json.dumps({"input": {"prompt": "The quick brown fox. " * 40, "max_tokens": 64}}).encode()


def to_gate(request: httpx.Request) -> GateRequest:
    headers, size = GateRequest.fold_headers(request.headers.multi_items())
    path, _, query = request.url.raw_path.decode().partition("?")
    return GateRequest(request.method, "http", request.url.netloc.decode(), path, query,
                       headers, request.content, size, "127.0.0.1")


def signed(auth: SignatureAuth) -> GateRequest:
    request = httpx.Request("POST", URL, content=BODY, headers={"content-type": "application/json"})
    auth.sign(request)
    return to_gate(request)


async def measure(n: int, root: Path) -> dict[str, list[float]]:
    local = LocalGate.build(load_config_document(None), StateDir(root / "gate"), {},
                            upstream=InstantRunPod())
    services = local.gate.services
    tokens = services.tokens
    assert tokens is not None
    secret = credentials.new_secret()
    record = await local.core.create_key(
        key_id=credentials.new_key_id(), alg=algorithms.HMAC_SHA256, key_material=secret,
        scopes=(MODEL,), limits=KeyLimits(rate_per_minute=1e9, burst=10**9,
                                          max_concurrency=1000),
        expires_at=None, now=time.time())
    auth = SignatureAuth(record.key_id, credentials.format_secret(secret))
    token, _ = await tokens.issuer.mint(key_id=record.key_id, key_version=record.version,
                                        scopes=(MODEL,), ttl_s=600, now=time.time())
    bearer = to_gate(httpx.Request("POST", URL, content=BODY, headers={
        "content-type": "application/json", "authorization": f"Bearer {token}"}))
    model = services.config.models[MODEL]
    samples: dict[str, list[float]] = {k: [] for k in (
        "verify", "authenticate", "gate_bearer", "gate_signed")}
    for _ in range(max(50, n // 10)):  # warm-up (imports, caches, the opened secret)
        await tokens.verifier.verify(token, time.time())
        await local.gate.handle(signed(auth))
        await local.gate.handle(bearer)
    for _ in range(n):
        now = time.time()
        start = time.perf_counter()
        await tokens.verifier.verify(token, now)
        samples["verify"].append(time.perf_counter() - start)

        request = signed(auth)
        ctx = RequestContext(request=request, request_id="b", started=0.0, now=time.time(),
                             model=model)
        start = time.perf_counter()
        await authenticate.run(ctx, services)
        assert ctx.signature is not None
        verdict = await local.core._authenticate(AdmitRequest(
            key_id=record.key_id, alg=str(ctx.signature.alg),
            signature_base=ctx.signature_base, signature=ctx.signature.signature,
            model=MODEL, nonce=str(ctx.signature.nonce), nonce_expires_at=0.0, now=ctx.now,
            lease_ttl_s=0.0))
        samples["authenticate"].append(time.perf_counter() - start)
        assert isinstance(verdict, int), verdict

        start = time.perf_counter()
        response = await local.gate.handle(bearer)
        samples["gate_bearer"].append(time.perf_counter() - start)
        assert response.status == 200, response.body

        request = signed(auth)
        start = time.perf_counter()
        response = await local.gate.handle(request)
        samples["gate_signed"].append(time.perf_counter() - start)
        assert response.status == 200, response.body
    await local.aclose()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (~5 s)")
    args = parser.parse_args()
    n = 500 if args.quick else 5000
    with tempfile.TemporaryDirectory() as root:
        samples = asyncio.run(measure(n, Path(root)))
    us = {k: (statistics.median(v) * 1e6, percentile(v, 0.99) * 1e6) for k, v in samples.items()}
    table = Table(title=f"bearer tokens vs signed requests (CPython, n={n})",
                  title_justify="left")
    for column in ("what", "p50", "p99", "ratio (p50)"):
        table.add_column(column, justify="left" if column == "what" else "right")
    table.add_row("token verification (EdDSA JWT, claims)", f"{us['verify'][0]:,.1f} µs",
                  f"{us['verify'][1]:,.1f} µs",
                  f"{us['verify'][0] / us['authenticate'][0]:.2f}× baseline")
    table.add_row("baseline: signed-request authenticate + HMAC",
                  f"{us['authenticate'][0]:,.1f} µs", f"{us['authenticate'][1]:,.1f} µs", "1.00×")
    table.add_row("gate.handle, Bearer request", f"{us['gate_bearer'][0]:,.1f} µs",
                  f"{us['gate_bearer'][1]:,.1f} µs",
                  f"{us['gate_bearer'][0] / us['gate_signed'][0]:.2f}× signed")
    table.add_row("gate.handle, signed request", f"{us['gate_signed'][0]:,.1f} µs",
                  f"{us['gate_signed'][1]:,.1f} µs", "1.00×")
    console.print(table)
    console.print("Pyodide/WebCrypto figures: benchmarks/bench_edge.py "
                  "(token verification inside the Worker bundle).")


if __name__ == "__main__":
    main()
