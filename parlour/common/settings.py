"""Settings for every mode, read from `PARLOUR_*` environment variables and an optional `.env` file.

Embedded defaults need nothing set. `env.example` at the repository root documents every variable.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Mode(StrEnum):
    """How the services find their infrastructure."""

    EMBEDDED = "embedded"  # one process, SQLite, in-memory bus and key-value store
    DISTRIBUTED = "distributed"  # one service per process, PostgreSQL, RabbitMQ, Redis


class LogFormat(StrEnum):
    CONSOLE = "console"
    JSON = "json"


class Settings(BaseSettings):
    """Every knob Parlour has. Field names map to `PARLOUR_<NAME>` environment variables."""

    model_config = SettingsConfigDict(env_prefix="PARLOUR_", env_file=".env", extra="ignore")

    mode: Mode = Mode.EMBEDDED
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    data_dir: Path = Path("parlour-data")

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL; embedded default is SQLite in the data folder.",
    )
    redis_url: str = "redis://127.0.0.1:6379/0"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    namespace: str = Field(
        default="parlour",
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,40}$",
        description="Prefix of every Redis key and RabbitMQ exchange and queue; isolates deployments.",
    )

    auth_url: str | None = Field(
        default=None,
        description="Base URL of the auth service (JWKS, user look-ups); unset means this very process.",
    )
    token_issuer: str = "parlour"
    token_audience: str = "parlour"
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=900)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    token_leeway_seconds: int = Field(default=10, ge=0, le=60)
    jwks_cache_seconds: int = Field(default=300, ge=1)

    password_time_cost: int = Field(default=3, ge=1)
    password_memory_kib: int = Field(default=65536, ge=8)
    password_parallelism: int = Field(default=4, ge=1)

    login_attempts_per_username_and_address: int = Field(
        default=10, ge=1, description="Login attempts on one username from one address per window (then 429)."
    )
    login_attempts_per_address: int = Field(default=50, ge=1, description="Login attempts from one address per window.")
    login_window_seconds: int = Field(default=300, ge=1)
    login_failures_before_delay: int = Field(
        default=5, ge=0, description="Failed logins of one username per window before its logins slow down."
    )
    login_delay_seconds: float = Field(
        default=0.5, ge=0, description="The first delay; it doubles with each further failure of the username."
    )
    login_delay_max_seconds: float = Field(default=8.0, ge=0, description="The longest delay of a login.")

    pass_ttl_seconds: int = Field(default=30, ge=1, le=60, description="Lifetime of a one-time WebSocket pass.")
    passes_per_minute: int = Field(default=30, ge=1, description="Passes one user may get per minute.")
    public_origins: list[str] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port]) the web client is served from, e.g. behind a proxy; "
        "unset means this process's own address (and localhost on loopback).",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description='Page origins allowed to open the WebSocket besides the public ones; ["*"] allows any.',
    )
    gateway_send_buffer_frames: int = Field(default=1024, ge=1, description="Frames a slow socket may owe.")
    gateway_send_buffer_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    gateway_ping_interval_seconds: float = Field(default=20.0, gt=0)
    gateway_ping_timeout_seconds: float = Field(default=20.0, gt=0)
    gateway_max_frame_bytes: int = Field(default=64 * 1024, ge=1024, description="Largest client frame.")
    gateway_frames_per_second: float = Field(default=20.0, gt=0, description="Per-connection client frame rate.")
    gateway_frame_burst: int = Field(default=100, ge=1)
    gateway_resume_timeout_seconds: float = Field(default=30.0, gt=0)
    gateway_drain_seconds: float = Field(default=8.0, ge=0, description="Grace for in-flight writes on SIGTERM.")
    gateway_lease_ttl_seconds: float = Field(
        default=30.0,
        ge=0.3,
        le=30.0,
        description="Lifetime of a gateway's lease in the key-value store, renewed every third of it: a killed "
        "gateway's sessions count as closed (presence) this long after its last renewal.",
    )

    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed; none by default, so a client's own headers change nothing.",
    )
    http_header_timeout_seconds: float = Field(
        default=10.0, gt=0, description="A connection that does not complete its request headers in time is closed."
    )
    # Longer than any client Parlour meets keeps an idle connection (httpx 5 s, its own service client half
    # of this): a server that closes at the same moment a client reuses the connection answers nothing.
    http_keep_alive_seconds: int = Field(default=75, ge=2, description="Idle time before keep-alive closes.")
    http_body_limit_bytes: int = Field(
        default=16 * 1024, ge=1024, description="Largest request body of auth, passes and other small routes."
    )
    http_api_body_limit_bytes: int = Field(
        default=128 * 1024, ge=1024, description="Largest request body under /api/ (messages, member lists)."
    )

    metrics_allowed_addresses: list[str] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1"],
        description="Addresses or networks (CIDR) that may read /metrics; loopback only by default.",
    )
    metrics_token: str | None = Field(
        default=None, description="A bearer token that may read /metrics from anywhere; unset means none."
    )
    metrics_sample_seconds: float = Field(
        default=5.0, gt=0, description="How often messaging samples queue depths and the outbox's lag."
    )

    notifications_delay_seconds: float = Field(
        default=2.0,
        ge=0,
        description="Grace from a member's first unread message to its notification (read at once: none).",
    )
    notifications_window_seconds: float = Field(
        default=30.0, ge=0, description="At most one notification per chat and member in this many seconds."
    )
    # Notification channels (parlour/notifications, docs/subsystems/notifications-channels.md).
    notifications_allow_private_targets: bool = Field(
        default=False,
        description="Let webhooks and push endpoints be http:// and private, loopback or link-local addresses "
        "(tests, an intranet); off, only https:// to public addresses.",
    )
    notifications_delivery_attempts: int = Field(
        default=8, ge=1, le=50, description="Attempts at one delivery before it is parked (dead-lettered)."
    )
    notifications_retry_base_seconds: float = Field(
        default=5.0, gt=0, description="The first retry's wait; it doubles with each attempt (with jitter)."
    )
    notifications_retry_max_seconds: float = Field(
        default=3600.0, gt=0, description="The longest wait between attempts."
    )
    notifications_webhook_disable_after_seconds: float = Field(
        default=24 * 3600.0, gt=0, description="A webhook whose every delivery failed for this long is disabled."
    )
    notifications_delivery_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long one delivery attempt (connect, send, answer) may take."
    )
    notifications_vapid_subject: str = Field(
        default="mailto:postmaster@localhost",
        pattern=r"^(mailto:|https://).+",
        description="The VAPID `sub` claim: a mailto: or https: contact for push services (some refuse localhost).",
    )
    notifications_vapid_private_key: str | None = Field(
        default=None,
        description="The VAPID private key (PEM, EC P-256); unset: created in the data folder on first start.",
    )

    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.CONSOLE

    fault_kill_after_commit: bool = Field(
        default=False,
        description="Testing only: a messaging process kills itself after a commit, before publishing it.",
    )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

    @property
    def resolved_database_url(self) -> str:
        """The database URL in force: the configured one, else SQLite in the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'parlour.db').resolve()}"

    @property
    def resolved_auth_url(self) -> str:
        """Where the auth service answers: the configured URL, else this process's own address."""
        if self.auth_url:
            return self.auth_url.rstrip("/")
        host = "127.0.0.1" if self.host in {"0.0.0.0", "::", ""} else self.host  # noqa: S104 - a comparison
        return f"http://{host}:{self.port}"

    @property
    def resolved_public_origins(self) -> list[str]:
        """The deployment's own origins: the configured ones, else where this process listens."""
        if self.public_origins:
            return list(self.public_origins)
        if self.host in {"0.0.0.0", "::", "", "127.0.0.1", "localhost"}:  # noqa: S104 - a comparison
            return [f"http://127.0.0.1:{self.port}", f"http://localhost:{self.port}"]
        host = f"[{self.host}]" if ":" in self.host else self.host
        return [f"http://{host}:{self.port}"]

    @property
    def keys_dir(self) -> Path:
        """Where the auth service keeps its private signing keys (generated on first run)."""
        return self.data_dir / "keys"

    @property
    def vapid_key_file(self) -> Path:
        """Where the notifications service keeps its VAPID private key (generated on first start)."""
        return self.data_dir / "vapid" / "private.pem"
