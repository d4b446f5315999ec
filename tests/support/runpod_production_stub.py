"""A protocol-faithful stand-in for RunPod's production Serverless API (api.runpod.ai).

RunPod's cloud is a true external boundary: tests cannot reach it, and the `runpod` package's
local server (the real worker used elsewhere) lacks what production has: the `/v2/{endpoint}`
prefix, Bearer auth, `runsync?wait=` returning IN_QUEUE/IN_PROGRESS, GET `/status` with
`delayTime`/`executionTime`, `/cancel` and `/health`. This stub implements exactly those
documented shapes (shared/notes/test-data.md §6.1, from runpod/docs operation-reference.mdx
and job-states.mdx) and nothing more.

Jobs are simulated on the clock: each job waits `delay_s` in the queue (IN_QUEUE), runs for
`job_duration_s` (IN_PROGRESS), then ends COMPLETED (output = the input echoed) or FAILED (error
shaped like the runpod SDK's JSON string with a traceback). As on RunPod, a job whose run
exceeds `policy.executionTimeout` ends TIMED_OUT at that limit, and a cancelled job stays
CANCELLED. Every request is recorded so tests can assert what the adapter sent.

Choices where RunPod's docs are silent (kept explicit so tests do not rely on them by accident):
- a `wait` outside 1,000–300,000 ms is answered 400, so an adapter that fails to clamp shows up;
- the 401 body is a short plain-text "Unauthorized";
- an unknown endpoint id or job id is answered 404.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from gpushield.devtools.serving import listening_socket, request_body, serve_asgi

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_WAIT_MS = 90_000
DEFAULT_EXECUTION_TIMEOUT_MS = 600_000


@dataclass
class StubBehaviour:
    """Per-test knobs; change them on `stub.behaviour` (or with `configure`) between calls."""

    job_duration_s: float = 0.05
    delay_s: float = 0.01
    # When set, jobs end FAILED with an SDK-shaped error of this exception type and message.
    fail_with: tuple[str, str] | None = None
    # When set, every /v2 route answers this HTTP status (429, 503, ...) before doing anything.
    force_status: int | None = None
    retry_after: str | None = None
    # When True, /v2 routes answer 200 with a body that is not JSON.
    garbage_body: bool = False


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Job:
    id: str
    input: Any
    execution_timeout_s: float
    created: float
    delay_s: float
    duration_s: float
    fail_with: tuple[str, str] | None
    cancelled_at: float | None = None

    def snapshot(self, now: float) -> dict[str, Any]:
        """The job as GET /status would show it at `now` (monotonic seconds)."""
        at = now if self.cancelled_at is None else min(now, self.cancelled_at)
        elapsed = at - self.created
        delay_ms = round(min(elapsed, self.delay_s) * 1000)
        run_s = max(0.0, elapsed - self.delay_s)
        if self.cancelled_at is not None:
            return {"delayTime": delay_ms, "executionTime": round(run_s * 1000), "id": self.id,
                    "status": "CANCELLED"}
        if elapsed < self.delay_s:
            return {"id": self.id, "status": "IN_QUEUE"}
        if self.duration_s > self.execution_timeout_s and run_s >= self.execution_timeout_s:
            return {"delayTime": delay_ms, "executionTime": round(self.execution_timeout_s * 1000),
                    "id": self.id, "status": "TIMED_OUT"}
        if run_s < self.duration_s:
            return {"delayTime": delay_ms, "id": self.id, "status": "IN_PROGRESS"}
        done = {"delayTime": delay_ms, "executionTime": round(self.duration_s * 1000),
                "id": self.id}
        if self.fail_with is not None:
            error_type, message = self.fail_with
            error = json.dumps({
                "error_type": f"<class '{error_type}'>",
                "error_message": message,
                "error_traceback": "Traceback (most recent call last):\n  File "
                f"\"/handler.py\", line 7, in handler\n{error_type}: {message}\n",
                "hostname": "stub-pod", "worker_id": "stub-worker", "runpod_version": "1.12.0",
            })
            return {**done, "error": error, "status": "FAILED"}
        return {**done, "output": {"echo": self.input}, "status": "COMPLETED"}

    @property
    def ends_at(self) -> float:
        """When the job reaches a terminal state unless cancelled first (monotonic seconds)."""
        return self.created + self.delay_s + min(self.duration_s, self.execution_timeout_s)

    def terminal(self, now: float) -> bool:
        return self.snapshot(now)["status"] not in ("IN_QUEUE", "IN_PROGRESS")


@dataclass
class ProductionStub:
    """The running stub: `url` is the API base (like https://api.runpod.ai)."""

    url: str
    endpoint_id: str
    api_key: str
    behaviour: StubBehaviour = field(default_factory=StubBehaviour)
    requests: list[RecordedRequest] = field(default_factory=list)
    jobs: dict[str, _Job] = field(default_factory=dict)

    def configure(self, **changes: Any) -> None:
        """Replaces the behaviour with defaults plus `changes`, so tests never inherit knobs."""
        self.behaviour = StubBehaviour(**changes)

    def reset(self) -> None:
        self.configure()
        self.requests.clear()
        self.jobs.clear()

    def requests_to(self, operation: str) -> list[RecordedRequest]:
        """Recorded requests whose path has `operation` (runsync, status, cancel...) after
        the endpoint id."""
        prefix = f"/v2/{self.endpoint_id}/{operation}"
        return [r for r in self.requests if r.path.startswith(prefix)]

    # ------------------------------------------------------------------ ASGI app
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await request_body(receive)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        record = RecordedRequest(
            method=scope["method"],
            path=scope["path"],
            query=parse_qs(scope["query_string"].decode("latin-1")),
            headers=headers,
            body=body,
        )
        self.requests.append(record)
        status, payload, extra = await self._route(record)
        if isinstance(payload, bytes):
            content, ctype = payload, b"text/plain"
        else:
            content, ctype = json.dumps(payload).encode(), b"application/json"
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", ctype), *extra],
        })
        await send({"type": "http.response.body", "body": content})

    async def _route(
        self, req: RecordedRequest
    ) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        parts = req.path.strip("/").split("/")
        if len(parts) < 3 or parts[0] != "v2":
            return 404, b"Not Found", []
        if req.headers.get("authorization") not in (f"Bearer {self.api_key}", self.api_key):
            return 401, b"Unauthorized", []
        if parts[1] != self.endpoint_id:
            return 404, b"Not Found", []
        b = self.behaviour
        if b.force_status is not None:
            extra = [(b"retry-after", b.retry_after.encode())] if b.retry_after else []
            return b.force_status, b"upstream says no", extra
        if b.garbage_body:
            return 200, b"<html>502 Bad Gateway</html>", []
        op, rest = parts[2], parts[3:]
        if op in ("run", "runsync") and not rest and req.method == "POST":
            return await self._submit(req, sync=op == "runsync")
        if op == "status" and len(rest) == 1 and req.method == "GET":
            return self._with_job(rest[0], lambda job: (200, job.snapshot(time.monotonic()), []))
        if op == "cancel" and len(rest) == 1 and req.method == "POST":
            return self._with_job(rest[0], self._cancel)
        if op == "health" and not rest and req.method == "GET":
            return 200, self._health(), []
        return 404, b"Not Found", []

    async def _submit(
        self, req: RecordedRequest, *, sync: bool
    ) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        try:
            data = json.loads(req.body)
        except ValueError:
            return 400, {"error": "invalid JSON body"}, []
        if not isinstance(data, dict) or "input" not in data:
            return 400, {"error": "input is required"}, []
        policy = data.get("policy") or {}
        timeout_ms = policy.get("executionTimeout", DEFAULT_EXECUTION_TIMEOUT_MS)
        b = self.behaviour
        job = _Job(
            id=f"{'sync-' if sync else ''}{uuid.uuid4()}-u1",
            input=data["input"],
            execution_timeout_s=timeout_ms / 1000,
            created=time.monotonic(),
            delay_s=b.delay_s,
            duration_s=b.job_duration_s,
            fail_with=b.fail_with,
        )
        if not sync:
            self.jobs[job.id] = job
            return 200, {"id": job.id, "status": "IN_QUEUE"}, []
        wait_values = req.query.get("wait", [str(DEFAULT_WAIT_MS)])
        try:
            wait_ms = int(wait_values[0])
        except ValueError:
            return 400, {"error": "wait must be an integer"}, []
        if not 1_000 <= wait_ms <= 300_000:
            return 400, {"error": "wait must be between 1000 and 300000"}, []
        self.jobs[job.id] = job
        # Jobs advance on the clock alone (nobody can cancel a runsync job before its id is
        # answered), so holding the request is one sleep until the job ends or the wait does.
        now = time.monotonic()
        held_until = min(now + wait_ms / 1000, job.ends_at)
        await asyncio.sleep(max(0.0, held_until - now))
        # asyncio may wake a hair early (clock resolution); the request was held until
        # `held_until`, so the answer shows the job as of then at the earliest.
        return 200, job.snapshot(max(time.monotonic(), held_until)), []

    def _with_job(
        self, job_id: str, action: Callable[[_Job], tuple[int, Any, list[tuple[bytes, bytes]]]]
    ) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        job = self.jobs.get(job_id)
        if job is None:
            return 404, {"error": "job not found"}, []
        return action(job)

    def _cancel(self, job: _Job) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        now = time.monotonic()
        if not job.terminal(now):
            job.cancelled_at = now
        return 200, {"id": job.id, "status": job.snapshot(now)["status"]}, []

    def _health(self) -> dict[str, Any]:
        now = time.monotonic()
        counts = {"completed": 0, "failed": 0, "inProgress": 0, "inQueue": 0, "retried": 0}
        key = {"COMPLETED": "completed", "FAILED": "failed", "IN_PROGRESS": "inProgress",
               "IN_QUEUE": "inQueue"}
        for job in self.jobs.values():
            name = key.get(job.snapshot(now)["status"])
            if name:
                counts[name] += 1
        running = counts["inProgress"]
        return {"jobs": counts, "workers": {"idle": 0 if running else 1, "running": running}}


@contextmanager
def start_production_stub(
    *, endpoint_id: str = "gpushield-test-ep", api_key: str = "rp_test_key_0123456789"
) -> Iterator[ProductionStub]:
    """Serves a ProductionStub with uvicorn on a free 127.0.0.1 port in a background thread.

    """
    sock, url = listening_socket()
    stub = ProductionStub(url=url, endpoint_id=endpoint_id, api_key=api_key)
    with serve_asgi(stub, sock, name="runpod-production-stub", lifespan="off"):
        yield stub
