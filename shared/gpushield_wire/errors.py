"""The error catalog: one stable code per way a request can be refused.

Both sides import this table. The gate turns a code into an RFC 9457 problem+json response;
the SDK turns the code it receives back into a typed exception. Codes are part of the wire
contract: never rename one, only add. Titles and details never echo the request (no prompt,
no signature, no token), because problem documents end up in client logs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://gpushield.dev/problems/"


@dataclass(frozen=True, slots=True)
class ErrorKind:
    """One catalog entry: the stable `code`, its HTTP status and a fixed human title."""

    code: str
    status: int
    title: str
    retryable: bool = False


def _kinds(*kinds: ErrorKind) -> dict[str, ErrorKind]:
    return {kind.code: kind for kind in kinds}


CATALOG: dict[str, ErrorKind] = _kinds(
    # -- request shape (parse & size caps) --------------------------------------------------
    ErrorKind("not_found", 404, "No such route"),
    ErrorKind("method_not_allowed", 405, "Method not allowed on this route"),
    ErrorKind("headers_too_large", 431, "Request header fields too large"),
    ErrorKind("body_too_large", 413, "Request body exceeds the size cap"),
    ErrorKind("unsupported_media_type", 415, "Request body must be application/json"),
    ErrorKind("body_not_utf8", 400, "Request body is not valid UTF-8"),
    ErrorKind("json_invalid", 400, "Request body is not valid JSON"),
    ErrorKind("json_duplicate_key", 400, "Request body repeats a JSON object key"),
    ErrorKind("json_too_deep", 400, "Request body nests JSON deeper than allowed"),
    ErrorKind("json_too_large", 413, "Request body has more JSON values than allowed"),
    ErrorKind("model_unknown", 404, "No such model"),
    # -- authentication (RFC 9421 signature, RFC 9530 digest) --------------------------------
    ErrorKind("signature_missing", 401, "Request is not signed"),
    ErrorKind("signature_malformed", 401, "Signature or Signature-Input is malformed"),
    ErrorKind("signature_duplicate_label", 401, "Signature-Input repeats a label"),
    ErrorKind("signature_label_mismatch", 401, "Signature and Signature-Input labels differ"),
    ErrorKind("signature_components_missing", 401, "Signature does not cover required components"),
    ErrorKind("signature_params_missing", 401, "Signature lacks a required parameter"),
    ErrorKind("signature_tag_invalid", 401, "Signature tag is not this application's"),
    ErrorKind("signature_alg_unsupported", 401, "Signature algorithm is not allowed"),
    ErrorKind("signature_expired", 401, "Signature has expired"),
    ErrorKind("signature_not_yet_valid", 401, "Signature was created in the future"),
    ErrorKind("signature_window_too_long", 401, "Signature validity window is too long"),
    ErrorKind("signature_invalid", 401, "Signature does not verify"),
    ErrorKind("signature_replayed", 401, "Signature nonce was already used"),
    ErrorKind("digest_missing", 401, "Content-Digest is required for a request with a body"),
    ErrorKind("digest_malformed", 401, "Content-Digest is malformed"),
    ErrorKind("digest_alg_unsupported", 401, "Content-Digest uses no supported algorithm"),
    ErrorKind("digest_mismatch", 401, "Content-Digest does not match the body"),
    ErrorKind("key_unknown", 401, "Unknown key id"),
    ErrorKind("key_revoked", 401, "Key has been revoked"),
    ErrorKind("key_expired", 401, "Key has expired"),
    ErrorKind("key_quarantined", 403, "Key is quarantined; an administrator must restore it"),
    # -- bearer tokens (RFC 9068 JWT access tokens, RFC 8725 checks) ------------------------
    ErrorKind("token_malformed", 401, "Bearer token is not a well-formed compact JWS"),
    ErrorKind("token_too_large", 401, "Bearer token exceeds the size cap"),
    ErrorKind("token_alg_unsupported", 401, "Bearer token algorithm is not allowed"),
    ErrorKind("token_header_forbidden", 401, "Bearer token header has a forbidden parameter"),
    ErrorKind("token_type_invalid", 401, "Bearer token typ is not accepted"),
    ErrorKind("token_kid_unknown", 401, "Bearer token key id is not in a trusted key set"),
    ErrorKind("token_signature_invalid", 401, "Bearer token signature does not verify"),
    ErrorKind("token_claims_invalid", 401, "Bearer token claims are malformed or missing"),
    ErrorKind("token_expired", 401, "Bearer token has expired"),
    ErrorKind("token_not_yet_valid", 401, "Bearer token is not valid yet"),
    ErrorKind("token_issued_in_future", 401, "Bearer token was issued in the future"),
    ErrorKind("token_lifetime_too_long", 401, "Bearer token lifetime exceeds the maximum"),
    ErrorKind("token_audience_invalid", 401, "Bearer token is not meant for this gate"),
    ErrorKind("token_issuer_unknown", 401, "Bearer token issuer is not trusted"),
    ErrorKind("token_revoked", 401, "Bearer token's key changed since it was issued"),
    ErrorKind("token_pop_required", 401, "Bearer token is bound to a key: sign the request"),
    ErrorKind("token_pop_mismatch", 401, "Request signature is not by the token's bound key"),
    ErrorKind("token_auth_ambiguous", 401, "Request carries more than one credential"),
    ErrorKind("issuer_keys_unavailable", 503, "Identity provider keys are unavailable",
              retryable=True),
    # -- authorization ------------------------------------------------------------------------
    ErrorKind("model_not_in_scope", 403, "Key is not allowed to call this model"),
    # -- input policy -------------------------------------------------------------------------
    ErrorKind("input_invalid", 422, "Request body does not match the model's input schema"),
    ErrorKind("input_too_long", 422, "Prompt is longer than the model allows"),
    ErrorKind("parameter_not_allowed", 422, "Input contains a parameter the model does not take"),
    ErrorKind("parameter_missing", 422, "Input lacks a required parameter"),
    ErrorKind("parameter_type", 422, "Input parameter has the wrong type"),
    ErrorKind("parameter_out_of_range", 422, "Input parameter is out of range"),
    # -- inspection (WAF rules) -----------------------------------------------------------------
    ErrorKind("request_blocked", 403, "Request matched the gate's injection rules"),
    # -- admission ----------------------------------------------------------------------------
    ErrorKind("rate_limited", 429, "Request rate limit exceeded", retryable=True),
    ErrorKind("concurrency_limited", 429, "Too many requests in flight", retryable=True),
    ErrorKind("budget_exceeded", 402, "Budget exhausted for this period"),
    ErrorKind("idempotency_key_invalid", 400, "Idempotency-Key is malformed"),
    ErrorKind("idempotency_in_progress", 409, "A request with this Idempotency-Key is running"),
    ErrorKind("idempotency_key_reused", 422, "Idempotency-Key was used for a different request"),
    # -- upstream / gate faults ---------------------------------------------------------------
    ErrorKind("backend_failed", 502, "The model backend failed", retryable=False),
    ErrorKind("backend_unavailable", 503, "The model backend is unavailable", retryable=True),
    ErrorKind("backend_timeout", 504, "The model backend did not finish in time", retryable=True),
    ErrorKind("guard_unavailable", 503, "Key state is unavailable; refusing", retryable=True),
    ErrorKind("internal_error", 500, "Internal error"),
    ErrorKind("gate_misconfigured", 500, "The gate's configuration is invalid"),
    # -- administration -------------------------------------------------------------------------
    ErrorKind("admin_disabled", 403, "The admin API is not enabled on this gate"),
    ErrorKind("admin_request_invalid", 400, "Admin request is invalid"),
    ErrorKind("key_not_found", 404, "No such key"),
    # -- OAuth 2.0 token endpoint (RFC 6749 §5.2 error codes, answered as OAuth JSON) ---------
    ErrorKind("oauth_invalid_request", 400, "Token request is malformed"),
    ErrorKind("oauth_invalid_client", 401, "Client authentication failed"),
    ErrorKind("oauth_invalid_grant", 400, "The key cannot be granted a token"),
    ErrorKind("oauth_invalid_scope", 400, "Requested scope exceeds the key's models"),
    ErrorKind("oauth_unsupported_grant_type", 400, "Only client_credentials is supported"),
    ErrorKind("tokens_disabled", 404, "This gate does not issue tokens"),
)


@dataclass(frozen=True, slots=True)
class Problem:
    """An RFC 9457 problem document with gpushield's `code` extension member.

    `extra` carries safe, structured extensions (e.g. `retry_after`, `violations` with JSON
    pointers and limits) — never request content.
    """

    code: str
    detail: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    instance: str | None = None

    @property
    def kind(self) -> ErrorKind:
        return CATALOG.get(self.code) or CATALOG["internal_error"]

    @property
    def status(self) -> int:
        return self.kind.status

    def to_dict(self) -> dict[str, Any]:
        kind = self.kind
        document: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + kind.code,
            "title": kind.title,
            "status": kind.status,
            "code": kind.code,
        }
        if self.detail:
            document["detail"] = self.detail
        if self.instance:
            document["instance"] = self.instance
        for name, value in self.extra.items():
            document.setdefault(name, value)
        return document

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()


class ProblemError(Exception):
    """Raised inside either side's code to refuse with a catalog code."""

    def __init__(self, code: str, detail: str | None = None, **extra: Any) -> None:
        if code not in CATALOG:
            raise KeyError(f"unknown error code {code!r}")
        super().__init__(code if detail is None else f"{code}: {detail}")
        self.problem = Problem(code=code, detail=detail, extra=extra)

    @property
    def code(self) -> str:
        return self.problem.code

    @property
    def status(self) -> int:
        return self.problem.status


def parse_problem(document: Any) -> Problem | None:
    """Reads a problem+json document received from the gate; None if it is not one of ours."""
    if not isinstance(document, dict):
        return None
    code = document.get("code")
    if not isinstance(code, str):
        return None
    extra = {
        name: value
        for name, value in document.items()
        if name not in {"type", "title", "status", "code", "detail", "instance"}
    }
    detail = document.get("detail")
    instance = document.get("instance")
    return Problem(
        code=code,
        detail=detail if isinstance(detail, str) else None,
        extra=extra,
        instance=instance if isinstance(instance, str) else None,
    )
