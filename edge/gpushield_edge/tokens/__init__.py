"""Tokens: RFC 9068 JWT access tokens the gate issues, and bearer tokens it verifies.

    jws.py           strict compact-JWS parsing (RFC 7515 §7.1) with size caps
    jwk.py           trusted keys (RFC 7517), each bound to exactly one algorithm
    claims.py        RFC 7519 / RFC 9068 claim checks (exp, nbf, iat, iss, aud, typ)
    verifier.py      token → verified claims, for the gate's own and external issuers
    issuer.py        the gate's Ed25519 signing keys, their rotation, JWKS and minting
    oidc.py          external identity providers: JWKS fetched through Upstream, cached
    weak_secrets.py  refusal of publicly known HMAC secrets (wallarm/jwt-secrets)
    endpoint.py      POST /oauth/token (RFC 6749 §4.4 client credentials)

Standard library only (the gate runs under Pyodide); signatures go through the Crypto port.
"""
