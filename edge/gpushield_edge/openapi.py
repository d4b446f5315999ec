"""The gate's OpenAPI 3.1 description, generated from the live configuration so each model's
input schema is the policy the gate enforces (served at `/openapi.json`)."""

from __future__ import annotations

from typing import Any

from gpushield_wire.errors import CATALOG
from gpushield_wire.policy import ModelPolicy

from .config import GateConfig


def _input_schema(policy: ModelPolicy) -> dict[str, Any]:
    properties: dict[str, Any] = {
        policy.prompt_field: {"type": "string", "maxLength": policy.max_prompt_chars}
    }
    required = [policy.prompt_field] if policy.prompt_required else []
    for name, spec in policy.parameters.items():
        schema: dict[str, Any] = {"type": spec.type}
        if spec.minimum is not None:
            schema["minimum"] = spec.minimum
        if spec.maximum is not None:
            schema["maximum"] = spec.maximum
        if spec.max_length is not None:
            schema["maxLength"] = spec.max_length
        if spec.choices is not None:
            schema["enum"] = list(spec.choices)
        properties[name] = schema
        if spec.required:
            required.append(name)
    return {
        "type": "object",
        "properties": {
            "input": {
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": False,
            }
        },
        "required": ["input"],
        "additionalProperties": False,
    }


_PROBLEM = {
    "description": "RFC 9457 problem; `code` is one of the catalog codes",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}

_SIGNED = [
    {"name": name, "in": "header", "required": required, "schema": {"type": "string"}}
    for name, required in (
        ("Signature-Input", True), ("Signature", True), ("Content-Digest", True),
        ("Idempotency-Key", False),
    )
]


def _token_paths() -> dict[str, Any]:
    """RFC 6749 §4.4 token endpoint and the RFC 7517 key set (see tokens/endpoint.py)."""
    oauth_error = {"description": "RFC 6749 §5.2 error (`error`) with the catalog `code`",
                   "content": {"application/json": {"schema": {"type": "object"}}}}
    return {
        "/oauth/token": {"post": {
            "summary": "Client credentials → RFC 9068 access token (Bearer, EdDSA, ≤ 15 min)."
                       " Authenticate with an RFC 9421 signature, HTTP Basic or form secret.",
            "requestBody": {"required": True, "content": {
                "application/x-www-form-urlencoded": {"schema": {
                    "type": "object", "required": ["grant_type"],
                    "properties": {"grant_type": {"const": "client_credentials"},
                                   "scope": {"type": "string"},
                                   "pop": {"enum": ["true", "1"]}}}}}},
            "responses": {"200": {"description": "access token"}, "400": oauth_error,
                          "401": oauth_error, "503": oauth_error},
        }},
        "/.well-known/jwks.json": {"get": {
            "summary": "The gate's token-signing keys (current and in overlap)",
            "responses": {"200": {"description": "RFC 7517 JWK set"}},
        }},
    }


def openapi_document(config: GateConfig) -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/v1/models": {"get": {
            "summary": "Models and their input policies (with a policy hash)",
            "responses": {"200": {"description": "model list"}},
        }},
    }
    statuses = sorted({str(kind.status) for kind in CATALOG.values()})
    for name, model in config.models.items():
        paths[f"/v1/models/{name}/infer"] = {"post": {
            "summary": f"Run {name} (RFC 9421-signed)",
            "parameters": _SIGNED,
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": _input_schema(model.policy)}}},
            "responses": {"200": {"description": "job result"},
                          **{status: _PROBLEM for status in statuses}},
        }}
    if config.tokens.enabled:
        paths.update(_token_paths())
    return {
        "openapi": "3.1.0",
        "info": {"title": "gpushield gate", "version": "1"},
        "paths": paths,
        "components": {"schemas": {"Problem": {
            "type": "object",
            "properties": {
                "type": {"type": "string"}, "title": {"type": "string"},
                "status": {"type": "integer"}, "detail": {"type": "string"},
                "code": {"type": "string", "enum": sorted(CATALOG)},
            },
            "required": ["type", "title", "status", "code"],
        }}},
    }
