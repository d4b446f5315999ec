"""Input models built from the policy the gate publishes, so bad input never leaves the client.

The gate is the authority (`gpushield_wire.policy.validate_input`); this module mirrors it with
pydantic so callers get a typed model (and a JSON Schema) per policy, and so a refusal costs no
network round trip, no nonce and no rate-limit token. Mirroring means more than "also strict":

- the same code for the same input: pydantic's error types are mapped onto catalog codes;
- the same *first* code: pydantic reports every error at once, the gate stops at the first one
  in a fixed order (shape, prompt, unknown names sorted, parameters by name); `_first` ranks
  pydantic's errors in that order;
- the same checks in the same order within a parameter: type, then choices, then minimum,
  then maximum / max_length. Choices are therefore an after-validator (a `Literal` would
  answer `literal_error` for a wrongly typed value where the gate says `parameter_type`).

`encode_body` goes one step further and reproduces the gate's parse stage too (body size, JSON
depth and value count, no NaN), on the bytes that will actually be sent: serialised once.

Field names are internal (`f0`, `f1`, ...) with the wire names as aliases, so a parameter may be
called anything JSON allows — `model_config`, `max-tokens`, `_seed` — without clashing with
pydantic's own attributes.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    create_model,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from gpushield_wire.errors import ProblemError
from gpushield_wire.jsonbody import check_shape
from gpushield_wire.policy import ModelPolicy, ParameterSpec

from .errors import InputRejected, local_rejection

__all__ = ["InputValidator", "compile_policy", "encode_body", "validate_input_locally"]

_BASE_TYPES: dict[str, Any] = {
    "string": StrictStr,
    "integer": StrictInt,
    "number": StrictFloat,  # strict float still takes ints, as JSON's "number" does
    "boolean": StrictBool,
}
_TYPE_ERRORS = frozenset(
    {"string_type", "int_type", "float_type", "bool_type", "finite_number", "model_type"}
)
_RANGE_ERRORS = {
    "greater_than_equal": "minimum",
    "less_than_equal": "maximum",
    "literal_error": "choices",
    "string_too_long": "max_length",
    "too_long": "max_length",  # max_length applied after a python validator
}


def _choices_validator(choices: tuple[Any, ...]) -> Callable[[Any], Any]:
    # `in` on the tuple, exactly as the gate tests it (so 1 == 1.0 matches alike on both sides).
    def check(value: Any) -> Any:
        if value not in choices:
            raise PydanticCustomError("literal_error", "Input should be one of the choices")
        return value

    return check


def _parameter_annotation(spec: ParameterSpec) -> Any:
    constraints: dict[str, Any] = {}
    if spec.type in ("integer", "number"):
        minimum, maximum = spec.minimum, spec.maximum
        if spec.type == "integer":
            # pydantic's int bounds must be ints; for an int v, v >= 1.5 iff v >= ceil(1.5).
            minimum = math.ceil(minimum) if minimum is not None else None
            maximum = math.floor(maximum) if maximum is not None else None
        if minimum is not None:
            constraints["ge"] = minimum
        if maximum is not None:
            constraints["le"] = maximum
    elif spec.type == "string" and spec.max_length is not None:
        constraints["max_length"] = spec.max_length
    base = _BASE_TYPES[spec.type]
    contradictory = (
        "ge" in constraints and "le" in constraints and constraints["ge"] > constraints["le"]
    )
    if spec.choices is None and not contradictory:
        return Annotated[base, Field(**constraints)] if constraints else base
    # Metadata after a python validator is applied after it, one check at a time, in order:
    # type → choices → minimum → maximum, the gate's order. (pydantic-core's merged int/float
    # check tests `le` before `ge`, which only matters when a policy has minimum > maximum.)
    check = _choices_validator(spec.choices) if spec.choices is not None else _same
    if spec.choices is not None:
        constraints["json_schema_extra"] = {"enum": list(spec.choices)}
    return Annotated[base, AfterValidator(check), Field(**constraints)]


def _same(value: Any) -> Any:
    return value


class InputValidator:
    """A policy compiled once: the pydantic model plus what is needed to map its errors."""

    __slots__ = ("_names", "_prompt", "model", "policy")

    def __init__(self, policy: ModelPolicy) -> None:
        self.policy = policy
        self._prompt = policy.prompt_field
        fields: dict[str, Any] = {}
        prompt_type: Any = Annotated[StrictStr, Field(max_length=policy.max_prompt_chars)]
        if policy.prompt_required:
            fields["f0"] = (prompt_type, Field(alias=policy.prompt_field))
        else:
            # An explicit JSON null counts as absent at the gate.
            fields["f0"] = (prompt_type | None, Field(default=None, alias=policy.prompt_field))
        for index, (name, spec) in enumerate(sorted(policy.parameters.items()), start=1):
            annotation = _parameter_annotation(spec)
            if spec.required:
                fields[f"f{index}"] = (annotation, Field(alias=name))
            else:
                # The default is never validated; an explicit null is a type error, as at the gate.
                fields[f"f{index}"] = (annotation, Field(default=None, alias=name))
        self._names = dict(policy.parameters)
        self.model: type[BaseModel] = create_model(
            "ModelInput",
            __config__=ConfigDict(
                extra="forbid",
                allow_inf_nan=False,
                strict=True,
                validate_by_alias=True,
                validate_by_name=False,
                serialize_by_alias=True,
            ),
            **fields,
        )

    def validate(self, payload: Any) -> dict[str, Any]:
        """Returns the input as given (a plain dict), or raises the gate's first violation."""
        if not isinstance(payload, Mapping):
            raise local_rejection(
                "input_invalid",
                [{"pointer": "/input", "code": "input_invalid", "expected": "object"}],
            )
        document = payload if type(payload) is dict else dict(payload)
        if not all(type(key) is str for key in document):
            # JSON would stringify some keys and choke on others: refuse rather than guess.
            raise local_rejection(
                "input_invalid",
                [{"pointer": "/input", "code": "input_invalid", "expected": "object"}],
            )
        try:
            self.model.__pydantic_validator__.validate_python(document)
        except ValidationError as error:
            raise self._first(error.errors(include_url=False, include_input=True)) from None
        return document

    def _first(self, errors: list[ErrorDetails]) -> InputRejected:
        # The gate stops at its first check that fails; rank pydantic's errors by that order.
        ranks = [self._rank(error) for error in errors]
        _, _, code, pointer, limits = min(ranks, key=lambda rank: (rank[0], rank[1]))
        return local_rejection(code, [{"pointer": pointer, "code": code, **limits}])

    def _rank(self, error: ErrorDetails) -> tuple[int, str, str, str, dict[str, Any]]:
        loc = error["loc"]
        kind = error["type"]
        if not loc:
            return (0, "", "input_invalid", "/input", {"expected": "object"})
        name = str(loc[0])
        pointer = f"/input/{name}"
        if kind == "extra_forbidden":
            return (2, name, "parameter_not_allowed", pointer, {})
        if name == self._prompt:
            if kind == "missing" or error.get("input", ...) is None:
                return (1, "", "parameter_missing", pointer, {})
            if kind in ("string_too_long", "too_long"):
                return (
                    1,
                    "",
                    "input_too_long",
                    pointer,
                    {"max_length": self.policy.max_prompt_chars},
                )
            return (1, "", "parameter_type", pointer, {"expected": "string"})
        spec = self._names[name]
        if kind == "missing":
            return (3, name, "parameter_missing", pointer, {})
        limit = _RANGE_ERRORS.get(kind)
        if limit is not None:
            value = getattr(spec, limit)
            return (
                3,
                name,
                "parameter_out_of_range",
                pointer,
                {limit: list(value) if limit == "choices" else value},
            )
        return (3, name, "parameter_type", pointer, {"expected": spec.type})


_CACHE_LOCK = threading.Lock()
_CACHE: dict[str, InputValidator] = {}
_CACHE_MAX = 256


def compile_policy(policy: ModelPolicy, policy_hash: str | None = None) -> InputValidator:
    """The validator for a policy, built once per policy hash (building a model costs ~ms)."""
    key = policy_hash or policy.policy_hash()
    found = _CACHE.get(key)
    if found is not None and found.policy == policy:
        return found
    validator = InputValidator(policy)
    with _CACHE_LOCK:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = validator
    return validator


def validate_input_locally(policy: ModelPolicy, input: Mapping[str, Any]) -> dict[str, Any]:
    """Checks `input` as the gate's `validate_input` checks `{"input": input}`.

    Returns the input as a plain dict; raises `InputRejected` with the gate's code and
    violation for the first problem it finds.
    """
    return compile_policy(policy).validate(input)


def _check_shape(document: Any, *, max_depth: int, max_values: int) -> None:
    """The gate's own depth/value-count walk, reported as a local rejection."""
    try:
        check_shape(document, max_depth=max_depth, max_values=max_values)
    except ProblemError as error:
        limits: dict[str, Any] = {
            name: error.problem.extra[name]
            for name in ("max_depth", "max_values")
            if name in error.problem.extra
        }
        raise local_rejection(
            error.code, [{"pointer": "", "code": error.code, **limits}]
        ) from None


_SCALARS = frozenset({str, int, float, bool, type(None)})
_dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


def encode_body(validator: InputValidator, input: Mapping[str, Any]) -> bytes:
    """The request body `{"input": ...}` as it will be sent, checked in the gate's order.

    Parse stage first (size cap, then depth and value count), then the input policy — so a
    100 KB prompt is `body_too_large` here exactly as it would be at the gate.
    """
    policy = validator.policy
    if not isinstance(input, Mapping):
        validator.validate(input)  # raises input_invalid
    payload = input if type(input) is dict else dict(input)
    try:
        body = _dumps({"input": payload}).encode()
    except (TypeError, ValueError):
        # NaN, Infinity or a non-JSON value: let the policy name the parameter if it can;
        # otherwise (e.g. inside an unknown name's value... which the policy also names) the
        # body could never be sent as JSON at all.
        validator.validate(payload)
        raise local_rejection("json_invalid", [{"pointer": "", "code": "json_invalid"}]) from None
    if len(body) > policy.max_body_bytes:
        raise local_rejection(
            "body_too_large",
            [{"pointer": "", "code": "body_too_large", "max_bytes": policy.max_body_bytes}],
        )
    flat = all(type(value) in _SCALARS for value in payload.values())
    if not flat or len(payload) + 2 > policy.max_json_values or policy.max_json_depth < 2:
        # The usual input is one flat object (two containers plus its scalars, depth 2):
        # walk only when it is not, or when the caps are too small to take even that.
        _check_shape(
            {"input": payload}, max_depth=policy.max_json_depth, max_values=policy.max_json_values
        )
    validator.validate(payload)
    return body
