"""Every `BULKHEAD_*` setting, read from the environment (or a `.env` file) by pydantic-settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mcp_server.errors import Misconfigured

MIB = 1024 * 1024
# all-MiniLM-L6-v2, the local embedder, gives vectors of this size.
LOCAL_EMBEDDING_DIM = 384


class Settings(BaseSettings):
    """The server's configuration. Field `x` is read from `BULKHEAD_X`."""

    model_config = SettingsConfigDict(env_prefix="BULKHEAD_", env_file=".env", extra="ignore")

    database_url: SecretStr | None = None
    data_dir: Path = Field(default_factory=lambda: platformdirs.user_data_path("bulkhead"))
    default_schema: str = "public"
    tenant_key_map: SecretStr | None = None
    tenant_key_file: Path | None = None
    auth_disabled: bool = False
    api_key: SecretStr | None = None
    max_content_bytes: int = Field(default=MIB, ge=1, le=64 * MIB)
    pool_min_size: int = Field(default=1, ge=0, le=100)
    pool_max_size: int = Field(default=10, ge=1, le=500)
    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    public_url: str | None = None
    http_stateless: bool = False
    session_idle_timeout: float = Field(default=1800.0, gt=0, le=7 * 24 * 3600)
    http_header_timeout: float = Field(default=10.0, gt=0, le=600)
    http_body_timeout: float = Field(default=30.0, gt=0, le=3600)
    http_max_connections: int = Field(default=1000, ge=1, le=1_000_000)
    max_sessions_per_tenant: int = Field(default=32, ge=1, le=100_000)
    max_sessions: int = Field(default=1000, ge=1, le=100_000)
    shutdown_timeout: float = Field(default=10.0, ge=0, le=600)
    # Per-tenant limits (0: none); a key file line may override them for its tenant.
    tenant_max_memories: int = Field(default=1_000_000, ge=0)
    tenant_max_bytes: int = Field(default=1024 * MIB, ge=0)
    tenant_calls_per_second: float = Field(default=50.0, ge=0)
    tenant_call_burst: int = Field(default=100, ge=0)
    # Embeddings (semantic recall). `local` runs all-MiniLM-L6-v2 in-process, `openai` calls an
    # OpenAI-compatible /v1/embeddings endpoint, `none` keeps recall lexical-only.
    embedder: Literal["local", "openai", "none"] = "local"
    embedding_url: str | None = None
    embedding_model: str | None = None
    embedding_api_key: SecretStr | None = None
    # pgvector's HNSW index takes at most 2,000 dimensions.
    embedding_dimensions: int | None = Field(default=None, ge=1, le=2000)
    embedding_timeout: float = Field(default=30.0, gt=0, le=600)
    embedding_threads: int = Field(default=0, ge=0, le=256)

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        url = value.strip().rstrip("/")
        if not url.startswith(("http://", "https://")) or "?" in url or "#" in url:
            raise ValueError("must be an http:// or https:// URL without query or fragment")
        return url

    @property
    def auth_configured(self) -> bool:
        """True when a key map or key file is given."""
        return bool(self.tenant_key_map and self.tenant_key_map.get_secret_value().strip()) or bool(
            self.tenant_key_file
        )

    @property
    def auth_enabled(self) -> bool:
        """Auth is on when keys are configured and not explicitly disabled."""
        return self.auth_configured and not self.auth_disabled


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, turning a validation failure into one `Misconfigured` line.

    The line names the variable and what is wrong, never its value: some values are keys.
    """
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        message = first["msg"].removeprefix("Value error, ")
        raise Misconfigured(f"BULKHEAD_{field.upper()}: {message}") from None
    if settings.pool_min_size > settings.pool_max_size:
        raise Misconfigured("BULKHEAD_POOL_MIN_SIZE: must not exceed BULKHEAD_POOL_MAX_SIZE")
    _check_embedder(settings)
    return settings


def _check_embedder(settings: Settings) -> None:
    """The embedding settings that only make sense together."""
    if settings.embedder == "openai":
        for field in ("embedding_url", "embedding_model", "embedding_dimensions"):
            if not getattr(settings, field):
                raise Misconfigured(f"BULKHEAD_{field.upper()}: required when BULKHEAD_EMBEDDER is openai")
        if not (settings.embedding_url or "").startswith(("http://", "https://")):
            raise Misconfigured("BULKHEAD_EMBEDDING_URL: must start with http:// or https://")
    elif settings.embedder == "local" and settings.embedding_dimensions not in (None, LOCAL_EMBEDDING_DIM):
        raise Misconfigured(
            f"BULKHEAD_EMBEDDING_DIMENSIONS: the local embedder gives {LOCAL_EMBEDDING_DIM} dimensions; unset it"
        )
