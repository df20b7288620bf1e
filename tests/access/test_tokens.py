"""Production mode's bearer tokens: JWTs by shared secret or by JWKS, and hashed API keys."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from daca.access.settings import AccessSettings
from daca.access.tokens import InvalidTokenError, TokenVerifier

SECRET = "a-shared-secret-of-at-least-32-bytes!"


def settings(**values: Any) -> AccessSettings:
    return AccessSettings.model_validate({"DACA_MODE": "production", **values})


def token(
    claims: dict[str, Any], key: Any = SECRET, algorithm: str = "HS256", **headers: Any
) -> str:
    base = {"sub": "bob", "exp": int(time.time()) + 300}
    return jwt.encode({**base, **claims}, key, algorithm=algorithm, headers=headers or None)


async def test_a_jwt_signed_with_the_secret_names_its_user() -> None:
    verifier = TokenVerifier(settings(AUTH_JWT_SECRET=SECRET))
    assert await verifier.user_of(token({})) == "bob"
    custom = TokenVerifier(settings(AUTH_JWT_SECRET=SECRET, AUTH_USER_CLAIM="uid"))
    assert await custom.user_of(token({"uid": "ana"})) == "ana"


@pytest.mark.parametrize(
    ("claims", "key", "reason"),
    [
        ({"exp": int(time.time()) - 10}, SECRET, "Signature has expired"),
        ({}, "another-secret-of-at-least-32-bytes!!", "Signature verification failed"),
        ({"iss": "evil"}, SECRET, "Invalid issuer"),
        ({"aud": "other"}, SECRET, "Audience doesn't match"),
        ({"sub": ""}, SECRET, "no 'sub' claim"),
    ],
)
async def test_a_bad_jwt_is_refused_saying_why(
    claims: dict[str, Any], key: str, reason: str
) -> None:
    verifier = TokenVerifier(
        settings(AUTH_JWT_SECRET=SECRET, AUTH_ISSUER="https://id.example", AUTH_AUDIENCE="daca")
    )
    good = {"iss": "https://id.example", "aud": "daca"}
    with pytest.raises(InvalidTokenError, match=reason):
        await verifier.user_of(token({**good, **claims}, key))
    assert await verifier.user_of(token(good)) == "bob"


async def test_a_jwt_without_exp_or_with_alg_none_is_refused() -> None:
    verifier = TokenVerifier(settings(AUTH_JWT_SECRET=SECRET))
    with pytest.raises(InvalidTokenError, match="exp"):
        await verifier.user_of(jwt.encode({"sub": "bob"}, SECRET, algorithm="HS256"))
    unsigned = jwt.encode({"sub": "bob", "exp": int(time.time()) + 60}, None, algorithm="none")
    with pytest.raises(InvalidTokenError):
        await verifier.user_of(unsigned)


async def test_api_keys_are_checked_by_their_hash() -> None:
    digest = hashlib.sha256(b"key-of-bob").hexdigest()
    verifier = TokenVerifier(settings(AUTH_API_KEYS=f"bob:{digest}"))
    assert await verifier.user_of("key-of-bob") == "bob"
    with pytest.raises(InvalidTokenError, match="unknown API key"):
        await verifier.user_of("key-of-eve")


def test_production_without_any_credential_source_is_a_start_up_error() -> None:
    with pytest.raises(ValueError, match="production mode needs"):
        TokenVerifier(settings())
    with pytest.raises(ValueError, match="user_id:<64 hex digits"):
        TokenVerifier(settings(AUTH_API_KEYS="bob:short"))


class _Jwks(http.server.BaseHTTPRequestHandler):
    document: bytes = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.document)))
        self.end_headers()
        self.wfile.write(self.document)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def identity_provider() -> Iterator[tuple[str, rsa.RSAPrivateKey]]:
    """A loopback JWKS endpoint publishing one RSA signing key (kid ``k1``)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    _Jwks.document = json.dumps({"keys": [{**public, "kid": "k1", "use": "sig"}]}).encode()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Jwks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json", key
    server.shutdown()
    server.server_close()


async def test_a_jwt_is_verified_with_the_identity_providers_keys(
    identity_provider: tuple[str, rsa.RSAPrivateKey],
) -> None:
    url, key = identity_provider
    verifier = TokenVerifier(settings(AUTH_JWKS_URL=url))
    assert await verifier.user_of(token({}, key, "RS256", kid="k1")) == "bob"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(InvalidTokenError):
        await verifier.user_of(token({}, other, "RS256", kid="k1"))
    with pytest.raises(InvalidTokenError):  # a shared-secret token is not accepted here
        await verifier.user_of(token({}))
