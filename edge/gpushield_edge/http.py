"""The gate's own request/response values, independent of ASGI or the Workers API.

Header names are lower-cased once at the boundary; repeated field lines are joined with ", "
as RFC 9110 §5.3 allows, which is also what RFC 9421 §2.1 signs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gpushield_wire.errors import PROBLEM_CONTENT_TYPE, Problem


@dataclass(frozen=True, slots=True)
class GateRequest:
    method: str
    scheme: str
    authority: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    header_bytes: int = 0
    client_ip: str | None = None
    # ISO country of the client when the platform knows it (`request.cf.country` at the edge).
    client_country: str | None = None
    # The runtime stopped reading at its cap: the body is incomplete and over every limit.
    body_truncated: bool = False

    @staticmethod
    def fold_headers(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], int]:
        """Lower-cases names and joins repeats; returns the headers and their total size."""
        headers: dict[str, str] = {}
        size = 0
        for name, value in pairs:
            size += len(name) + len(value) + 4
            name = name.lower()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return headers, size


@dataclass(slots=True)
class GateResponse:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(
        cls, status: int, document: Any, headers: Iterable[tuple[str, str]] = ()
    ) -> GateResponse:
        return cls(
            status,
            json.dumps(document, separators=(",", ":")).encode(),
            [("content-type", "application/json"), *headers],
        )

    @classmethod
    def problem(cls, problem: Problem, headers: Iterable[tuple[str, str]] = ()) -> GateResponse:
        return cls(
            problem.status,
            problem.to_json(),
            [("content-type", PROBLEM_CONTENT_TYPE), *headers],
        )
