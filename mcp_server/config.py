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
# The MCP SDK's AES-256-GCM sealing wants at least this much secret material per key.
MIN_STATE_KEY_BYTES = 32


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
    pool_max_queries: int = Field(default=10_000, ge=100, le=10_000_000)
    # `transaction`: the database URL points at a transaction-mode pooler such as PgBouncer, so
    # asyncpg's prepared-statement cache is turned off (see `db.pool`).
    database_pooler: Literal["none", "transaction"] = "none"
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
    # /metrics: the bearer key that opens it when auth is on (tenant keys never do), and whether
    # tool-call series carry a `tenant` label (one series per tenant: mind the cardinality).
    metrics_key: SecretStr | None = None
    metrics_tenant_label: bool = False
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
    # Threads of each local model run: one is the fastest for sentence-length text (see .env.example).
    embedding_threads: int = Field(default=1, ge=0, le=256)
    # Reflect's model. Setting `llm_url` alone selects an OpenAI-compatible chat-completions
    # endpoint; `llm_provider=anthropic` selects the Messages API. With neither, reflect asks the
    # client's model (MCP sampling) when `reflect_sampling` allows it, else answers extractively.
    llm_provider: Literal["openai", "anthropic"] | None = None
    llm_url: str | None = None
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None
    llm_timeout: float = Field(default=30.0, gt=0, le=600)
    llm_max_tokens: int = Field(default=1024, ge=1, le=100_000)
    reflect_sampling: Literal["auto", "off"] = "auto"
    # Secrets (comma-separated, the first seals) that seal the state a 2026-07-28 client carries
    # between the rounds of one call; every replica behind a load balancer needs the same ones.
    request_state_keys: SecretStr | None = None

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        url = value.get_secret_value().strip()
        scheme = url.split("://", 1)[0] if "://" in url else ""
        if scheme not in ("postgresql", "postgres"):
            shown = f"{scheme}://" if scheme.isalnum() else "no scheme"
            raise ValueError(
                f"must be a postgresql:// URL (this one has {shown}); unset it to use the embedded PostgreSQL"
            )
        return SecretStr(url)

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
    def llm_kind(self) -> Literal["openai", "anthropic"] | None:
        """The kind of model endpoint configured for reflect, if any."""
        if self.llm_provider is not None:
            return self.llm_provider
        return "openai" if self.llm_url else None

    @property
    def state_keys(self) -> list[str]:
        """The request-state sealing keys, first the one that seals; empty for a per-process key."""
        raw = self.request_state_keys.get_secret_value() if self.request_state_keys else ""
        return [key.strip() for key in raw.split(",") if key.strip()]

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
    _check_llm(settings)
    if any(len(key.encode()) < MIN_STATE_KEY_BYTES for key in settings.state_keys):
        raise Misconfigured(
            f"BULKHEAD_REQUEST_STATE_KEYS: each key must be at least {MIN_STATE_KEY_BYTES} characters of secret "
            "randomness, such as the output of `python -c 'import secrets; print(secrets.token_hex(32))'`"
        )
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


def _check_llm(settings: Settings) -> None:
    """The model endpoint settings that only make sense together."""
    kind = settings.llm_kind
    if kind is None:
        return
    if kind == "openai" and not settings.llm_url:
        raise Misconfigured("BULKHEAD_LLM_URL: required when BULKHEAD_LLM_PROVIDER is openai")
    if settings.llm_url and not settings.llm_url.startswith(("http://", "https://")):
        raise Misconfigured("BULKHEAD_LLM_URL: must start with http:// or https://")
    if not settings.llm_model:
        raise Misconfigured("BULKHEAD_LLM_MODEL: required when a model endpoint is configured")
