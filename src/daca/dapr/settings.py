"""Sidecar connection settings, read from Dapr's own environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DaprSettings(BaseSettings):
    """Where the sidecar is and which tokens to use.

    ``DAPR_HTTP_ENDPOINT`` wins over ``DAPR_HTTP_PORT`` when set; ``DAPR_API_TOKEN`` is sent to
    the sidecar, ``APP_API_TOKEN`` is what the sidecar sends to the app.
    """

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    dapr_http_endpoint: str | None = Field(default=None, validation_alias="DAPR_HTTP_ENDPOINT")
    dapr_http_port: int = Field(default=3500, ge=1, le=65535, validation_alias="DAPR_HTTP_PORT")
    dapr_api_token: str | None = Field(default=None, validation_alias="DAPR_API_TOKEN")
    app_api_token: str | None = Field(default=None, validation_alias="APP_API_TOKEN")

    @property
    def base_url(self) -> str:
        """The sidecar's HTTP base URL, without a trailing slash."""
        if self.dapr_http_endpoint:
            return self.dapr_http_endpoint.rstrip("/")
        return f"http://127.0.0.1:{self.dapr_http_port}"
