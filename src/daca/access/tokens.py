"""Production mode's bearer tokens: a JWT (shared secret or JWKS) or a hashed API key.

``TokenVerifier.user_of(token)`` returns the user the token was issued to, or raises
``InvalidTokenError`` saying why (expired, wrong issuer or audience, bad signature, unknown
key). JWTs are verified with PyJWT: HS256 with ``AUTH_JWT_SECRET``, or the signing keys of
``AUTH_JWKS_URL`` (RS256/ES256, fetched and cached by ``PyJWKClient``); ``exp`` is required.
An API key is compared by its SHA-256, so the configuration holds no usable secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging

import jwt

from daca.access.settings import AccessSettings

logger = logging.getLogger(__name__)

_ASYMMETRIC = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


class InvalidTokenError(Exception):
    """The bearer token does not prove who the caller is; the message says why."""


class TokenVerifier:
    """Verifies bearer tokens as the access settings say."""

    def __init__(self, settings: AccessSettings) -> None:
        self._settings = settings
        self._keys = settings.api_key_hashes()
        self._jwks = jwt.PyJWKClient(settings.jwks_url) if settings.jwks_url else None
        if not (settings.jwt_secret or self._jwks or self._keys):
            raise ValueError(
                "production mode needs AUTH_JWT_SECRET, AUTH_JWKS_URL or AUTH_API_KEYS"
            )

    async def user_of(self, token: str) -> str:
        """The user id the token belongs to."""
        user = self._api_key_user(token)
        if user is not None:
            return user
        if not (self._settings.jwt_secret or self._jwks):
            raise InvalidTokenError("unknown API key")
        return await self._jwt_user(token)

    def _api_key_user(self, token: str) -> str | None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        for known, user in self._keys.items():
            if hmac.compare_digest(known, digest):
                return user
        return None

    async def _jwt_user(self, token: str) -> str:
        try:
            key, algorithms = await self._key_for(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self._settings.audience,
                issuer=self._settings.issuer,
                options={"require": ["exp"], "verify_aud": self._settings.audience is not None},
            )
        except (jwt.PyJWTError, ValueError) as exc:
            raise InvalidTokenError(f"invalid token: {exc}") from exc
        user = claims.get(self._settings.user_claim)
        if not isinstance(user, str) or not user:
            raise InvalidTokenError(f"the token has no {self._settings.user_claim!r} claim")
        return user

    async def _key_for(self, token: str) -> tuple[jwt.PyJWK | str, list[str]]:
        if self._jwks is not None:
            signing = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
            return signing, _ASYMMETRIC
        return self._settings.jwt_secret or "", ["HS256"]
