"""The SDK against a real HTTP server that verifies every signature with the contract."""

from __future__ import annotations

import asyncio
import base64
import logging
import pickle
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from tenacity import AsyncRetrying, Retrying
from tests.sdk.conftest import (
    ED_KEY_ID,
    ED_SEED,
    KEY_ID,
    POLICY,
    SECRET,
    SECRET_BYTES,
    RecordingGate,
    Reply,
    completed,
    problem,
)

import gpushield
from gpushield import (
    APIError,
    AsyncClient,
    AuthenticationError,
    BackendError,
    BudgetExceeded,
    Client,
    Conflict,
    GateUnavailable,
    IdempotencyInProgress,
    InputRejected,
    ModelNotFound,
    NotFound,
    PermissionDenied,
    RateLimited,
    SignatureAuth,
    TransportError,
)
from gpushield._retry import RetryPolicy
from gpushield_wire.errors import CATALOG

FAST = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.02, max_wait=5.0)


def client_for(gate: RecordingGate, **options: Any) -> Client:
    client = Client(gate.base_url, KEY_ID, SECRET, **options)
    client._core.retry = FAST
    return client


def async_client_for(gate: RecordingGate, **options: Any) -> AsyncClient:
    client = AsyncClient(gate.base_url, KEY_ID, SECRET, **options)
    client._core.retry = FAST
    return client


# -- signing -------------------------------------------------------------------------------


def test_sync_client_signature_verifies_at_the_gate(gate: RecordingGate) -> None:
    with client_for(gate) as client:
        result = client.infer("echo", {"prompt": "hello", "max_tokens": 5})
    assert result.output == {"prompt": "hello", "max_tokens": 5}
    assert result.status == "COMPLETED"
    assert result.usage.execution_ms == 12
    assert result.request_id is not None
    assert not result.replayed
    (post,) = gate.posts
    assert post.refused is None
    assert post.headers["content-type"] == "application/json"
    assert post.idempotency_key is not None
    assert len(post.idempotency_key) == 32
    assert post.headers["idempotency-key"] == f'"{post.idempotency_key}"'
    assert '"content-digest" "content-type" "idempotency-key"' in post.headers["signature-input"]


def test_async_client_signature_verifies_at_the_gate(gate: RecordingGate) -> None:
    async def main() -> Any:
        async with async_client_for(gate) as client:
            return await client.infer("echo", {"prompt": "hi"})

    assert asyncio.run(main()).output == {"prompt": "hi"}
    (post,) = gate.posts
    assert post.refused is None


def test_plain_httpx_client_with_signature_auth(gate: RecordingGate) -> None:
    auth = SignatureAuth(KEY_ID, SECRET)
    with httpx.Client(base_url=gate.base_url, auth=auth) as http:
        response = http.post(
            "/v1/models/echo/infer?trace=1&x=%2F",
            json={"input": {"prompt": "x"}},
            headers={"idempotency-key": '"abc"'},
        )
        unsigned_body = http.get("/v1/models/echo/status?a=b")
    assert response.status_code == 200, response.text
    assert gate.requests[0].query == "trace=1&x=%2F"
    assert gate.requests[0].refused is None
    assert unsigned_body.status_code == 200  # a bodiless request signs the four derived parts
    assert gate.requests[1].refused is None


def test_async_plain_httpx_client_with_signature_auth(gate: RecordingGate) -> None:
    async def main() -> int:
        async with httpx.AsyncClient(
            base_url=gate.base_url, auth=SignatureAuth(KEY_ID, SECRET)
        ) as http:
            response = await http.post("/v1/models/echo/infer", json={"input": {"prompt": "x"}})
            return response.status_code

    assert asyncio.run(main()) == 200
    assert gate.requests[0].refused is None


def test_ed25519_signature_verifies(gate: RecordingGate) -> None:
    auth = SignatureAuth(ED_KEY_ID, alg="ed25519", private_key=ED_SEED)
    with Client(gate.base_url, auth=auth) as client:
        client.infer("echo", {"prompt": "hi"})
    assert gate.posts[0].refused is None


def test_wrong_secret_is_refused_and_not_retried(gate: RecordingGate) -> None:
    with Client(gate.base_url, KEY_ID, bytes(32)) as client:
        client._core.retry = FAST
        with pytest.raises(AuthenticationError) as caught:
            client.infer("echo", {"prompt": "hi"})
    assert caught.value.code == "signature_invalid"
    assert caught.value.request_id is not None
    assert len(gate.posts) == 1


def test_body_without_content_type_is_refused_before_sending(gate: RecordingGate) -> None:
    auth = SignatureAuth(KEY_ID, SECRET)
    with (
        httpx.Client(base_url=gate.base_url, auth=auth) as http,
        pytest.raises(ValueError, match="Content-Type"),
    ):
        http.post("/v1/models/echo/infer", content=b"{}")
    assert gate.requests == []


# -- retries --------------------------------------------------------------------------------


def test_retries_reuse_one_idempotency_key_with_fresh_nonces(gate: RecordingGate) -> None:
    gate.answer(problem("backend_unavailable"), problem("backend_timeout"), completed("done"))
    with client_for(gate) as client:
        result = client.infer("echo", {"prompt": "hi"})
    assert result.output == "done"
    posts = gate.posts
    assert [p.attempt for p in posts] == [1, 2, 3]
    assert len({p.idempotency_key for p in posts}) == 1
    assert len({p.nonce for p in posts}) == 3
    assert len({p.headers["signature"] for p in posts}) == 3
    assert len({p.body for p in posts}) == 1  # serialised once, sent identically
    assert all(p.refused is None for p in posts)


def test_async_retries_reuse_one_idempotency_key(gate: RecordingGate) -> None:
    gate.answer(problem("guard_unavailable"), completed("done", replayed=True))

    async def main() -> Any:
        async with async_client_for(gate) as client:
            return await client.infer("echo", {"prompt": "hi"}, idempotency_key="my-key-1")

    result = asyncio.run(main())
    assert result.replayed
    assert [p.idempotency_key for p in gate.posts] == ["my-key-1", "my-key-1"]
    assert gate.posts[0].nonce != gate.posts[1].nonce


@dataclass
class RecordedWaits:
    """A client's retry policy with each wait it asks for noted instead of slept."""

    policy: RetryPolicy
    waits: list[float] = field(default_factory=list)

    def sync(self) -> Retrying:
        return self.policy.sync().copy(sleep=self.waits.append)

    def async_(self) -> AsyncRetrying:
        async def sleep(seconds: float) -> None:
            self.waits.append(seconds)

        return self.policy.async_().copy(sleep=sleep)


def test_retry_after_is_honoured(gate: RecordingGate) -> None:
    gate.answer(problem("rate_limited", headers={"retry-after": "1"}), completed())
    retry = RecordedWaits(FAST)
    with client_for(gate) as client:
        client._core.retry = retry  # type: ignore[assignment]
        client.infer("echo", {"prompt": "hi"})
    assert retry.waits == [1.0]
    assert len(gate.posts) == 2


def test_retry_after_member_is_used_without_the_header(gate: RecordingGate) -> None:
    gate.answer(problem("concurrency_limited", retry_after=1), completed())
    retry = RecordedWaits(FAST)

    async def main() -> None:
        async with async_client_for(gate) as client:
            client._core.retry = retry  # type: ignore[assignment]
            await client.infer("echo", {"prompt": "hi"})

    asyncio.run(main())
    assert retry.waits == [1.0]
    assert len(gate.posts) == 2


def test_retry_after_beyond_max_wait_is_not_waited_for(gate: RecordingGate) -> None:
    gate.answer(problem("rate_limited", headers={"retry-after": "3600"}), completed())
    with client_for(gate) as client, pytest.raises(RateLimited) as caught:
        client.infer("echo", {"prompt": "hi"})
    assert caught.value.retry_after == 3600.0
    assert len(gate.posts) == 1


@pytest.mark.parametrize(
    "reply",
    [
        problem("signature_expired"),
        problem("parameter_out_of_range"),
        problem("model_not_in_scope"),
        problem("budget_exceeded"),
        problem("backend_failed"),  # the model failed on this input: again would bill again
        problem("idempotency_in_progress"),
    ],
)
def test_no_retry_on_answers_that_would_repeat(gate: RecordingGate, reply: Reply) -> None:
    gate.answer(reply, completed())
    with client_for(gate) as client, pytest.raises(APIError):
        client.infer("echo", {"prompt": "hi"})
    assert len(gate.posts) == 1


def test_proxy_error_without_problem_document_is_retried(gate: RecordingGate) -> None:
    gate.answer(
        Reply(502, b"<html>bad gateway</html>", (("content-type", "text/html"),)), completed()
    )
    with client_for(gate) as client:
        assert client.infer("echo", {"prompt": "hi"}).output == "ok"
    assert len(gate.posts) == 2


def test_retries_stop_after_max_attempts_with_the_last_error(gate: RecordingGate) -> None:
    gate.answer(*[problem("backend_unavailable")] * 5)
    with client_for(gate, max_retries=2) as client:
        client._core.retry = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02)
        with pytest.raises(BackendError) as caught:
            client.infer("echo", {"prompt": "hi"})
    assert caught.value.code == "backend_unavailable"
    assert len(gate.posts) == 3


def test_connect_failure_is_retried_then_raised_as_transport_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket_free_port() as port, Client(f"http://127.0.0.1:{port}", KEY_ID, SECRET) as client:
        client._core.retry = FAST
        with caplog.at_level(logging.DEBUG, logger="gpushield"), pytest.raises(TransportError):
            client.models()
    attempts = [r for r in caplog.records if r.name == "gpushield" and "attempt" in r.getMessage()]
    assert len(attempts) == 3  # logged before each of the 3 retries


class socket_free_port:
    """A port nothing listens on (bound, never listened, closed on exit)."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return int(self.sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


# -- error mapping ------------------------------------------------------------------------------

EXPECTED_CLASS: dict[str, type[APIError]] = {
    "not_found": NotFound,
    "model_unknown": ModelNotFound,
    "method_not_allowed": APIError,
    "headers_too_large": APIError,
    "model_not_in_scope": PermissionDenied,
    "budget_exceeded": BudgetExceeded,
    "rate_limited": RateLimited,
    "concurrency_limited": RateLimited,
    "idempotency_in_progress": IdempotencyInProgress,
    "idempotency_key_reused": Conflict,
    "idempotency_key_invalid": APIError,
    "guard_unavailable": GateUnavailable,
    "key_not_found": NotFound,
    "admin_request_invalid": APIError,
    "oauth_invalid_request": APIError,
    "oauth_invalid_grant": AuthenticationError,
    "oauth_invalid_scope": PermissionDenied,
    "oauth_unsupported_grant_type": APIError,
    "tokens_disabled": NotFound,
}


def expected_class(code: str) -> type[APIError]:
    if code in EXPECTED_CLASS:
        return EXPECTED_CLASS[code]
    status = CATALOG[code].status
    if status == 401:
        return AuthenticationError
    if status == 403:
        return PermissionDenied
    if status in (400, 413, 415, 422):
        return InputRejected
    assert status >= 500, code
    return BackendError


@pytest.mark.parametrize("code", sorted(CATALOG))
def test_each_catalog_code_maps_to_its_exception(gate: RecordingGate, code: str) -> None:
    gate.answer(problem(code, detail_hint="x"))
    with client_for(gate, max_retries=0) as client:
        client._core.retry = RetryPolicy(max_attempts=1)
        with pytest.raises(APIError) as caught:
            client.infer("echo", {"prompt": "hi"})
    error = caught.value
    assert type(error) is expected_class(code)
    assert (error.code, error.status) == (code, CATALOG[code].status)
    assert error.request_id is not None
    assert error.problem is not None
    assert error.problem.extra["detail_hint"] == "x"


@pytest.mark.parametrize(
    ("status", "cls"), [(418, APIError), (503, BackendError), (429, RateLimited)]
)
def test_unknown_code_falls_back_by_status(gate: RecordingGate, status: int, cls: type) -> None:
    gate.answer(
        Reply(
            status,
            b'{"code": "from_the_future", "status": 1}',
            (("content-type", "application/problem+json"),),
        )
    )
    with client_for(gate) as client:
        client._core.retry = RetryPolicy(max_attempts=1)
        with pytest.raises(APIError) as caught:
            client.infer("echo", {"prompt": "hi"})
    assert type(caught.value) is cls
    assert caught.value.code == "from_the_future"


# -- local validation and the models cache --------------------------------------------------


def test_over_long_prompt_is_refused_without_any_inference_request(gate: RecordingGate) -> None:
    with client_for(gate) as client:
        with pytest.raises(InputRejected) as caught:
            client.infer("echo", {"prompt": "x" * 101})
        assert caught.value.code == "input_too_long"
        assert caught.value.request_id is None
        assert caught.value.violations == [
            {"pointer": "/input/prompt", "code": "input_too_long", "max_length": 100}
        ]
        assert [r.method for r in gate.requests] == ["GET"]  # the policy, and nothing else
        with pytest.raises(InputRejected):
            client.infer("echo", {"prompt": "x" * 101})
    assert [r.method for r in gate.requests] == ["GET"]  # policy cached: zero requests


def test_async_over_long_prompt_is_refused_without_any_request(gate: RecordingGate) -> None:
    async def main() -> None:
        async with async_client_for(gate) as client:
            await client.models()
            gate.requests.clear()
            with pytest.raises(InputRejected):
                await client.infer("echo", {"prompt": "x" * 101, "max_tokens": 0})

    asyncio.run(main())
    assert gate.requests == []


def test_unknown_model_is_refused_after_one_refresh_without_a_post(gate: RecordingGate) -> None:
    with client_for(gate) as client, pytest.raises(ModelNotFound):
        client.infer("nope", {"prompt": "hi"})
    assert [r.method for r in gate.requests] == ["GET"]


def test_models_are_cached_then_refetched_after_ttl(gate: RecordingGate) -> None:
    with client_for(gate) as client:
        (echo,) = client.models()
        client.models()
        assert len(gate.requests) == 1
        assert echo.policy_hash == POLICY.policy_hash()
        assert echo.input_model.model_json_schema(by_alias=True)["required"] == ["prompt"]
    with client_for(gate, models_ttl=0.0) as client:
        client.models()
        time.sleep(0.01)
        client.models()
    assert len(gate.requests) == 3


def test_published_policy_is_the_enforced_policy(gate: RecordingGate) -> None:
    with client_for(gate) as client:
        (echo,) = client.models()
    assert echo.policy == POLICY


def test_gate_policy_refusal_drops_the_cached_policy(gate: RecordingGate) -> None:
    from gpushield_wire.policy import ModelPolicy

    with client_for(gate) as client:
        client.infer("echo", {"prompt": "a" * 50})
        gate.models = {"echo": ModelPolicy(max_prompt_chars=10)}  # the operator tightened it
        gate.answer(problem("input_too_long"))
        with pytest.raises(InputRejected):
            client.infer("echo", {"prompt": "a" * 50})
        with pytest.raises(InputRejected):  # now refused locally, from the new policy
            client.infer("echo", {"prompt": "a" * 50})
    assert [r.method for r in gate.requests] == ["GET", "POST", "POST", "GET"]


# -- connections, configuration, secrets -----------------------------------------------------


def test_sequential_calls_reuse_one_connection(gate: RecordingGate) -> None:
    with client_for(gate) as client:
        for n in range(5):
            client.infer("echo", {"prompt": f"call {n}"})
    assert len(gate.posts) == 5
    assert len(gate.connections) == 1


def test_async_sequential_calls_reuse_one_connection(gate: RecordingGate) -> None:
    async def main() -> None:
        async with async_client_for(gate) as client:
            for n in range(5):
                await client.infer("echo", {"prompt": f"call {n}"})

    asyncio.run(main())
    assert len(gate.connections) == 1


def test_configuration_from_environment(
    gate: RecordingGate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GPUSHIELD_URL", gate.base_url)
    monkeypatch.setenv("GPUSHIELD_KEY_ID", KEY_ID)
    monkeypatch.setenv("GPUSHIELD_SECRET", SECRET)
    with Client() as client:
        assert client.infer("echo", {"prompt": "env"}).output == {"prompt": "env"}
    assert gate.posts[0].refused is None


def test_secret_never_appears_in_repr_errors_or_debug_logs(
    gate: RecordingGate, caplog: pytest.LogCaptureFixture
) -> None:
    secret_forms = [SECRET, SECRET[4:], base64.b64encode(SECRET_BYTES).decode(), SECRET_BYTES.hex()]
    seen: list[str] = []
    gate.answer(problem("backend_unavailable"), problem("signature_invalid"))
    with caplog.at_level(logging.DEBUG):
        with client_for(gate) as client:
            seen += [repr(client), str(client), repr(client._core.auth), str(client._core.auth)]
            with pytest.raises(AuthenticationError) as caught:
                client.infer("echo", {"prompt": "hi"})
            seen += [str(caught.value), repr(caught.value)]
        with pytest.raises(ValueError, match="base64url") as bad_secret:
            SignatureAuth(KEY_ID, SECRET[:-2] + "!!")
        seen.append(str(bad_secret.value))
    seen += [record.getMessage() for record in caplog.records]
    seen += [str(record.args) for record in caplog.records]
    assert any("attempt 1" in line for line in seen)  # the debug log did run
    for text in seen:
        for form in secret_forms:
            assert form not in text
    with pytest.raises(TypeError):
        pickle.dumps(SignatureAuth(KEY_ID, SECRET))


def test_public_api() -> None:
    assert gpushield.__version__
    for name in gpushield.__all__:
        assert getattr(gpushield, name) is not None
    assert issubclass(GateUnavailable, BackendError)
    assert issubclass(ModelNotFound, NotFound)
    assert issubclass(TransportError, gpushield.GpushieldError)
