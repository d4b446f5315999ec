"""The gate's per-request CPU, measured the same way in CPython and in Pyodide.

Standard library only, so `bench_edge.py` can run this very file in both interpreters: in
CPython directly, in Pyodide through the Workers harness (`run_python.mjs`, the exact wrangler
bundle on sys.path). The pipeline is the real one — parse, authenticate, input policy, the key
guard's admission (in-process, on sqlite3 in both), forward, finish, audit — with two things
held constant so only the interpreter differs: the backend answers from memory (the network is
not the gate's CPU), and audit events go to a list.

Prints one JSON line: import time of the gate's modules, per-request times (µs), and the runtime.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time

PROMPTS = 16
# Each gate's config parse and first request: the process's very first ones load the WAF rules
# and build the engine, as a new isolate's first request does.
CONFIG_MS: list[float] = []
FIRST_REQUEST_MS: list[float] = []
IMPORT_STARTED = time.perf_counter()
from gpushield_edge.backends.runpod import RunPodBackend  # noqa: E402
from gpushield_edge.config import parse_config  # noqa: E402
from gpushield_edge.context import Services  # noqa: E402 - timing the imports is the point
from gpushield_edge.gate import Gate  # noqa: E402
from gpushield_edge.http import GateRequest  # noqa: E402
from gpushield_edge.keyguard.budget import BudgetSpec, set_key_budgets  # noqa: E402
from gpushield_edge.keyguard.guard import KeyGuardCore  # noqa: E402
from gpushield_edge.keyguard.inprocess import InProcessKeyGuard  # noqa: E402
from gpushield_edge.keyguard.records import KeyLimits  # noqa: E402
from gpushield_edge.ports import UpstreamRequest, UpstreamResponse  # noqa: E402
from gpushield_wire import algorithms, digest, signing  # noqa: E402

IMPORT_MS = (time.perf_counter() - IMPORT_STARTED) * 1000
PYODIDE = sys.platform == "emscripten"
KEY_ID = "gsk_benchbenchbench2"
SECRET = bytes(range(32))
AUTHORITY = "gate.example"


class MemoryStorage:
    """sqlite3 in memory (present in both interpreters), with an explicit transaction."""

    def __init__(self) -> None:
        import sqlite3

        self._db = sqlite3.connect(":memory:", isolation_level=None)

    def query(self, sql: str, params: tuple[object, ...] | list[object] = ()) -> list[tuple]:
        return self._db.execute(sql, params).fetchall()

    def atomic(self, work):  # type: ignore[no-untyped-def]
        self._db.execute("BEGIN")
        try:
            result = work()
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return result


def crypto_port():  # type: ignore[no-untyped-def]
    """The runtime's own Crypto port: WebCrypto in Pyodide, `cryptography` in CPython."""
    if PYODIDE:
        from gpushield_edge.runtime_workers.crypto import WebCrypto

        return WebCrypto(bytes(32))
    from gpushield_edge.runtime_local.crypto import LocalCrypto

    return LocalCrypto(bytes(32))


class MemoryUpstream:
    """RunPod's runsync answer for a completed job, without a network hop."""

    body = json.dumps({"id": "sync-1", "status": "COMPLETED", "executionTime": 812,
                       "delayTime": 31, "output": {"summary": "ok"}}).encode()

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        return UpstreamResponse(200, {"content-type": "application/json"}, self.body)


class CountingAudit:
    """Counts events instead of keeping them: a Worker does not accumulate them either."""

    def __init__(self) -> None:
        self.events = 0

    async def write(self, event: object) -> None:
        self.events += 1


class NoBackground:
    def defer(self, work: object) -> None:
        raise AssertionError("nothing is deferred on this path")


class Clock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.perf_counter()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def signed(body: bytes, now: int, i: int) -> GateRequest:
    """A 1 KB JSON call signed with the contract's own signer (a new nonce each time)."""
    headers = {"content-type": "application/json",
               "content-digest": digest.content_digest(body)}
    parts = signing.RequestParts("POST", AUTHORITY, "/v1/models/summarize/infer", "", headers)
    signature_input, signature = signing.sign_request(
        parts, key_id=KEY_ID, alg=algorithms.HMAC_SHA256, key=SECRET, created=now,
        expires=now + 60, nonce=f"bench-nonce-{i:08d}")
    headers = {**headers, "signature-input": signature_input, "signature": signature,
               "host": AUTHORITY}
    folded, size = GateRequest.fold_headers(headers.items())
    return GateRequest("POST", "https", AUTHORITY, "/v1/models/summarize/infer", "", folded,
                       body, header_bytes=size, client_ip="203.0.113.9")


async def token_verification(crypto: object, rounds: int) -> list[float]:
    """Verifying one of the gate's EdDSA access tokens: strict JWS parsing, key lookup,
    Ed25519 through the runtime's Crypto port (WebCrypto in Pyodide), claim checks."""
    from gpushield_edge.tokens.issuer import GateIssuer, new_signing_key_text
    from gpushield_edge.tokens.verifier import BearerVerifier

    issuer = GateIssuer("https://gate.example", "https://gate.example", new_signing_key_text(),
                        crypto)  # type: ignore[arg-type]
    verifier = BearerVerifier([issuer], crypto)  # type: ignore[arg-type]
    now = time.time()
    token, _ = await issuer.mint(key_id=KEY_ID, key_version=1, scopes=("summarize",),
                                 ttl_s=600, now=now)
    times = []
    for i in range(rounds + 50):
        started = time.perf_counter()
        await verifier.verify(token, now)
        if i >= 50:
            times.append((time.perf_counter() - started) * 1e6)
    times.sort()
    return [round(t, 1) for t in times]


def gate_config(priced: bool):  # type: ignore[no-untyped-def]
    document: dict[str, object] = {"models": {"summarize": {
        "deadline_s": 60,
        "backend": {"type": "runpod", "flavor": "serverless", "base_url": "https://api.runpod.ai",
                    "endpoint_id": "bench", "api_key_env": "RUNPOD_API_KEY"},
        "policy": {"max_body_bytes": 32768, "max_prompt_chars": 4000, "prompt_field": "prompt",
                   "max_json_depth": 4, "max_json_values": 64,
                   "parameters": {"max_tokens": {"type": "integer", "minimum": 1,
                                                 "maximum": 512}}}}}}
    if priced:
        document["prices"] = {"backends": {"runpod": {"micros_per_gpu_s": 300,
                                                      "min_micros": 100}}}
    return parse_config(document, {"RUNPOD_API_KEY": "rp_bench"})


async def gate_times(requests: int, *, budgeted: bool) -> tuple[list[float], object, int]:
    """Per-request gate time for signed calls; with `budgeted`, the key has a day and a
    rolling-hour budget and the model a price, so every call reserves and settles."""
    warmup = min(200, requests // 5)
    parse_started = time.perf_counter()
    config = gate_config(budgeted)
    CONFIG_MS.append((time.perf_counter() - parse_started) * 1000)
    core = KeyGuardCore(MemoryStorage(), crypto_port())
    core.migrate()
    await core.create_key(key_id=KEY_ID, alg=algorithms.HMAC_SHA256, key_material=SECRET,
                          scopes=("summarize",), limits=KeyLimits(rate_per_minute=1e6,
                          burst=1_000_000, max_concurrency=64), expires_at=None,
                          now=time.time())
    if budgeted:
        specs = [BudgetSpec("day", "day", limit_micros=10**12),
                 BudgetSpec("hour", "hour", rolling=True, limit_gpu_ms=10**12)]
        core.storage.atomic(lambda: set_key_budgets(core.storage.query, KEY_ID, specs))
    services = Services(config=config, clock=Clock(), crypto=core.crypto,
                        upstream=MemoryUpstream(), guard=InProcessKeyGuard(core),
                        audit=CountingAudit(), background=NoBackground(),
                        backends={"summarize": RunPodBackend(config.models["summarize"].backend)})
    gate = Gate(services)
    # Varied prose like a real prompt's (bench_prose.py; a repeated sentence would flatter the
    # WAF about fourfold), a different one of PROMPTS texts on each request.
    from bench_prose import varied_prose

    bodies = [json.dumps({"input": {"prompt": varied_prose(980, seed), "max_tokens": 64}}).encode()
              for seed in range(PROMPTS)]
    now = int(time.time())
    batch = [signed(bodies[i % PROMPTS], now, i) for i in range(requests + warmup)]
    # The pre-signed batch is the benchmark's, not the gate's: keep the collector off it.
    gc.collect()
    gc.freeze()
    times: list[float] = []
    for i, request in enumerate(batch):
        started = time.perf_counter()
        response = await gate.handle(request)
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise SystemExit(f"request {i} answered {response.status}: {response.body[:200]!r}")
        if i == 0:
            FIRST_REQUEST_MS.append(elapsed * 1000)
        if i >= warmup:
            times.append(elapsed * 1e6)
    gc.unfreeze()
    times.sort()
    return times, core.crypto, len(bodies[0])


def _pct(times: list[float], q: float) -> float:
    return round(times[min(len(times) - 1, int(len(times) * q))], 1)


async def main() -> None:
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    times, crypto, body_bytes = await gate_times(requests, budgeted=False)
    budgeted, _, _ = await gate_times(requests, budgeted=True)
    token = await token_verification(crypto, min(requests, 1000))
    print(json.dumps({
        "runtime": "pyodide" if PYODIDE else "cpython",
        "python": sys.version.split()[0],
        "import_ms": round(IMPORT_MS, 2),
        "body_bytes": body_bytes,
        "requests": len(times),
        "p50_us": _pct(times, 0.5), "p90_us": _pct(times, 0.9), "p99_us": _pct(times, 0.99),
        "budget_p50_us": _pct(budgeted, 0.5), "budget_p99_us": _pct(budgeted, 0.99),
        "token_p50_us": _pct(token, 0.5), "token_p99_us": _pct(token, 0.99),
        "first_request_ms": round(CONFIG_MS[0] + FIRST_REQUEST_MS[0], 1),
    }))


# In Pyodide the harness awaits `main()` itself, on the JS event loop.
if __name__ == "__main__" and not PYODIDE:
    asyncio.run(main())
