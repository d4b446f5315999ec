"""Per-model input policy: one source of truth for what a model accepts.

The gate enforces it on every request; it publishes it at `/v1/models` with a hash, and the SDK
builds pydantic models from the same document so an out-of-bounds input fails before it leaves
the client. The validator here is the gate's; the SDK's pydantic models must reject the same
inputs with the same codes (tests check the two against each other).

A request body is `{"input": {...}}`: the `input` object holds the prompt field and the model's
parameters, mirroring RunPod's job shape so the gate can forward it unchanged.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import ProblemError

ParameterType = Literal["string", "integer", "number", "boolean"]
_PARAMETER_TYPES: tuple[str, ...] = ("string", "integer", "number", "boolean")


@dataclass(frozen=True, slots=True)
class ParameterSpec:
    """Type and bounds of one model parameter (JSON Schema's vocabulary, a strict subset)."""

    type: ParameterType
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    choices: tuple[str | int | float | bool, ...] | None = None
    required: bool = False

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {"type": self.type}
        # `is not None`, not truthiness: a bound of 0 is a bound.
        for name in ("minimum", "maximum", "max_length"):
            value = getattr(self, name)
            if value is not None:
                document[name] = value
        if self.required:
            document["required"] = True
        if self.choices is not None:
            document["choices"] = list(self.choices)
        return document

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> ParameterSpec:
        kind = document.get("type")
        if kind not in _PARAMETER_TYPES:
            raise ValueError(f"parameter type must be one of {_PARAMETER_TYPES}, got {kind!r}")
        known = {"type", "minimum", "maximum", "max_length", "choices", "required"}
        unknown = set(document) - known
        if unknown:
            raise ValueError(f"unknown parameter settings: {sorted(unknown)}")
        choices = document.get("choices")
        return cls(
            type=kind,
            minimum=document.get("minimum"),
            maximum=document.get("maximum"),
            max_length=document.get("max_length"),
            choices=tuple(choices) if choices is not None else None,
            required=bool(document.get("required", False)),
        )


@dataclass(frozen=True, slots=True)
class ModelPolicy:
    """Caps for one model. Defaults are deliberately tight; raise them per model in config."""

    max_body_bytes: int = 64 * 1024
    max_prompt_chars: int = 8_000
    prompt_field: str = "prompt"
    prompt_required: bool = True
    parameters: Mapping[str, ParameterSpec] = field(default_factory=dict)
    max_json_depth: int = 8
    max_json_values: int = 1_024

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_body_bytes": self.max_body_bytes,
            "max_prompt_chars": self.max_prompt_chars,
            "prompt_field": self.prompt_field,
            "prompt_required": self.prompt_required,
            "parameters": {name: spec.to_dict() for name, spec in sorted(self.parameters.items())},
            "max_json_depth": self.max_json_depth,
            "max_json_values": self.max_json_values,
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> ModelPolicy:
        known = {
            "max_body_bytes", "max_prompt_chars", "prompt_field", "prompt_required",
            "parameters", "max_json_depth", "max_json_values",
        }
        unknown = set(document) - known
        if unknown:
            raise ValueError(f"unknown policy settings: {sorted(unknown)}")
        defaults = cls()
        parameters = {
            str(name): ParameterSpec.from_dict(spec)
            for name, spec in dict(document.get("parameters", {})).items()
        }
        policy = cls(
            max_body_bytes=int(document.get("max_body_bytes", defaults.max_body_bytes)),
            max_prompt_chars=int(document.get("max_prompt_chars", defaults.max_prompt_chars)),
            prompt_field=str(document.get("prompt_field", defaults.prompt_field)),
            prompt_required=bool(document.get("prompt_required", defaults.prompt_required)),
            parameters=parameters,
            max_json_depth=int(document.get("max_json_depth", defaults.max_json_depth)),
            max_json_values=int(document.get("max_json_values", defaults.max_json_values)),
        )
        if policy.prompt_field in policy.parameters:
            raise ValueError("the prompt field must not also be listed as a parameter")
        return policy

    def policy_hash(self) -> str:
        """Stable hash of the canonical document: the SDK refetches when it changes."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _violation(code: str, pointer: str, **limits: Any) -> ProblemError:
    return ProblemError(code, violations=[{"pointer": pointer, "code": code, **limits}])


def _check_parameter(name: str, spec: ParameterSpec, value: Any) -> None:
    pointer = f"/input/{name}"
    # bool is a subclass of int in Python; JSON keeps them apart, and so must we.
    if spec.type == "boolean":
        ok = isinstance(value, bool)
    elif spec.type == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif spec.type == "number":
        # An int is always finite; math.isfinite would overflow on a 400-digit JSON integer.
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and math.isfinite(value)
        )
    else:
        ok = isinstance(value, str)
    if not ok:
        raise _violation("parameter_type", pointer, expected=spec.type)
    if spec.choices is not None and value not in spec.choices:
        raise _violation("parameter_out_of_range", pointer, choices=list(spec.choices))
    if spec.type in ("integer", "number"):
        if spec.minimum is not None and value < spec.minimum:
            raise _violation("parameter_out_of_range", pointer, minimum=spec.minimum)
        if spec.maximum is not None and value > spec.maximum:
            raise _violation("parameter_out_of_range", pointer, maximum=spec.maximum)
    if spec.type == "string" and spec.max_length is not None and len(value) > spec.max_length:
        raise _violation("parameter_out_of_range", pointer, max_length=spec.max_length)


def validate_input(policy: ModelPolicy, document: Any) -> dict[str, Any]:
    """Checks a parsed request body against the policy and returns its `input` object.

    Raises ProblemError with the first violation; the order (shape, prompt, unknown names,
    then each parameter in name order) is fixed so the SDK reports the same code.
    """
    if not isinstance(document, dict) or set(document) != {"input"}:
        raise _violation("input_invalid", "", expected='{"input": {...}}')
    payload = document["input"]
    if not isinstance(payload, dict):
        raise _violation("input_invalid", "/input", expected="object")

    prompt = payload.get(policy.prompt_field)
    prompt_pointer = f"/input/{policy.prompt_field}"
    if prompt is None:
        if policy.prompt_required:
            raise _violation("parameter_missing", prompt_pointer)
    elif not isinstance(prompt, str):
        raise _violation("parameter_type", prompt_pointer, expected="string")
    elif len(prompt) > policy.max_prompt_chars:
        raise _violation("input_too_long", prompt_pointer, max_length=policy.max_prompt_chars)

    allowed = set(policy.parameters) | {policy.prompt_field}
    for name in sorted(set(payload) - allowed):
        raise _violation("parameter_not_allowed", f"/input/{name}")
    for name, spec in sorted(policy.parameters.items()):
        if name not in payload:
            if spec.required:
                raise _violation("parameter_missing", f"/input/{name}")
            continue
        _check_parameter(name, spec, payload[name])
    return payload
