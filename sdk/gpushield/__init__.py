"""gpushield: signed, bounded, safely retried calls to model-inference APIs behind a gate.

    from gpushield import Client

    with Client() as client:  # GPUSHIELD_URL, GPUSHIELD_KEY_ID, GPUSHIELD_SECRET
        result = client.infer("echo", {"prompt": "hello"})

Everything not listed in `__all__` is private and may change without notice.
"""

from __future__ import annotations

from ._auth import SignatureAuth
from ._client import AsyncClient, Client
from ._protocol import InferenceResult, ModelInfo, Usage
from ._tokens import TokenAuth
from .errors import (
    APIError,
    AuthenticationError,
    BackendError,
    BudgetExceeded,
    Conflict,
    GateUnavailable,
    GpushieldError,
    IdempotencyInProgress,
    InputRejected,
    ModelNotFound,
    NotFound,
    PermissionDenied,
    RateLimited,
    TransportError,
)

__version__ = "0.1.0"

__all__ = [
    "APIError",
    "AsyncClient",
    "AuthenticationError",
    "BackendError",
    "BudgetExceeded",
    "Client",
    "Conflict",
    "GateUnavailable",
    "GpushieldError",
    "IdempotencyInProgress",
    "InferenceResult",
    "InputRejected",
    "ModelInfo",
    "ModelNotFound",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "SignatureAuth",
    "TokenAuth",
    "TransportError",
    "Usage",
    "__version__",
]
