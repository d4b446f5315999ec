"""Helpers the CPython benchmarks share.

The workloads that also run inside Pyodide (waf_workload.py, edge_workload.py) keep their own
copies: there only the standard library, bench_prose and the Worker bundle can be imported.
"""

from __future__ import annotations

import json

from gpushield_edge.ports import UpstreamRequest, UpstreamResponse

__all__ = ["InstantRunPod", "percentile"]


def percentile(samples: list[float], q: float) -> float:
    """The sample at fraction `q` of the sorted samples (nearest rank, no interpolation)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class InstantRunPod:
    """Upstream that answers every runsync at once, so only the gate's own work is timed."""

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        body = json.dumps({"id": "sync-1", "status": "COMPLETED", "output": {"ok": True},
                           "executionTime": 12, "delayTime": 3}).encode()
        return UpstreamResponse(200, {"content-type": "application/json"}, body)
