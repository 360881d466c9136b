"""Settings: `CCV_*` environment variables, optionally layered over a TOML file (`CCV_CONFIG`)."""

from __future__ import annotations

import difflib
import importlib.util
import os
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any, get_args

from croniter import croniter
from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ccvault.domain.models import ValidationMode

# After each orphan-detection window, the sweep sleeps this many times as long as the
# window took: it then keeps at most a quarter of a CPU, and requests find the rest free
# (PostgreSQL paces autovacuum for the same reason). Orphan detection has no deadline.
DEFAULT_ORPHAN_PAUSE = 3.0
# The expiry sweep is paced the same way: reads already show expired items as expired, so
# it has no deadline but its next tick (100,000 due items take seconds even paced).
DEFAULT_EXPIRE_PAUSE = 3.0


class JobsBackend(StrEnum):
    """Who runs the background jobs: the PostgreSQL queue, or a Hatchet engine."""

    procrastinate = "procrastinate"
    hatchet = "hatchet"


class LogFormat(StrEnum):
    """How log lines look: `auto` is human text on a terminal and JSON anywhere else."""

    auto = "auto"
    json = "json"
    console = "console"


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(ValueError):
    """Settings the service cannot start with, one line per problem (for `ccv` to print)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class Settings(BaseSettings):
    """Everything the service reads from its environment; unset URLs mean embedded servers."""

    # "forbid" refuses unknown keys in the CCV_CONFIG file (a typo there would otherwise
    # be ignored). Environment variables are looked up by field name only, so an unknown
    # CCV_* variable is still ignored: other tools of a deployment may share the prefix.
    model_config = SettingsConfigDict(env_prefix="CCV_", extra="forbid")

    database_url: str | None = Field(
        default=None, description="PostgreSQL URL; unset starts the embedded server"
    )
    redis_url: str | None = Field(
        default=None, description="Redis/Valkey URL; unset starts the embedded server"
    )
    redis_cluster: bool = Field(
        default=False,
        description="on: CCV_REDIS_URL names a node of a Redis Cluster (so does a URL "
        "listing several host:port pairs)",
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
    mcp_schema_check_seconds: float = Field(
        default=5.0,
        gt=0,
        description="how often an MCP session looks whether its agent's definitions changed"
        " (and sends tools/list_changed)",
    )
    console: bool = Field(default=True, description="CCV_CONSOLE=off removes /console")
    session_secret: SecretStr | None = Field(
        default=None,
        description="signs and encrypts console session cookies; unset: random per start "
        "(sessions end on restart and are not shared between --workers processes)",
    )
    expire_cron: str = Field(default="*/5 * * * *", description="expiry sweep schedule")
    orphan_cron: str = Field(default="*/15 * * * *", description="orphan sweep schedule")
    retention_cron: str = Field(
        default="23 3 * * *", description="history retention sweep schedule (daily)"
    )
    expire_pause: float = Field(
        default=DEFAULT_EXPIRE_PAUSE,
        ge=0,
        description="after each expiry window, sleep this many times the window's time"
        " (3: at most a quarter of a CPU; 0: full speed)",
    )
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
    event_retention_days: int = Field(
        default=7, ge=1, description="change-feed events older than this are pruned hourly"
    )
    webhook_attempts: int = Field(
        default=8, ge=1, description="delivery attempts per webhook event (exponential backoff)"
    )
    webhook_backoff_seconds: float = Field(
        default=2.0, gt=0, description="wait before a webhook's first retry; doubles each time"
    )
    webhook_timeout_seconds: float = Field(
        default=5.0, gt=0, description="a webhook endpoint's time to answer one delivery"
    )
    webhook_allow_private: bool = Field(
        default=False, description="accept webhook URLs on loopback and private addresses"
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
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL")
    log_format: LogFormat = Field(
        default=LogFormat.auto, description="auto: text on a terminal, JSON otherwise"
    )
    access_log: bool = Field(default=True, description="one log line per HTTP request")
    http_metrics: bool = Field(
        default=True, description="ccv_http_* request counters and latency histograms"
    )
    audit_reads: bool = Field(
        default=True, description="off: reads leave no audit entries (writes always do)"
    )

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
            sources.append(_toml_source(settings_cls, Path(toml_path)))
        return tuple(sources)

    @field_validator("redis_cluster")
    @classmethod
    def _cluster_named(cls, value: bool, info: ValidationInfo) -> bool:
        """The embedded Valkey is one server: a cluster has to be named."""
        if value and not info.data.get("redis_url"):
            raise ValueError("needs CCV_REDIS_URL (a node of the cluster)")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _known_level(cls, value: Any) -> Any:
        """A misspelt level would silently log everything or nothing."""
        if isinstance(value, str) and value.upper() in LOG_LEVELS:
            return value.upper()
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")

    @field_validator("jobs_backend")
    @classmethod
    def _backend_installed(cls, value: JobsBackend) -> JobsBackend:
        """The Hatchet backend needs its extra; say so at start, not at the first job."""
        if value is JobsBackend.hatchet and not _installed("hatchet_sdk"):
            raise ValueError("hatchet needs the [hatchet] extra: install ccvault[hatchet]")
        return value

    @field_validator("expire_cron", "orphan_cron", "retention_cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        """A schedule that cannot be parsed is refused at start-up, not at the first tick."""
        if not croniter.is_valid(value):
            raise ValueError("not a cron expression")
        return value


def _installed(module: str) -> bool:
    """Whether an optional dependency can be imported (without importing it)."""
    return importlib.util.find_spec(module) is not None


def _toml_source(settings_cls: type[BaseSettings], path: Path) -> PydanticBaseSettingsSource:
    """The CCV_CONFIG file as a settings source; a file that is missing or not TOML is an
    error (silently running on defaults is how a typo in a path goes unnoticed)."""
    if not path.is_file():
        problem = "not a file" if path.exists() else "no such file"
        raise SettingsError([f"CCV_CONFIG: {problem}: {path}"])
    try:
        return TomlConfigSettingsSource(settings_cls, toml_file=path)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError([f"CCV_CONFIG: {path} is not valid TOML: {exc}"]) from None
    except OSError as exc:
        raise SettingsError([f"CCV_CONFIG: cannot read {path}: {exc.strerror}"]) from None


def load_settings() -> Settings:
    """Settings from the environment and CCV_CONFIG; every problem as one line in a
    SettingsError instead of pydantic's multi-line report."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError([describe_error(error) for error in exc.errors()]) from None


_BOUNDS = {
    "less_than_equal": ("le", "≤"),
    "less_than": ("lt", "<"),
    "greater_than_equal": ("ge", "≥"),
    "greater_than": ("gt", ">"),
}
_TYPES = {
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "bool_parsing": "must be on or off (true/false, yes/no, 1/0)",
    "string_type": "must be a string",
    "missing": "is required",
}


def describe_error(error: Any) -> str:
    """One line for one pydantic error: `CCV_PORT: must be ≤ 65535 (got 70000)`."""
    loc = error.get("loc") or ()
    field = str(loc[0]) if loc else ""
    kind = error.get("type", "")
    config = os.environ.get("CCV_CONFIG")
    if kind == "extra_forbidden":
        close = [name for name in Settings.model_fields if name.startswith(field)]
        close = close or difflib.get_close_matches(field, Settings.model_fields, n=1)
        hint = f"did you mean {close[0]}?" if close else "keys are the CCV_ names, lower case"
        return f"{field} in {config}: unknown setting ({hint})"
    set_in_env = any(k.upper() == f"CCV_{field.upper()}" for k in os.environ)
    from_file = bool(config) and not set_in_env
    name = f"{field} in {config}" if from_file else f"CCV_{field.upper()}"
    ctx = error.get("ctx") or {}
    if kind in _BOUNDS:
        key, sign = _BOUNDS[kind]
        bound = ctx.get(key)
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)  # ≥ 0, not ≥ 0.0
        what = f"must be {sign} {bound}"
    elif kind in ("enum", "literal_error"):
        what = f"must be one of {ctx.get('expected')}"
    elif kind in _TYPES:
        what = _TYPES[kind]
    else:
        what = str(error.get("msg", "")).removeprefix("Value error, ")
    got = "***" if field in _secret_fields() else _short(error.get("input"))
    return f"{name}: {what} (got {got})"


def _secret_fields() -> set[str]:
    """Settings whose values never appear in a message."""
    return {
        name
        for name, info in Settings.model_fields.items()
        if info.annotation is SecretStr or SecretStr in get_args(info.annotation)
    }


def _short(value: Any) -> str:
    """An input as the user wrote it, cut short so one line stays one line."""
    text = value if isinstance(value, str) else repr(value)
    text = text.replace("\n", "\\n")
    return text if len(text) <= 60 else text[:57] + "..."
