"""Settings, read from ``PERSONIFY_*`` environment variables and an optional TOML/YAML file.

Only the edges (api, cli, dashboard, jobs entry points) read settings; inner code receives ready
objects. See ``personify.example.toml`` for every option with a comment.
"""

from __future__ import annotations

import json
import os
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from personify.domain.errors import ConfigurationError


class WebhookChannelSetting(BaseModel):
    """One webhook channel in the settings (fully validated by messaging when it starts)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    url: str
    secret: SecretStr
    timeout_s: float = 5.0
    consent_purpose: str | None = "push_marketing"


class Settings(BaseSettings):
    # Environment values of list / mapping settings arrive as text and are parsed by
    # ``_parse_text`` below: JSON, or (lists of names) comma-separated values.
    model_config = SettingsConfigDict(
        env_prefix="PERSONIFY_", extra="ignore", enable_decoding=False
    )

    database_url: str = Field(
        default="sqlite:///var/personify.db",
        description="sqlite:///path.db (embedded default), postgresql://..., or memory://",
    )
    redis_url: str | None = Field(
        default=None, description="redis://host:6379/0 for shared online state; unset = in-process"
    )
    redis_prefix: str = "personify"
    redis_key_secret: SecretStr | None = Field(
        default=None,
        description="HMAC key (>= 24 characters) naming each person's Redis keys (no key name "
        "carries a plain user or anonymous id); unset = a key generated once and kept in Redis "
        "(docs/security.md)",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    demo: bool = Field(default=False, description="demo mode: a fixed admin key, sample data")
    admin_key: SecretStr | None = Field(
        default=None,
        description="bootstrap admin key (>= 24 characters); otherwise create keys with the CLI",
    )
    custom_event_types: list[str] = Field(default_factory=list)
    segment_track_map: dict[str, str] = Field(
        default_factory=dict,
        description='Segment track event names -> event types, over the defaults (JSON in env: '
        '{"Signed Up": "signup"})',
    )
    default_tenant: str = "default"
    model_dir: str = Field(
        default="",
        description="directory of the trained model versions; unset = 'models' next to the "
        "SQLite database (var/models otherwise); always made absolute, so every command sees "
        "the same versions whatever its working directory",
    )
    retrain_interval_minutes: float | None = Field(
        default=None,
        description="embedded mode: retrain in a child process every N minutes with new events",
    )
    retrain_every_events: int = Field(default=10_000, ge=1)
    model_refresh_seconds: float = Field(
        default=5.0, gt=0, le=3600,
        description="how often a server polls the promoted model version: a version promoted by "
        "any process sharing model_dir is served within this (plus its load time)",
    )
    log_level: str = "info"
    log_format: Literal["json", "plain"] = Field(
        default="json",
        description="server logs: one JSON object per line (request id, route template, status, "
        "duration; never a person's id) or plain text",
    )
    tracing: Literal["off", "console", "otlp"] = Field(
        default="off",
        description="OpenTelemetry tracing of requests and the serving chain's stages (needs "
        "the otel extra): otlp exports over OTLP/HTTP to tracing_endpoint, console prints spans",
    )
    tracing_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP traces endpoint, e.g. http://collector:4318/v1/traces (unset: "
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else the exporter's default)",
    )
    tracing_service_name: str = Field(default="personify", min_length=1)
    weather_provider: Literal["none", "open-meteo"] = Field(
        default="none",
        description="open-meteo: a request with coordinates (context.location.latitude / "
        "longitude) and no context.weather gets the current weather there from an "
        "Open-Meteo-compatible API (rounded to ~1 km, cached per place and hour); none: only "
        "the weather clients send",
    )
    weather_url: str = Field(
        default="https://api.open-meteo.com",
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description="base URL of the Open-Meteo-compatible API (/v1/forecast below it): your "
        "own instance, or Open-Meteo's",
    )
    weather_timeout_seconds: float = Field(
        default=1.0, gt=0, le=30,
        description="how long a recommendation waits for the weather provider on a cache miss "
        "(then it is served without weather, and the place is not asked again for 5 minutes)",
    )
    max_request_bytes: int = 16 * 1024 * 1024
    cold_slots: dict[str, Annotated[int, Field(ge=0, le=200)]] = Field(
        default_factory=dict,
        description='tenant -> how many of the n places of a recommendation list are kept for '
        'cold items (the trained model does not know them yet) that match the person by '
        'content, "*" for the other tenants; unset = 0. A request\'s cold_slots overrides it '
        '(JSON in env: {"*": 2})',
    )
    idempotency_hours: float = Field(
        default=24.0, gt=0, le=24 * 30,
        description="how long the first answer to an Idempotency-Key is kept and replayed to "
        "a retry with the same key (per tenant and API key), in hours",
    )
    rate_limit_per_minute: int = Field(
        default=0, ge=0,
        description="requests per minute per API key (a token bucket holding a minute's worth); "
        "0 disables",
    )
    rate_limit_tenant_per_minute: int = Field(
        default=0, ge=0, description="requests per minute of all keys of one tenant; 0 disables"
    )
    rate_limit_overrides: dict[str, Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict,
        description="key id or key name -> that key's requests per minute instead of "
        'rate_limit_per_minute, 0 = unlimited (JSON in env: {"mobile-app": 6000})',
    )
    allowed_origins: dict[str, list[str]] = Field(
        default_factory=dict,
        description='tenant -> the web origins whose pages may call the API with that tenant\'s '
        'browser key (CORS), e.g. {"default": ["https://shop.example"]}; a page served by the '
        "API itself (the demo shop) is always allowed. Other origins are refused",
    )
    rate_limit_browser_visitor_per_minute: int = Field(
        default=300, ge=0,
        description="requests per minute of one visitor (anonymous / user id) with a browser "
        "key; 0 disables",
    )
    rate_limit_browser_origin_per_minute: int = Field(
        default=0, ge=0,
        description="requests per minute from one origin with a tenant's browser keys; 0 "
        "disables",
    )
    pseudonym_secret: SecretStr | None = Field(
        default=None,
        description="HMAC key (>= 16 characters) for pseudonymized user ids in logs, analytics "
        "and model influence indexes; unset = a key generated once and kept in the database",
    )
    consent_defaults: dict[str, str] = Field(
        default_factory=dict,
        description='purpose -> "opt-in" | "opt-out" when a person has no (unexpired) consent '
        'record; unnamed purposes are opt-in. Demo mode makes personalization and profiling '
        'opt-out unless set here (JSON in env: {"personalization": "opt-out"})',
    )
    consent_purposes: list[str] = Field(
        default_factory=list, description="operator-defined consent purposes, besides the built-in"
    )
    retention_days: dict[str, float] = Field(
        default_factory=dict,
        description='days to keep events per type, "*" for the rest; unset types are kept '
        '(JSON in env: {"view": 90, "impression": 30})',
    )
    config_file: str | None = None
    messaging_enabled: bool = Field(
        default=False,
        description="run the outbox worker and journey ticks in a background thread of the API",
    )
    messaging_db_path: str | None = Field(
        default=None,
        description="SQLite file of the outbox, journey runs, unsubscribes and inbox with a "
        "SQLite database; unset = next to it (<name>.messaging.db). Refused with PostgreSQL, "
        "which keeps them in the database",
    )
    complaint_holdback_days: int = Field(
        default=0, ge=0, le=365,
        description="hold back marketing messages for this many days after a person's newest "
        "text was negative (a complaint); 0 = off",
    )
    messaging_worker_threads: int = Field(
        default=1, ge=1, le=16,
        description="threads of the outbox worker, each with its own SMTP connection (more "
        "overlap the relay's round trips)",
    )
    smtp_host: str | None = Field(default=None, description="SMTP relay; unset = no email channel")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = "personify@localhost"
    person_token_secret: SecretStr | None = Field(
        default=None,
        description="signs per-person tokens (>= 24 characters): a site's backend lets a public "
        "(ingest) key change that one person's consent, preferences and profile; unset = only "
        "trusted (admin) keys change them (docs/security.md)",
    )
    tracking_secret: SecretStr | None = Field(
        default=None,
        description="signs open / click / unsubscribe links (>= 24 characters); required when "
        "messaging_enabled",
    )
    item_url_template: str | None = Field(
        default=None,
        description="the shop's page of an item, with {item_id} (https://shop.example/p/"
        "{item_id}): the link of an item in messages when the item has no properties.url; "
        "unset = such items get no link (and no tracked click)",
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="the public URL of this API, used in tracking and unsubscribe links",
    )
    webhook_channels: list[WebhookChannelSetting] = Field(
        default_factory=list,
        description='push / chat / CRM webhook channels of every tenant (JSON in env: [{"name": '
        '"push", "url": "https://...", "secret": "...", "timeout_s": 5}]); checked when '
        "messaging starts",
    )
    webhook_allow_http: bool = Field(
        default=False, description="development only: allow http:// webhook URLs"
    )
    webhook_allow_hosts: list[str] = Field(
        default_factory=list,
        description="webhook hosts exempt from the private / loopback / link-local refusal "
        '(an internal CRM; JSON in env: ["crm.internal"])',
    )

    def privacy_options(self) -> dict[str, Any]:
        """Keyword arguments of ``personify.privacy.runtime.open_runtime`` for these settings."""
        secret = self.pseudonym_secret
        return {
            "consent_defaults": self.consent_defaults,
            "consent_purposes": self.consent_purposes,
            "demo": self.demo,
            "pseudonym_secret": secret.get_secret_value().encode() if secret is not None else None,
            "retention_days": self.retention_days,
        }

    def redis_key_bytes(self) -> bytes | None:
        """``redis_key_secret`` as bytes (None when unset)."""
        secret = self.redis_key_secret
        return secret.get_secret_value().encode() if secret is not None else None

    @model_validator(mode="after")
    def _absolute_model_dir(self) -> Settings:
        self.model_dir = str(default_model_dir(self.database_url, self.model_dir))
        return self

    @model_validator(mode="after")
    def _demo_tracking_secret_only_in_demo(self) -> Settings:
        secret = self.tracking_secret
        if not self.demo and secret is not None \
                and secret.get_secret_value() == DEMO_TRACKING_SECRET:
            raise ValueError(
                "PERSONIFY_TRACKING_SECRET: the demo's tracking secret is refused outside demo "
                "mode; set a secret of your own (at least 24 characters)"
            )
        return self

    @field_validator("allowed_origins")
    @classmethod
    def _valid_origins(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        from personify.domain.web import normalize_origin

        return {tenant: [normalize_origin(o) for o in origins]
                for tenant, origins in value.items()}

    @field_validator("admin_key")
    @classmethod
    def _strong_admin_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 24:
            raise ValueError("PERSONIFY_ADMIN_KEY must have at least 24 characters")
        return value

    @field_validator("person_token_secret")
    @classmethod
    def _strong_person_token_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 24:
            raise ValueError("PERSONIFY_PERSON_TOKEN_SECRET must have at least 24 characters")
        return value

    @field_validator("item_url_template")
    @classmethod
    def _item_url_template(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if "{item_id}" not in value or not value.startswith(("https://", "http://")):
            raise ValueError(
                "PERSONIFY_ITEM_URL_TEMPLATE must be an http(s) URL containing {item_id}, "
                "e.g. https://shop.example/p/{item_id}"
            )
        return value

    @field_validator("redis_key_secret")
    @classmethod
    def _strong_redis_key_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 24:
            raise ValueError("PERSONIFY_REDIS_KEY_SECRET must have at least 24 characters")
        return value

    @field_validator("tracking_secret")
    @classmethod
    def _strong_tracking_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 24:
            raise ValueError("PERSONIFY_TRACKING_SECRET must have at least 24 characters")
        return value

    @field_validator("*", mode="before")
    @classmethod
    def _parse_text(cls, value: Any, info: ValidationInfo) -> Any:
        """A list or mapping setting given as text (the environment): see :func:`parse_text`."""
        if not isinstance(value, str) or info.field_name is None:
            return value
        shape = _shapes().get(info.field_name)
        return value if shape is None else parse_text(info.field_name, value, shape)


Shape = Literal["names", "list", "mapping"]
"""How a setting's text is read: ``names`` (a list of strings: JSON or comma-separated), ``list``
(JSON list), ``mapping`` (JSON object)."""

_SHAPES: dict[str, Shape] = {}


def _shape_of(annotation: Any) -> Shape | None:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _shape_of(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:  # X | None
        shapes = [_shape_of(arg) for arg in get_args(annotation) if arg is not type(None)]
        return next((shape for shape in shapes if shape is not None), None)
    if origin in (list, set, frozenset, tuple):
        args = get_args(annotation)
        return "names" if args and args[0] is str else "list"
    if origin is dict or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return "mapping"
    return None


def _shapes() -> dict[str, Shape]:
    """Setting name -> shape, for every list / mapping setting (computed once)."""
    if not _SHAPES:
        for name, info in Settings.model_fields.items():
            shape = _shape_of(info.annotation)
            if shape is not None:
                _SHAPES[name] = shape
    return _SHAPES


def parse_text(name: str, text: str, shape: Shape) -> Any:
    """The value of list / mapping setting ``name`` written as text, as in the environment:
    JSON (``["a", "b"]``, ``{"a": 1}``); for lists of names also ``a,b`` (blanks around the
    commas and empty parts are dropped); blank text is an empty list / mapping."""
    env = f"PERSONIFY_{name.upper()}"
    stripped = text.strip()
    if not stripped:
        return {} if shape == "mapping" else []
    if shape == "names" and not stripped.startswith("["):
        return [part.strip() for part in stripped.split(",") if part.strip()]
    accepted = {
        "names": 'a JSON list such as ["a", "b"], or comma-separated values such as a,b',
        "list": "a JSON list such as [{...}, {...}]",
        "mapping": 'a JSON object such as {"name": value}',
    }[shape]
    try:
        value = json.loads(stripped)
    except ValueError as exc:
        raise ValueError(f"{env} is not valid JSON ({exc}); accepted: {accepted}") from None
    if not isinstance(value, dict if shape == "mapping" else list):
        raise ValueError(f"{env} holds JSON of the wrong kind; accepted: {accepted}")
    return value


DEMO_ADMIN_KEY = "demo-admin-key-not-for-production"
"""The one default secret; used only when ``demo`` is on."""
DEMO_TRACKING_SECRET = "demo-tracking-secret-not-for-production"
"""Signs the demo's tracking links; ``personify demo`` sets it, and any other mode refuses it."""
DEMO_BROWSER_KEY = "demo-browser-key-public"
"""The public ``browser`` key of demo mode (the demo shop's snippet); only when ``demo`` is on."""


def default_model_dir(database_url: str, model_dir: str = "") -> Path:
    """The absolute model directory: ``model_dir`` if given (relative to the working
    directory), else ``models`` beside a SQLite database file, else ``var/models``."""
    if model_dir:
        return Path(model_dir).expanduser().resolve()
    if database_url.startswith("sqlite:///"):
        path = database_url.removeprefix("sqlite:///").split("?", 1)[0]
        if path and path != ":memory:":
            return (Path(path).expanduser().resolve().parent / "models")
    return Path("var/models").resolve()


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from the environment, an optional config file (TOML or YAML), then ``overrides``.

    Precedence: explicit overrides > environment > file > defaults.
    """
    path = config_file or os.environ.get("PERSONIFY_CONFIG_FILE")
    file_values: dict[str, Any] = {}
    if path:
        file_values = _read_config_file(Path(path))
    env_settings = Settings()
    env_set = {
        name for name in Settings.model_fields if f"PERSONIFY_{name.upper()}" in os.environ
    }
    merged = {k: v for k, v in file_values.items() if k not in env_set}
    merged.update({k: getattr(env_settings, k) for k in env_set})
    merged.update(overrides)
    return Settings(**merged) if merged else env_settings


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigurationError(f"config file {path} does not exist", field="config_file")
    text = path.read_text(encoding="utf-8")
    if path.suffix in {".yaml", ".yml"}:
        import yaml

        data = yaml.safe_load(text) or {}
    else:
        import tomllib

        data = tomllib.loads(text)
    if not isinstance(data, dict):
        raise ConfigurationError(f"config file {path} must hold a mapping", field="config_file")
    unknown = set(data) - set(Settings.model_fields)
    if unknown:
        raise ConfigurationError(
            f"unknown settings in {path}: {', '.join(sorted(unknown))}",
            field="config_file",
            accepted=", ".join(sorted(Settings.model_fields)),
        )
    return data
