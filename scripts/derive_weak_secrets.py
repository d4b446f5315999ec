"""Derives edge/gpushield_edge/tokens/weak_hmac_secrets.txt from the wallarm/jwt-secrets corpus.

    python scripts/derive_weak_secrets.py [path/to/jwt.secrets.list]

The gate refuses HS256 shared secrets shorter than 32 bytes outright, so only the corpus
entries of 32 bytes or more need remembering: for each, the first 16 hex digits (64 bits) of
its SHA-256. That is ~1,900 lines (~32 KB) instead of the 1.2 MB list, ships inside the
package (the corpus is not there for users), and does not republish the secrets themselves.
A 64-bit prefix makes a false match with a real random secret a 2^-53 event per entry.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared/corpora/jwt/wallarm-jwt-secrets/jwt.secrets.list"
OUT = ROOT / "edge/gpushield_edge/tokens/weak_hmac_secrets.txt"
MIN_BYTES = 32
PREFIX_HEX = 16


def derive(source: Path) -> list[str]:
    prefixes = set()
    for line in source.read_bytes().split(b"\n"):
        secret = line.rstrip(b"\r")
        if len(secret) >= MIN_BYTES:
            prefixes.add(hashlib.sha256(secret).hexdigest()[:PREFIX_HEX])
    return sorted(prefixes)


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    prefixes = derive(source)
    header = (f"# SHA-256 prefixes ({PREFIX_HEX} hex) of the {len(prefixes)} secrets of >= "
              f"{MIN_BYTES} bytes in wallarm/jwt-secrets (MIT); scripts/derive_weak_secrets.py\n")
    OUT.write_text(header + "\n".join(prefixes) + "\n", encoding="ascii")
    print(f"wrote {len(prefixes)} prefixes to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
