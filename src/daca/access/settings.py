"""Access settings shared by both services (``DACA_MODE`` and the ``AUTH_*`` variables)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Mode = Literal["local", "production"]


class AccessSettings(BaseSettings):
    """How requests are authenticated.

    ``local`` (the default): no credentials, but only loopback clients, loopback ``Host``
    headers and same-site browser requests are served. ``production``: the chat service needs a
    bearer token, verified as a JWT (``AUTH_JWT_SECRET`` for HS256, or ``AUTH_JWKS_URL`` for
    keys published by an identity provider; ``AUTH_ISSUER``/``AUTH_AUDIENCE`` are checked when
    set) or as an API key (``AUTH_API_KEYS``: ``user_id:sha256-hex-of-the-key`` entries, comma
    separated); the memory service needs ``APP_API_TOKEN`` (only its sidecar may call it).
    """

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    mode: Mode = Field(default="local", alias="DACA_MODE")
    jwt_secret: str | None = Field(default=None, alias="AUTH_JWT_SECRET", repr=False)
    jwks_url: str | None = Field(default=None, alias="AUTH_JWKS_URL")
    issuer: str | None = Field(default=None, alias="AUTH_ISSUER")
    audience: str | None = Field(default=None, alias="AUTH_AUDIENCE")
    user_claim: str = Field(default="sub", alias="AUTH_USER_CLAIM")
    api_keys: str = Field(default="", alias="AUTH_API_KEYS", repr=False)
    #: Extra ``Host`` names served in local mode besides localhost and loopback addresses.
    allowed_hosts: str = Field(default="", alias="ALLOWED_HOSTS")

    @field_validator("mode", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _jwt_needs_one_key_source(self) -> Self:
        if self.jwt_secret and self.jwks_url:
            raise ValueError("set AUTH_JWT_SECRET or AUTH_JWKS_URL, not both")
        return self

    @property
    def production(self) -> bool:
        return self.mode == "production"

    def api_key_hashes(self) -> dict[str, str]:
        """``sha256 hex -> user_id`` from ``AUTH_API_KEYS``."""
        table: dict[str, str] = {}
        for entry in filter(None, (part.strip() for part in self.api_keys.split(","))):
            user, sep, digest = entry.partition(":")
            if not sep or len(digest) != 64:
                raise ValueError("AUTH_API_KEYS entries are user_id:<64 hex digits of sha256>")
            table[digest.lower()] = user
        return table

    def extra_hosts(self) -> frozenset[str]:
        return frozenset(h.strip().lower() for h in self.allowed_hosts.split(",") if h.strip())
