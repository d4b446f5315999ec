"""gpushield's request-signing profile of RFC 9421, on top of the generic layers.

RFC 9421 §1.4 leaves it to each application to say what must be signed, which parameters are
required and which algorithms are allowed; this module is that statement. The SDK calls
`sign_request`; the gate calls `parse_signature`, `check_profile` and
`request_signature_base`, then verifies the signature with the key (outside this package).

The profile:

* exactly one signature, labelled `gpushield` when there are several (§4.3 allows many; a
  verifier that picks "any that verifies" can be steered to the weakest);
* covered: `@method @authority @path @query`, plus `content-digest content-type` when there
  is a body (RFC 9530 binds the body, §7.2.8) and `idempotency-key` when one is sent (so a
  replayed body cannot be re-keyed); extra covered components are allowed;
* required parameters `created expires nonce keyid alg tag` (§2.3): `expires` and a short
  window bound replay storage; `nonce` makes replays detectable; `alg` is checked against
  the allowlist *and* the key (§7.3.6); `tag` keeps signatures made for another application
  with the same key from being accepted here (§7.2.10 "signature confusion").
* Signature-Input and Signature are Dictionaries whose repeated labels are refused, not
  resolved "last wins" (RFC 8941 §4.2.2 allows either; the lenient choice lets a proxy
  smuggle a second set of components past a verifier that reads the first).
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .algorithms import ED25519, HMAC_SHA256, CryptoPort, sign
from .errors import ProblemError
from .signature_base import HttpMessage, signature_base
from .structured_fields import (
    BareItem,
    DuplicateKeyError,
    InnerList,
    Item,
    ParseError,
    SerializeError,
    parse_dictionary,
    serialize_inner_list,
    serialize_item,
    serialize_params,
)

__all__ = [
    "DEFAULT_SKEW_S",
    "LABEL",
    "MAX_WINDOW_S",
    "TAG",
    "ParsedSignature",
    "RequestParts",
    "check_profile",
    "covered_components",
    "new_nonce",
    "parse_signature",
    "request_signature_base",
    "sign_request",
]

LABEL = "gpushield"
TAG = "gpushield"
MAX_WINDOW_S = 300
DEFAULT_SKEW_S = 30

_REQUEST_COMPONENTS = ("@method", "@authority", "@path", "@query")
_BODY_COMPONENTS = ("content-digest", "content-type")
_IDEMPOTENCY_COMPONENT = "idempotency-key"
# URI-unreserved characters: covers base64url (new_nonce) and RFC 9421's own B.2.1 example.
_NONCE = re.compile(r"[A-Za-z0-9._~-]{16,128}")


@dataclass(frozen=True)
class RequestParts:
    """The request as both sides see it. `path` and `query` are raw (percent-encoded) and
    `query` has no `?` ("" when there is none); `headers` maps lowercase names to combined
    values. `scheme` only decides which default port `@authority` drops."""

    method: str
    authority: str
    path: str
    query: str
    headers: Mapping[str, str]
    scheme: str = "https"


@dataclass(frozen=True)
class ParsedSignature:
    """One signature, structurally valid but not yet checked against the profile.

    `components` are the covered component identifiers as serialised in Signature-Input
    (e.g. `'"@method"'`, `'"@query-param";name="a"'`), so that two components differing
    only in parameters never compare equal. `items` are the same, parsed, for the base.
    `params_text` is the serialised inner list: the `@signature-params` value (§2.3).
    """

    label: str
    components: tuple[str, ...]
    created: int | None
    expires: int | None
    nonce: str | None
    keyid: str | None
    alg: str | None
    tag: str | None
    signature: bytes
    params_text: str
    items: tuple[Item, ...]


def covered_components(has_body: bool, has_idempotency_key: bool) -> tuple[str, ...]:
    components: tuple[str, ...] = _REQUEST_COMPONENTS
    if has_body:
        components += _BODY_COMPONENTS
    if has_idempotency_key:
        components += (_IDEMPOTENCY_COMPONENT,)
    return components


def new_nonce() -> str:
    """128 random bits, base64url: unique per signature, which is what replay checks need."""
    return secrets.token_urlsafe(16)


def _message(parts: RequestParts) -> HttpMessage:
    return HttpMessage(
        method=parts.method,
        scheme=parts.scheme,
        authority=parts.authority,
        path=parts.path,
        query=parts.query,
        headers=parts.headers,
    )


def sign_request(
    parts: RequestParts,
    *,
    key_id: str,
    alg: str,
    key: bytes,
    created: int,
    expires: int,
    nonce: str,
    crypto: CryptoPort | None = None,
) -> tuple[str, str]:
    """Returns the (Signature-Input, Signature) field values.

    Components follow from the headers: a body is signalled by the `content-digest` the
    caller has already added, with its `content-type`.
    """
    names = covered_components(
        _BODY_COMPONENTS[0] in parts.headers, _IDEMPOTENCY_COMPONENT in parts.headers
    )
    items = tuple(Item(name) for name in names)
    params: dict[str, BareItem] = {
        "created": created,
        "expires": expires,
        "nonce": nonce,
        "keyid": key_id,
        "alg": alg,
        "tag": TAG,
    }
    params_text = serialize_inner_list(InnerList(items, params))
    base = signature_base(_message(parts), items, params_text)
    signature = sign(alg, key, base, crypto)
    encoded = base64.b64encode(signature).decode("ascii")
    return f"{LABEL}={params_text}", f"{LABEL}=:{encoded}:"


def _absent(value: str | None) -> bool:
    return value is None or not value.strip(" \t")


def _dictionary(value: str) -> dict[str, Item | InnerList]:
    try:
        members = parse_dictionary(value, reject_duplicate_keys=True)
    except DuplicateKeyError:
        raise ProblemError("signature_duplicate_label") from None
    except ParseError:
        raise ProblemError("signature_malformed") from None
    if not members:
        raise ProblemError("signature_malformed")
    return members


def _int_param(params: Mapping[str, BareItem], name: str) -> int | None:
    value = params.get(name)
    # type(), not isinstance(): bool is an int subclass, and ?1 is not a timestamp.
    if value is None or type(value) is int:
        return value
    raise ProblemError("signature_malformed", f"{name} must be an integer")


def _str_param(params: Mapping[str, BareItem], name: str) -> str | None:
    value = params.get(name)
    # A Token (str subclass) is refused: RFC 9421 §2.3 makes these sf-strings.
    if value is None or type(value) is str:
        return value
    raise ProblemError("signature_malformed", f"{name} must be a string")


def parse_signature(signature_input: str | None, signature: str | None) -> ParsedSignature:
    if _absent(signature_input) and _absent(signature):
        raise ProblemError("signature_missing")
    if (
        signature_input is None
        or signature is None
        or _absent(signature_input)
        or _absent(signature)
    ):
        raise ProblemError("signature_malformed", "Signature and Signature-Input come together")
    inputs = _dictionary(signature_input)
    signatures = _dictionary(signature)
    if len(inputs) == 1:
        label = next(iter(inputs))
    elif LABEL in inputs:
        label = LABEL
    else:
        raise ProblemError("signature_label_mismatch")
    member = inputs[label]
    if not isinstance(member, InnerList):
        # Checked before the label match: `sig1` alone is a valid Dictionary (a Boolean
        # member) but is a malformed Signature-Input, not a mislabelled one.
        raise ProblemError("signature_malformed", "Signature-Input member is not an inner list")
    signature_member = signatures.get(label)
    if signature_member is None:
        raise ProblemError("signature_label_mismatch")
    if not isinstance(signature_member, Item) or type(signature_member.value) is not bytes:
        raise ProblemError("signature_malformed", "Signature member is not a byte sequence")
    params = member.params
    try:
        components = tuple([_identifier(item) for item in member.items])
        # §2.3: @signature-params is the (strict) serialisation of what was parsed; the
        # identifiers are already serialised, so only the parameters remain.
        params_text = "(" + " ".join(components) + ")" + serialize_params(params)
    except SerializeError:
        raise ProblemError("signature_malformed") from None
    return ParsedSignature(
        label=label,
        components=components,
        created=_int_param(params, "created"),
        expires=_int_param(params, "expires"),
        nonce=_str_param(params, "nonce"),
        keyid=_str_param(params, "keyid"),
        alg=_str_param(params, "alg"),
        tag=_str_param(params, "tag"),
        signature=signature_member.value,
        params_text=params_text,
        items=member.items,
    )


def _identifier(item: Item) -> str:
    value = item.value
    if type(value) is not str:
        raise ProblemError("signature_malformed", "component identifiers are strings")
    if not item.params and '"' not in value and "\\" not in value:
        return f'"{value}"'  # parsed, so already printable ASCII
    return serialize_item(item)


def check_profile(
    parsed: ParsedSignature,
    *,
    now: float,
    has_body: bool,
    has_idempotency_key: bool,
    max_window_s: int = MAX_WINDOW_S,
    skew_s: int = DEFAULT_SKEW_S,
    allowed_algs: Iterable[str] = (HMAC_SHA256, ED25519),
) -> None:
    """Stateless profile checks, cheapest and least informative first."""
    created, expires, nonce = parsed.created, parsed.expires, parsed.nonce
    if (
        created is None
        or expires is None
        or nonce is None
        or parsed.keyid is None
        or parsed.alg is None
        or parsed.tag is None
    ):
        raise ProblemError("signature_params_missing")
    if _NONCE.fullmatch(nonce) is None:
        raise ProblemError("signature_params_missing", "nonce must be 16-128 URL-safe characters")
    if parsed.tag != TAG:
        raise ProblemError("signature_tag_invalid")
    if parsed.alg not in allowed_algs:
        raise ProblemError("signature_alg_unsupported")
    if expires <= created or expires - created > max_window_s:
        raise ProblemError("signature_window_too_long")
    if created > now + skew_s:
        raise ProblemError("signature_not_yet_valid")
    if expires < now - skew_s:
        raise ProblemError("signature_expired")
    covered = set(parsed.components)
    for name in covered_components(has_body, has_idempotency_key):
        if f'"{name}"' not in covered:
            raise ProblemError("signature_components_missing")


def request_signature_base(parts: RequestParts, parsed: ParsedSignature) -> bytes:
    """The base to verify; raises ComponentError (a ValueError) if it cannot be built."""
    return signature_base(_message(parts), parsed.items, parsed.params_text)
