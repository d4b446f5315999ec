"""SSRF: does a text contain a URL whose host is internal?

A model API that fetches URLs (RAG, image inputs, tool calls) can be pointed at the cloud
metadata service (169.254.169.254 on AWS/GCP/Azure, fd00:ec2::254) or at private services.
Host literals are checked with `ipaddress`, including the forms URL parsers accept and naive
blocklists miss: decimal (`2130706433`), hex (`0x7f000001`), octal (`0177.0.0.1`), short
(`127.1`) and IPv4-mapped IPv6 (`[::ffff:127.0.0.1]`).
"""

from __future__ import annotations

import ipaddress
import re

__all__ = ["has_internal_url", "internal_host"]

# scheme://[userinfo@]host — bounded runs, one quantifier per class: linear.
_URL = re.compile(
    r"(?:[a-z][a-z0-9+.-]{0,15}:)?//(?:[^/\s@?#]{0,128}@)?(\[[0-9a-f:.]{2,64}\]|[^/\s:?#\[\]\"'<>\\]{1,253})"
)
_INTERNAL_NAMES = frozenset({
    "localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback",
    "metadata", "metadata.google.internal", "metadata.goog", "instance-data",
    "instance-data.ec2.internal", "metadata.azure.com", "kubernetes.default",
    "kubernetes.default.svc", "0",
})
_INTERNAL_SUFFIXES = (".localhost", ".internal", ".local", ".localdomain", ".svc.cluster.local",
                      ".nip.io", ".sslip.io", ".xip.io", ".localtest.me")


def _ipv4_from_parts(host: str) -> ipaddress.IPv4Address | None:
    """inet_aton semantics: 1-4 parts, each decimal, 0x-hex or 0-octal; the last part fills
    the remaining bytes. Returns None if `host` is not such a literal."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values: list[int] = []
    for part in parts:
        try:
            if part.startswith("0x"):
                values.append(int(part[2:] or "0", 16))
            elif len(part) > 1 and part.startswith("0"):
                values.append(int(part, 8))
            else:
                values.append(int(part, 10))
        except ValueError:
            return None
    *head, last = values
    if any(value > 255 for value in head) or last >= 256 ** (5 - len(values)):
        return None
    number = 0
    for value in head:
        number = number * 256 + value
    number = number * 256 ** (5 - len(values)) + last
    return ipaddress.IPv4Address(number)


def internal_host(host: str) -> bool:
    """True for loopback, private, link-local, reserved, unspecified and metadata hosts."""
    host = host.strip().rstrip(".")
    if host in _INTERNAL_NAMES or host.endswith(_INTERNAL_SUFFIXES):
        return True
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    if host.startswith("[") and host.endswith("]"):
        try:
            address = ipaddress.IPv6Address(host[1:-1].split("%", 1)[0])
        except ValueError:
            return False
        mapped = address.ipv4_mapped
        if mapped is not None:
            address = mapped
    elif host[:1].isdigit():
        address = _ipv4_from_parts(host)
    else:
        return False
    if address is None:
        return False
    return bool(address.is_private or address.is_loopback or address.is_link_local
                or address.is_reserved or address.is_unspecified or address.is_multicast)


def has_internal_url(text: str) -> bool:
    """Any `//host` in a canonical (case-folded) text that points inside."""
    if "//" not in text:
        return False
    return any(internal_host(match.group(1)) for match in _URL.finditer(text))
