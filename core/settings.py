"""Reelay's settings: one typed, frozen object read once by the entry points."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, AnyHttpUrl, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import SettingsError
from core.ports.instagram import LoginFlavour


class Settings(BaseSettings):
    """Every variable Reelay reads, with its default.

    Names map to environment variables in upper case (``DATABASE_URL``) and may
    also come from a ``.env`` file in the working directory.
    """

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        frozen=True,
        extra="ignore",
    )

    # Storage and processes
    var_dir: Path = Field(
        Path("var"), description="Where embedded data lives (SQLite, Redis, media, keys)."
    )
    database_url: str = Field(
        "", description="Tortoise URL, e.g. postgres://user:pw@host/db. Empty: SQLite in VAR_DIR."
    )
    redis_url: str = Field(
        "", description="redis://host:port/db. Empty: start an embedded Redis in VAR_DIR."
    )
    webhook_inbox: Literal["auto", "stream", "database"] = Field(
        "auto",
        description="Where Meta's webhook deliveries are stored before they are answered: "
        "stream (a Redis stream with an append-only file, written to the database in batches "
        "by the worker) or database (written by the panel). auto: stream when Redis keeps an "
        "append-only file (the embedded one does), else database.",
    )
    public_base_url: AnyHttpUrl | None = Field(
        None,
        description=(
            "Public address of the panel; Meta fetches media and sends webhooks here. "
            "Empty: http://127.0.0.1:PANEL_PORT."
        ),
    )
    private_urls_ok: bool = Field(
        False,
        validation_alias=AliasChoices("private_urls_ok", "media_links_private_ok"),
        description=(
            "Let requests to addresses people enter (media links, lead webhooks, the setup "
            "webhook check) reach private and local addresses (localhost, LAN). Off: only "
            "public addresses. MEDIA_LINKS_PRIVATE_OK is the old name and still works."
        ),
    )
    panel_host: str = Field("127.0.0.1", description="Interface the panel listens on.")
    trusted_proxies: str = Field(
        "127.0.0.1,::1",
        description=(
            "Comma-separated addresses or networks (CIDR) of reverse proxies whose "
            "X-Forwarded-For/-Proto headers the panel believes; sign-in limits count the "
            "client address they report. Empty: trust no proxy."
        ),
    )
    panel_port: Annotated[int, Field(ge=1, le=65535)] = Field(8000, description="Panel port.")
    inbox_stream_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        60.0,
        description="Seconds the inbox's live-update stream stays open before the browser "
        "opens the next one.",
    )
    secret_key: SecretStr | None = Field(
        None, description="Signs session cookies and OAuth state. Empty: generated into VAR_DIR."
    )
    encryption_key: SecretStr | None = Field(
        None, description="Fernet key for tokens at rest. Empty: generated into VAR_DIR (dev only)."
    )
    log_level: str = Field("INFO", description="Logging level.")
    metrics_token: SecretStr | None = Field(
        None,
        description=(
            "Bearer token Prometheus sends to read /metrics. "
            "Empty: /metrics answers only requests from this machine (127.0.0.1, ::1)."
        ),
    )

    # Meta
    meta_app_id: str = Field(
        "", description="Meta (Instagram) app id. Empty: the built-in sandbox."
    )
    meta_app_secret: SecretStr | None = Field(None, description="Instagram app secret.")
    facebook_app_secret: SecretStr | None = Field(
        None, description="Facebook app secret, also accepted for webhook signatures."
    )
    meta_verify_token: SecretStr | None = Field(
        None, description="Webhook verify token you paste into Meta's dashboard."
    )
    meta_human_agent: bool = Field(
        False,
        description="The Meta app has the human_agent permission (App Review): a teammate's "
        "inbox reply may go up to 7 days after the person's last message, tagged HUMAN_AGENT.",
    )
    graph_host: AnyHttpUrl = Field(
        AnyHttpUrl("https://graph.instagram.com"), description="Instagram Login Graph host."
    )
    facebook_graph_host: AnyHttpUrl = Field(
        AnyHttpUrl("https://graph.facebook.com"), description="Facebook Login Graph host."
    )
    # The newest version whose shapes Reelay is checked against (README, "Graph API version").
    graph_version: str = Field("v25.0", pattern=r"^v\d+\.\d+$", description="Graph API version.")
    instagram_oauth_url: AnyHttpUrl = Field(
        AnyHttpUrl("https://www.instagram.com/oauth/authorize"), description="Authorize dialog."
    )
    instagram_token_url: AnyHttpUrl = Field(
        AnyHttpUrl("https://api.instagram.com/oauth/access_token"), description="Code exchange."
    )
    facebook_app_id: str = Field(
        "", description="Facebook app id for Facebook Login. Empty: only Instagram Login."
    )
    facebook_oauth_url: AnyHttpUrl = Field(
        AnyHttpUrl("https://www.facebook.com/dialog/oauth"),
        description="Facebook Login dialog.",
    )
    token_refresh_within_days: Annotated[int, Field(ge=1, le=59)] = Field(
        30, description="Refresh Instagram Login tokens expiring within this many days."
    )
    sandbox_url: AnyHttpUrl = Field(
        AnyHttpUrl("http://127.0.0.1:8010"),
        description="Where the built-in sandbox Instagram listens when META_APP_ID is empty.",
    )

    # Chat
    telegram_token: SecretStr | None = Field(
        None, description="Telegram bot token; empty disables."
    )
    telegram_api_server: AnyHttpUrl = Field(
        AnyHttpUrl("https://api.telegram.org"), description="Telegram Bot API server."
    )
    discord_token: SecretStr | None = Field(None, description="Discord bot token; empty disables.")
    telegram_webhook_url: AnyHttpUrl | None = Field(
        None,
        description="Public base URL Telegram posts updates to. Empty: long polling.",
    )
    telegram_webhook_host: str = Field(
        "127.0.0.1", description="Interface the Telegram webhook server listens on."
    )
    telegram_webhook_port: Annotated[int, Field(ge=1, le=65535)] = Field(
        8081, description="Port the Telegram webhook server listens on."
    )
    discord_api_url: AnyHttpUrl = Field(
        AnyHttpUrl("https://discord.com/api/v10"), description="Discord REST API base URL."
    )
    smtp_host: str = Field(
        "", description="SMTP server for alerts, password resets and invitations. Empty: no email."
    )
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = Field(587, description="SMTP port.")
    smtp_username: str = Field("", description="SMTP user name. Empty: no login.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password.")
    smtp_from: str = Field("reelay@localhost", description="Sender address of alert emails.")
    smtp_security: str = Field(
        "starttls", pattern=r"^(starttls|tls|none)$", description="starttls, tls or none."
    )

    # AI
    openai_api_key: SecretStr | None = Field(
        None,
        description="OpenAI-compatible API key. Empty with the default OPENAI_BASE_URL: AI is off.",
    )
    openai_base_url: AnyHttpUrl = Field(
        AnyHttpUrl("https://api.openai.com/v1"),
        description="OpenAI-compatible base URL; a bare http://host:port gets /v1 added.",
    )
    openai_model: str = Field("gpt-4o-mini", description="Chat model name.")
    openai_timeout: Annotated[float, Field(gt=0, le=300)] = Field(
        20.0, description="Seconds one AI call attempt may take."
    )
    openai_temperature: Annotated[float, Field(ge=0, le=2)] = Field(
        0.7, description="Sampling temperature for AI answers."
    )
    openai_max_retries: Annotated[int, Field(ge=0, le=5)] = Field(
        2, description="Retries of an AI call after a timeout, 429 or 5xx (with back-off)."
    )
    openai_token_param: Literal["max_tokens", "max_completion_tokens"] = Field(
        "max_tokens",
        description="Name of the answer-length parameter your server expects "
        "(newer OpenAI models want max_completion_tokens).",
    )
    openai_reply_max_tokens: Annotated[int, Field(ge=16, le=4000)] = Field(
        300, description="Token limit for one AI reply to a comment or DM."
    )
    openai_caption_max_tokens: Annotated[int, Field(ge=64, le=8000)] = Field(
        1000, description="Token limit for one AI caption."
    )

    # Sending and jobs
    dm_pace_per_hour: Annotated[int, Field(ge=1, le=360000)] = Field(
        200, description="Default DMs per hour per account."
    )
    private_reply_per_hour: Annotated[int, Field(ge=1, le=750)] = Field(
        750, description="Private replies per hour per account (Meta's cap is 750)."
    )
    send_retry_base_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        5.0,
        description=(
            "First delay in seconds before a failed send is retried, or checked on Instagram "
            "when its answer was lost (doubles each try, with jitter)."
        ),
    )
    worker_poll_delay: Annotated[float, Field(gt=0, le=10)] = Field(
        0.05, description="Seconds between the worker's queue polls."
    )
    worker_max_jobs: Annotated[int, Field(ge=1, le=10000)] = Field(
        50, description="Concurrent jobs per worker."
    )
    comment_sweep_minutes: Annotated[int, Field(ge=0, le=1440)] = Field(
        10,
        description="Minutes between reads of recent comments that catch those whose webhook "
        "never came (0 turns the sweep off).",
    )

    # Publishing
    publish_max_attempts: Annotated[int, Field(ge=1, le=20)] = Field(
        5, description="Tries of a post on temporary Instagram errors before it fails."
    )
    publish_retry_base_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        30.0, description="First retry delay in seconds (doubles each try, with jitter)."
    )
    publish_retry_max_s: Annotated[float, Field(gt=0, le=86400)] = Field(
        1800.0, description="Longest retry delay in seconds."
    )
    publish_status_interval_s: Annotated[float, Field(gt=0, le=600)] = Field(
        10.0, description="Seconds between the first checks of a video Instagram is processing."
    )
    publish_status_timeout_s: Annotated[float, Field(gt=0, le=86400)] = Field(
        1800.0, description="Seconds to wait for Instagram to process media before failing."
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: str) -> str:
        entries = [entry.strip() for entry in value.split(",") if entry.strip()]
        for entry in entries:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network") from None
        return ",".join(entries)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @property
    def sandbox(self) -> bool:
        """True when no Meta app is configured: Reelay talks to its built-in sandbox."""
        return not self.meta_app_id

    @property
    def sandbox_base_url(self) -> str:
        return str(self.sandbox_url).rstrip("/")

    def graph_base_url(self, login_kind: LoginFlavour) -> str:
        """The host an account's Graph calls go to, by how it logged in."""
        if login_kind == "facebook":
            return str(self.facebook_graph_host).rstrip("/")
        if login_kind == "sandbox":
            return self.sandbox_base_url
        return str(self.graph_host).rstrip("/")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite://{self.var_dir / 'reelay.sqlite3'}"

    @property
    def on_sqlite(self) -> bool:
        """The database is SQLite: one connection, one writer at a time."""
        return self.resolved_database_url.startswith("sqlite")

    @property
    def base_url(self) -> str:
        """PUBLIC_BASE_URL, else the panel's own local address (so a changed PANEL_PORT
        still reaches the panel from links, OAuth callbacks and sandbox webhooks)."""
        if self.public_base_url is None:
            return f"http://127.0.0.1:{self.panel_port}"
        return str(self.public_base_url).rstrip("/")


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment and ``.env``; raise SettingsError naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "SETTINGS"
        raise SettingsError(f"invalid setting {name}: {first['msg']}") from None
