"""The SDK and the gate refuse the same out-of-bounds inputs with the same code and status.

The policy is the one the gate publishes at `/v1/models` (what the SDK fetches); the SDK side
is `encode_body` (its parse-stage caps, then the pydantic model built from the policy), the
gate side is a signed request through the whole local gate. A difference means a well-behaved
client could send something the gate refuses, or be stopped locally for nothing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.support.bad_requests import MODEL, problem_of, signed_request

from gpushield._models import compile_policy, encode_body
from gpushield.errors import InputRejected
from gpushield_edge.http import GateRequest
from gpushield_wire.policy import ModelPolicy

from .conftest import GateHarness

OUT_OF_BOUNDS: dict[str, Any] = {
    "prompt too long": {"prompt": "x" * 4001, "max_tokens": 16},
    "prompt missing": {"max_tokens": 16},
    "prompt null": {"prompt": None},
    "prompt not a string": {"prompt": 42},
    "prompt is a list": {"prompt": ["a", "b"]},
    "max_tokens zero": {"prompt": "hi", "max_tokens": 0},
    "max_tokens too large": {"prompt": "hi", "max_tokens": 513},
    "max_tokens a string": {"prompt": "hi", "max_tokens": "16"},
    "max_tokens a bool": {"prompt": "hi", "max_tokens": True},
    "max_tokens a float": {"prompt": "hi", "max_tokens": 16.5},
    "temperature too high": {"prompt": "hi", "temperature": 2.5},
    "temperature negative": {"prompt": "hi", "temperature": -0.1},
    "unknown parameter": {"prompt": "hi", "top_k": 5},
    "unknown parameter sorts first": {"prompt": "hi", "a_param": 1, "max_tokens": 0},
    "nested too deep": {"prompt": "hi", "max_tokens": [[[[1]]]]},
    "too many JSON values": {"prompt": "hi", "max_tokens": list(range(80))},
    "body over the model's cap": {"prompt": "y" * 40_000},
}


def published_policy(harness: GateHarness) -> ModelPolicy:
    response = harness.handle(GateRequest("GET", "http", "gate.test", "/v1/models", "", {}, b""))
    models = {entry["name"]: entry for entry in json.loads(response.body)["models"]}
    return ModelPolicy.from_dict(models[MODEL]["policy"])


@pytest.mark.parametrize("case", sorted(OUT_OF_BOUNDS))
def test_sdk_and_gate_refuse_with_the_same_code(harness: GateHarness, case: str) -> None:
    payload = OUT_OF_BOUNDS[case]
    with pytest.raises(InputRejected) as caught:
        encode_body(compile_policy(published_policy(harness)), payload)
    local = (caught.value.code, caught.value.status)

    body = json.dumps({"input": payload}).encode()
    response = harness.handle(signed_request(harness, body=body))
    remote = (problem_of(response)["code"], response.status)
    assert local == remote


def test_in_bounds_input_passes_both(harness: GateHarness) -> None:
    payload = {"prompt": "Summarise this, please.", "max_tokens": 512, "temperature": 2.0}
    body = encode_body(compile_policy(published_policy(harness)), payload)
    response = harness.handle(signed_request(harness, body=body))
    # Accepted by every check: only the unreachable backend refuses.
    assert problem_of(response)["code"] == "backend_unavailable"
