"""Settings: `CCV_*` environment variables, optionally layered over a TOML file (`CCV_CONFIG`)."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path

from croniter import croniter
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

# After each orphan-detection window, the sweep sleeps this many times as long as the
# window took: it then keeps at most a quarter of a CPU, and requests find the rest free
# (PostgreSQL paces autovacuum for the same reason). Orphan detection has no deadline.
DEFAULT_ORPHAN_PAUSE = 3.0


class ValidationMode(StrEnum):
    """How strictly field values are checked against their definitions."""

    strict = "strict"
    warn = "warn"
    disabled = "disabled"


class JobsBackend(StrEnum):
    """Who runs the background jobs: the PostgreSQL queue, or a Hatchet engine."""

    procrastinate = "procrastinate"
    hatchet = "hatchet"


class Settings(BaseSettings):
    """Everything the service reads from its environment; unset URLs mean embedded servers."""

    model_config = SettingsConfigDict(env_prefix="CCV_", extra="ignore")

    database_url: str | None = Field(
        default=None, description="PostgreSQL URL; unset starts the embedded server"
    )
    redis_url: str | None = Field(
        default=None, description="Redis/Valkey URL; unset starts the embedded server"
    )
    cache: bool = Field(default=True, description="CCV_CACHE=off disables the profile cache")
    cache_ttl_seconds: int = Field(default=1800, ge=1)
    data_dir: Path = Field(default=Path(".ccv"), description="where embedded servers keep data")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    admin_api_key: SecretStr | None = None
    validation_mode: ValidationMode = ValidationMode.warn
    db_pool_min: int = Field(default=2, ge=1)
    db_pool_max: int = Field(default=10, ge=1)
    db_pool_timeout_seconds: float = Field(
        default=1.0,
        gt=0,
        description="longest wait for a database connection; then 503 with Retry-After",
    )
    db_statement_timeout_seconds: float = Field(
        default=5.0,
        ge=0,
        description="the server aborts a statement (or ends an idle transaction) after this;"
        " 0: the server's default",
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_header_bytes: int = Field(
        default=32 * 1024,
        ge=1024,
        description="request line and headers, in bytes; more answers 431 (414 for the target)",
    )
    max_headers: int = Field(default=100, ge=1, description="headers per request; more answers 431")
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="time from connecting (or a request's first byte) to its last header; "
        "slower answers 408",
    )
    shutdown_timeout_seconds: int = Field(
        default=15,
        ge=1,
        description="on SIGTERM/SIGINT, how long requests in hand may take before they are cut",
    )
    api_key_cache_seconds: float = Field(
        default=30.0, ge=0, description="how long a resolved API key is trusted in memory"
    )
    expire_cron: str = Field(default="*/5 * * * *", description="expiry sweep schedule")
    orphan_cron: str = Field(default="*/15 * * * *", description="orphan sweep schedule")
    orphan_pause: float = Field(
        default=DEFAULT_ORPHAN_PAUSE,
        ge=0,
        description="after each orphan window, sleep this many times the window's time"
        " (3: at most a quarter of a CPU; 0: full speed)",
    )
    job_retry_attempts: int = Field(default=3, ge=1, description="attempts per job in all")
    job_retry_base_seconds: float = Field(
        default=60.0, gt=0, description="first retry delay; doubles on each retry"
    )
    worker_concurrency: int = Field(default=2, ge=1)
    job_history_hours: int = Field(
        default=168, ge=1, description="succeeded jobs older than this are pruned daily"
    )
    jobs_backend: JobsBackend = JobsBackend.procrastinate
    hatchet_host_port: str = Field(
        default="localhost:7077", description="Hatchet engine gRPC address (jobs_backend=hatchet)"
    )
    hatchet_token: SecretStr | None = Field(default=None, description="Hatchet API token")
    llm_base_url: str | None = Field(
        default=None, description="OpenAI-compatible endpoint; unset = heuristic extractor"
    )
    llm_api_key: SecretStr | None = None
    llm_model: str | None = None
    # Under the 5 s per-scenario budget, leaving room for the run's own database writes.
    llm_timeout_seconds: float = Field(default=4.5, gt=0)
    llm_output_retries: int = Field(default=2, ge=0)
    in_process_worker: bool = Field(
        default=False, description="run a job worker inside each API process (ccv serve)"
    )
    log_level: str = "INFO"
    log_json: bool = True

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment wins over the TOML file named by CCV_CONFIG, which wins over defaults."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = os.environ.get("CCV_CONFIG")
        if toml_path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(toml_path)))
        return tuple(sources)

    @field_validator("expire_cron", "orphan_cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        """A schedule that cannot be parsed is refused at start-up, not at the first tick."""
        if not croniter.is_valid(value):
            raise ValueError(f"not a cron expression: {value!r}")
        return value
