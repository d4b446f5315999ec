"""Local validation agrees with the gate's validator: same inputs refused, same first code."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gpushield._models import compile_policy, encode_body, validate_input_locally
from gpushield.errors import InputRejected
from gpushield_wire.errors import ProblemError
from gpushield_wire.jsonbody import parse_json_body
from gpushield_wire.policy import ModelPolicy, ParameterSpec, validate_input

# Names chosen to collide with pydantic internals and our own aliases on purpose.
NAMES = ["a", "b", "max-tokens", "f1", "model_config", "_seed", "schema", "z"]


@st.composite
def specs(draw: st.DrawFn) -> ParameterSpec:
    kind = draw(st.sampled_from(["string", "integer", "number", "boolean"]))
    minimum = maximum = max_length = None
    choices: tuple[Any, ...] | None = None
    if kind in ("integer", "number"):
        minimum = draw(st.none() | st.integers(-5, 5) | st.sampled_from([-0.5, 1.5]))
        maximum = draw(st.none() | st.integers(-5, 10) | st.sampled_from([2.5, 7.0]))
    if kind == "string":
        max_length = draw(st.none() | st.integers(0, 4))
    if draw(st.booleans()):
        pool = {
            "string": st.text("abc", max_size=5),
            "integer": st.integers(-3, 8),
            "number": st.integers(-3, 8) | st.sampled_from([0.5, 2.0, -1.5]),
            "boolean": st.booleans(),
        }[kind]
        choices = tuple(
            draw(st.lists(pool | st.sampled_from([1, True, "1"]), min_size=1, max_size=4))
        )
    return ParameterSpec(
        type=kind,
        minimum=minimum,
        maximum=maximum,
        max_length=max_length,
        choices=choices,
        required=draw(st.integers(0, 3)) == 0,
    )


@st.composite
def policies(draw: st.DrawFn) -> ModelPolicy:
    prompt_field = draw(st.sampled_from(["prompt", "text", "f0"]))
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=4))
    return ModelPolicy(
        max_prompt_chars=draw(st.integers(0, 6)),
        prompt_field=prompt_field,
        prompt_required=draw(st.booleans()),
        parameters={name: draw(specs()) for name in names if name != prompt_field},
    )


def values_near(spec: ParameterSpec | None, max_chars: int) -> st.SearchStrategy[Any]:
    """Mostly values at and just past this parameter's bounds; sometimes anything at all."""
    edges: list[Any] = []
    if spec is None:  # the prompt
        edges += ["p" * max_chars, "p" * (max_chars + 1), "p" * max(0, max_chars - 1)]
    else:
        for bound in (spec.minimum, spec.maximum):
            if bound is None:
                continue
            if spec.type == "integer":
                edges += [math.floor(bound) + d for d in (-1, 0, 1, 2)]
            else:
                edges += [bound, bound - 1, bound + 1, bound - 0.5, bound + 0.5, int(bound)]
        if spec.max_length is not None:
            edges += ["x" * spec.max_length, "x" * (spec.max_length + 1)]
        edges += list(spec.choices or ())
        edges += {"string": ["", "ab"], "integer": [0, 3], "number": [0.25, 3], "boolean": [True]}[
            spec.type
        ]
    junk = (
        st.sampled_from([None, True, 1, 0.5, "1", [1], {}])
        | st.integers(-20, 20)
        | st.floats(allow_nan=True, allow_infinity=True, width=32)
        | st.text(max_size=8)
        | st.booleans()
    )
    good = st.sampled_from(edges)
    # one_of would pick junk half the time (it merges identical branches): weight by hand.
    return st.integers(0, 7).flatmap(lambda pick: junk if pick == 0 else good)


@st.composite
def cases(draw: st.DrawFn) -> tuple[ModelPolicy, Any]:
    policy = draw(policies())
    if draw(st.integers(0, 20)) == 7:
        return policy, draw(st.sampled_from([None, [], "x", 1, [{}]]))
    payload: dict[str, Any] = {}
    if draw(st.integers(0, 9)) > 0:
        payload[policy.prompt_field] = draw(values_near(None, policy.max_prompt_chars))
    for name, spec in policy.parameters.items():
        if draw(st.integers(0, 3)) > 0:
            payload[name] = draw(values_near(spec, 0))
    if draw(st.integers(0, 5)) == 3:
        payload[draw(st.sampled_from([*NAMES, "extra"]))] = draw(values_near(None, 1))
    return policy, payload


def outcome_gate(policy: ModelPolicy, payload: Any) -> tuple[Any, ...]:
    try:
        return ("ok", validate_input(policy, {"input": payload}))
    except ProblemError as error:
        return ("refused", error.code, error.problem.extra["violations"])


def outcome_local(policy: ModelPolicy, payload: Any) -> tuple[Any, ...]:
    try:
        return ("ok", validate_input_locally(policy, payload))
    except InputRejected as error:
        return ("refused", error.code, error.violations)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_local_validation_matches_gate_code_and_violation(case: tuple[ModelPolicy, Any]) -> None:
    policy, payload = case
    expected = outcome_gate(policy, payload)
    event(expected[1] if expected[0] == "refused" else "accepted")
    assert outcome_local(policy, payload) == expected


@settings(max_examples=200, deadline=None)
@given(cases())
def test_encoded_body_is_what_the_gate_would_accept(case: tuple[ModelPolicy, Any]) -> None:
    """Whatever encode_body lets through parses and validates at the gate unchanged."""
    policy, payload = case
    try:
        body = encode_body(compile_policy(policy), payload)
    except InputRejected:
        return
    document = parse_json_body(
        body, max_depth=policy.max_json_depth, max_values=policy.max_json_values
    )
    assert validate_input(policy, document) == document["input"]
    assert len(body) <= policy.max_body_bytes


POLICY = ModelPolicy(
    max_body_bytes=400,
    max_prompt_chars=50,
    parameters={
        "max_tokens": ParameterSpec(type="integer", minimum=1, maximum=512),
        "temperature": ParameterSpec(type="number", minimum=0, maximum=2),
        "mode": ParameterSpec(type="string", choices=("fast", "slow")),
        "stream": ParameterSpec(type="boolean"),
    },
    max_json_depth=3,
    max_json_values=8,
)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"prompt": "x" * 51}, "input_too_long"),
        ({}, "parameter_missing"),
        ({"prompt": None}, "parameter_missing"),
        ({"prompt": 3}, "parameter_type"),
        ({"prompt": "hi", "max_tokens": True}, "parameter_type"),
        ({"prompt": "hi", "max_tokens": "1"}, "parameter_type"),
        ({"prompt": "hi", "temperature": math.nan}, "parameter_type"),
        ({"prompt": "hi", "temperature": 2.5}, "parameter_out_of_range"),
        ({"prompt": "hi", "mode": "turbo"}, "parameter_out_of_range"),
        ({"prompt": "hi", "top_k": 1, "max_tokens": 0}, "parameter_not_allowed"),
        ({"prompt": "x" * 51, "top_k": 1}, "input_too_long"),
    ],
)
def test_local_codes_for_typical_mistakes(payload: dict[str, Any], code: str) -> None:
    with pytest.raises(InputRejected) as caught:
        validate_input_locally(POLICY, payload)
    assert caught.value.code == code
    assert caught.value.status == 422


@pytest.mark.parametrize(
    ("payload", "code", "status"),
    [
        ({"prompt": "x" * 500}, "body_too_large", 413),  # the gate's parse stage comes first
        ({"prompt": "hi", "stream": [[[1]]]}, "json_too_deep", 400),
        ({"prompt": "hi", "stream": [1, 2, 3, 4, 5, 6, 7]}, "json_too_large", 413),
        ({"prompt": "hi", "stream": object()}, "parameter_type", 422),
        ({"prompt": "hi", "other": object()}, "parameter_not_allowed", 422),
    ],
)
def test_body_caps_apply_before_policy_like_the_gate(
    payload: dict[str, Any], code: str, status: int
) -> None:
    with pytest.raises(InputRejected) as caught:
        encode_body(compile_policy(POLICY), payload)
    assert (caught.value.code, caught.value.status) == (code, status)


def test_encoded_body_is_compact_utf8_json() -> None:
    body = encode_body(compile_policy(POLICY), {"prompt": "héllo", "max_tokens": 5})
    assert body == '{"input":{"prompt":"héllo","max_tokens":5}}'.encode()


def test_compiled_model_is_cached_per_policy_hash() -> None:
    assert compile_policy(POLICY) is compile_policy(POLICY)
    schema = compile_policy(POLICY).model.model_json_schema(by_alias=True)
    assert schema["properties"]["prompt"]["maxLength"] == 50
    assert schema["additionalProperties"] is False
