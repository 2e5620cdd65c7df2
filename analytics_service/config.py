"""Settings from the environment or `.env` (README "Settings"), parsed and validated when Settings is built."""

from __future__ import annotations

import hashlib
import ipaddress
import json
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .es.indices import EVERY_FAMILY, FAMILY_NAMES
from .ingest.limits import check_store_id
from .zones import zone_named

LOCAL_ES_URL = "http://127.0.0.1:9200"
# Accepted only in local development (README "Settings": APP_ENV).
DEFAULT_SIGNING_SECRET = "change-me"
DEFAULT_WEBHOOK_SECRET = "change-me-webhooks"

Scope = Literal["ingest", "read", "reports", "admin"]


class ApiKeyConfig(BaseModel):
    """One entry of API_KEYS (README "Auth"); the key is a secret, never shown in a repr or an error."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    key: SecretStr
    scopes: list[Scope]
    store_id: str | None = None
    name: str | None = None

    @field_validator("key")
    @classmethod
    def _key_format(cls, v: SecretStr) -> SecretStr:
        key = v.get_secret_value()
        if key.startswith("sha256:"):
            digest = key.removeprefix("sha256:")
            if len(digest) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest):
                raise ValueError("a sha256: key must carry 64 hex digits")
        elif len(key) < 8:
            raise ValueError("keys must be at least 8 characters")
        return v

    @field_validator("store_id")
    @classmethod
    def _store_id_syntax(cls, v: str | None) -> str | None:
        # The same rule as a record's store_id: a key bound to `acme:eu` could write ids that collide.
        return None if v is None else check_store_id(v)

    @property
    def digest(self) -> str:
        key = self.key.get_secret_value()
        if key.startswith("sha256:"):
            return key.removeprefix("sha256:").lower()
        return hashlib.sha256(key.encode()).hexdigest()


_API_KEY_LIST = TypeAdapter(list[ApiKeyConfig])


def _check_zone(zone: str) -> str:
    zone_named(zone)
    return zone


def _json_setting(name: str, value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name} is not valid JSON ({exc})") from None


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    # hide_input_in_errors: a bad API_KEYS entry must not print its key (or the whole list) in the start-up error.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True, hide_input_in_errors=True)

    # `development` or `production`; unset: development when every service is on this machine (see
    # is_local_development). Only development accepts the default SIGNING_SECRET.
    app_env: Literal["development", "production"] | None = None
    elasticsearch_url: str = LOCAL_ES_URL
    elasticsearch_username: str | None = None
    elasticsearch_password: SecretStr | None = None
    elasticsearch_api_key: SecretStr | None = None
    elasticsearch_timeout: float = 30.0
    # Where `es start` keeps the local node; its generated password is used when
    # no credentials are configured and the URL is a local one.
    es_local_dir: Path = Path("data/elasticsearch")

    index_prefix: str = "analytics"
    # Primary shards and replicas per index family (README "Scaling out"): one number for every
    # family, or a JSON object family -> count ("*": the families not named). A family not given
    # keeps its template's: 1 shard, replicas auto-expanded to 0-1.
    index_shards: Annotated[dict[str, int], NoDecode] = Field(default_factory=dict)
    index_replicas: Annotated[dict[str, int], NoDecode] = Field(default_factory=dict)
    redis_url: str | None = None
    # A hung or dead Redis must not slow requests: each command waits at most this long
    # (connect and read), and after a failure Redis is bypassed (cache off, enqueue left
    # to the reaper) for REDIS_COOLDOWN_SECONDS before one call probes it again.
    redis_timeout_seconds: float = Field(default=0.25, gt=0)
    redis_cooldown_seconds: float = Field(default=5.0, gt=0)
    database_url: str = "sqlite:///./data/analytics.db"
    reports_dir: Path = Path("data/reports")
    # API_KEYS: a JSON list, or `@path` to a JSON file holding one (README "Auth"); NoDecode: parsed below.
    api_keys: Annotated[list[ApiKeyConfig], NoDecode] = Field(
        default_factory=list, description="JSON list or @path to a JSON file"
    )
    default_timezone: str = "UTC"
    # STORE_TIMEZONES: a JSON map store_id -> IANA zone; stores not listed use default_timezone.
    store_timezones: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    default_store_id: str = "default"
    base_currency: str = "USD"
    signing_secret: SecretStr = SecretStr(DEFAULT_SIGNING_SECRET)

    # Ingest limits (README "Sending data": 5,000 records and 10 MB per batch).
    max_batch_records: int = 5000
    max_body_bytes: int = 10 * 1024 * 1024
    bulk_chunk_actions: int = 1000
    bulk_chunk_bytes: int = 5 * 1024 * 1024
    bulk_max_retries: int = 5
    bulk_initial_backoff: float = 0.5
    # Install missing or outdated index templates when the app starts.
    auto_setup: bool = True
    # Analytics responses are cached this long at most (new data invalidates them sooner);
    # 0 turns the response cache off.
    cache_ttl_seconds: int = 300
    # While data flows in, a cached answer may be served this many seconds after it was
    # computed although newer data has arrived (marked `stale`; a fresh one is computed in
    # the background, once per answer at a time); 0: never serve an answer older than the data.
    cache_max_staleness_seconds: float = Field(default=5, ge=0)
    # The live stream (GET /api/v1/analytics/live) ends after this long; browsers reconnect
    # on their own (the stream's `retry`), so no connection is held forever.
    live_stream_max_seconds: float = Field(default=600, gt=0)
    # Reports (and their files and download links) expire this long after they are requested.
    report_ttl_hours: float = Field(default=168, gt=0)
    # Retention (`python -m analytics_service retention`, run daily by the worker; docs/operations.md):
    # the monthly events and activity indices whose whole month ended more than this many days ago are
    # deleted; 0 or unset: kept forever. Orders, order lines, products, expenses and customers never are.
    analytics_data_retention_days: int = Field(default=0, ge=0)
    # Alert incidents that are over (with their events) and finished deliveries are deleted this many
    # days on (open incidents, pending deliveries and rules never are); 0: kept forever.
    alert_history_retention_days: int = Field(default=90, ge=0)
    # Kibana, for `kibana import|export` (docs/kibana.md): an API key, else basic auth when a user is set.
    kibana_url: str = "http://127.0.0.1:5601"
    kibana_username: str | None = None
    kibana_password: SecretStr | None = None
    kibana_api_key: SecretStr | None = None
    # Notifications (docs/alerts.md). E-mail: smtp://host:port or smtps://user:password@host:port.
    smtp_url: SecretStr | None = None  # may carry a password: shown as ********** like every secret
    smtp_from: str = "analytics@localhost"
    smtp_starttls: bool = False  # upgrade an smtp:// connection with STARTTLS
    smtp_tls_verify: bool = True  # check the server's certificate (smtps://, STARTTLS)
    smtp_timeout_seconds: float = Field(default=30, gt=0)
    smtp_max_attachment_bytes: int = Field(default=10 * 1024 * 1024, ge=0)  # larger files: linked, not attached
    # Webhook signatures (X-Signature). Its own key: receivers hold it, so it must not be the one that
    # signs download links. Unset: DEFAULT_WEBHOOK_SECRET in local development, no webhooks otherwise.
    webhook_signing_secret: SecretStr | None = None
    # Webhooks to loopback, private, link-local or reserved addresses are refused (SSRF) unless this is true.
    webhook_allow_private_targets: bool = False
    # Where people reach this API: the base of the download links sent by e-mail and webhook.
    public_base_url: str = "http://127.0.0.1:8000"
    # Without REDIS_URL the API process evaluates alerts, runs schedules and sends deliveries itself
    # (as it runs report jobs); false leaves that to `python -m analytics_service worker`.
    notifications_in_process: bool = True
    # Operations (docs/operations.md). Logs: `json` (one object per line) or `console` (readable);
    # unset: console for `dev` (the Quick start), json for every other command. Read by cli.main
    # itself (log_setting), before the other settings; declared here so that they are checked.
    log_format: Literal["json", "console"] | None = None
    log_level: str = "INFO"
    # GET /metrics without a key (for a scraper on a private network); otherwise the admin scope.
    metrics_public: bool = False
    # `python -m analytics_service worker` serves its own /metrics (no key) on this port; 0: none.
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)
    worker_metrics_host: str = "127.0.0.1"
    # Requests per API key and route class, as `<count>/<second|minute|hour|day>` (several: `10/second;600/minute`);
    # empty: unlimited. Shared by every API process through Redis when REDIS_URL is set.
    rate_limit_ingest: str = "6000/minute"
    rate_limit_read: str = "1200/minute"
    rate_limit_reports: str = "120/minute"
    # The audit trail (GET /api/v1/audit) keeps this many days of rows.
    audit_retention_days: int = Field(default=365, ge=1)

    @property
    def webhook_secret(self) -> SecretStr | None:
        """The key of webhook signatures; None: webhooks cannot be sent (WEBHOOK_SIGNING_SECRET unset)."""
        if self.webhook_signing_secret is not None:
            return self.webhook_signing_secret
        return SecretStr(DEFAULT_WEBHOOK_SECRET) if self.is_local_development else None

    @field_validator("smtp_url", mode="before")
    @classmethod
    def _smtp_url(cls, v: object) -> object:
        text = v.get_secret_value() if isinstance(v, SecretStr) else v
        if text in (None, ""):
            return None
        parts = urlsplit(str(text))
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("SMTP_URL must be smtp://host:port or smtps://user:password@host:port")
        return v

    @field_validator("rate_limit_ingest", "rate_limit_read", "rate_limit_reports")
    @classmethod
    def _rate_limit(cls, v: str) -> str:
        from limits import parse_many

        text = v.strip()
        if text in ("", "0"):
            return ""
        try:
            parse_many(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a rate limit such as 600/minute or 10/second;600/minute") from None
        return text

    @field_validator("analytics_data_retention_days", "alert_history_retention_days", mode="before")
    @classmethod
    def _blank_is_default(cls, v: object, info: ValidationInfo) -> object:
        # `ANALYTICS_DATA_RETENTION_DAYS=` (set but empty, as in a copied .env) means unset.
        if isinstance(v, str) and not v.strip():
            return cls.model_fields[str(info.field_name)].default
        return v

    @field_validator("webhook_signing_secret", mode="before")
    @classmethod
    def _empty_is_unset(cls, v: object) -> object:
        return None if v == "" else v

    @field_validator("public_base_url")
    @classmethod
    def _base_url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("PUBLIC_BASE_URL must be an http(s) URL, e.g. https://analytics.example.com")
        return v.rstrip("/")

    @field_validator("app_env", mode="before")
    @classmethod
    def _app_env_case(cls, v: object) -> object:
        if isinstance(v, str):
            return v.strip().lower() or None
        return v

    @field_validator("index_prefix")
    @classmethod
    def _prefix_is_index_safe(cls, v: str) -> str:
        if not v or v != v.lower() or any(c in v for c in ' "*\\<|,>/?#:') or v.startswith(("-", "_", "+")):
            raise ValueError('INDEX_PREFIX must be lower case without spaces or any of " * \\ < | , > / ? # :')
        return v

    @field_validator("index_shards", "index_replicas", mode="before")
    @classmethod
    def _parse_family_counts(cls, v: object, info: ValidationInfo) -> dict[str, int]:
        name, least = ("INDEX_SHARDS", 1) if info.field_name == "index_shards" else ("INDEX_REPLICAS", 0)
        if v is None or v == "":
            return {}
        data = _json_setting(name, v) if isinstance(v, str) else v
        if isinstance(data, int) and not isinstance(data, bool):
            data = {EVERY_FAMILY: data}
        if not isinstance(data, dict):
            raise ValueError(f'{name} must be a number or a JSON object {{"orders": 3, "*": 1, ...}}')
        for family, count in data.items():
            if family not in (*FAMILY_NAMES, EVERY_FAMILY):
                raise ValueError(f"{name}: unknown index family {family!r} (one of {', '.join(FAMILY_NAMES)} or *)")
            if not isinstance(count, int) or isinstance(count, bool) or not least <= count <= 1024:
                raise ValueError(f"{name}: {family} must be a whole number from {least} to 1024")
        return data

    @field_validator("default_store_id")
    @classmethod
    def _store_id_syntax(cls, v: str) -> str:
        try:
            return check_store_id(v)
        except ValueError as exc:
            raise ValueError(f"DEFAULT_STORE_ID {exc}") from exc

    @field_validator("default_timezone")
    @classmethod
    def _valid_zone(cls, v: str) -> str:
        return _check_zone(v)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_api_keys(cls, v: object) -> list[ApiKeyConfig]:
        if v is None or v == "":
            return []
        if isinstance(v, str):
            text = v
            if v.startswith("@"):
                path = Path(v[1:])
                try:
                    text = path.read_text()
                except OSError as exc:
                    raise ValueError(f"API_KEYS: cannot read {path}: {exc.strerror or exc}") from None
            v = _json_setting("API_KEYS", text)
        try:
            keys = _API_KEY_LIST.validate_python(v)
        except ValidationError as exc:
            raise ValueError("; ".join(_api_key_error(e) for e in exc.errors(include_input=False))) from None
        seen: dict[str, int] = {}
        for i, entry in enumerate(keys):
            if entry.digest in seen:
                raise ValueError(f"API_KEYS entries {seen[entry.digest]} and {i} have the same key")
            seen[entry.digest] = i
        return keys

    @field_validator("store_timezones", mode="before")
    @classmethod
    def _parse_store_timezones(cls, v: object) -> dict[str, str]:
        if v is None or v == "":
            return {}
        data = _json_setting("STORE_TIMEZONES", v) if isinstance(v, str) else v
        if not isinstance(data, dict):
            raise ValueError('STORE_TIMEZONES must be a JSON object {"store_id": "IANA zone", ...}')
        for store, zone in data.items():
            try:
                check_store_id(store)
            except ValueError as exc:
                raise ValueError(f"STORE_TIMEZONES: store id {store!r} {exc}") from None
            if not isinstance(zone, str):
                raise ValueError(f"STORE_TIMEZONES: the zone of store {store!r} must be a string")
            try:
                _check_zone(zone)
            except ValueError as exc:
                raise ValueError(f"STORE_TIMEZONES: {exc} for store {store!r}") from None
        return data

    @model_validator(mode="after")
    def _no_default_secret_outside_development(self) -> Settings:
        if self.signing_secret.get_secret_value() in ("", DEFAULT_SIGNING_SECRET) and not self.is_local_development:
            raise ValueError(
                f"SIGNING_SECRET must be set: the default {DEFAULT_SIGNING_SECRET!r} (or an empty one) is accepted "
                "only in local development (APP_ENV=development, or APP_ENV unset and Elasticsearch, the database and "
                "Redis all on this machine). Set SIGNING_SECRET to a long random value, e.g. the output of "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        return self

    @model_validator(mode="after")
    def _webhook_key_is_its_own(self) -> Settings:
        webhook = self.webhook_signing_secret
        if webhook is not None and webhook.get_secret_value() == self.signing_secret.get_secret_value():
            raise ValueError(
                "WEBHOOK_SIGNING_SECRET must differ from SIGNING_SECRET: webhook receivers hold it, and "
                "SIGNING_SECRET signs the report download links"
            )
        return self

    @property
    def is_local_development(self) -> bool:
        """APP_ENV, else whether every configured service (Elasticsearch, database, Redis) is on this machine."""
        if self.app_env is not None:
            return self.app_env == "development"
        if not _is_loopback(urlsplit(self.elasticsearch_url).hostname):
            return False
        database = urlsplit(self.database_url)
        if not database.scheme.startswith("sqlite") and database.hostname and not _is_loopback(database.hostname):
            return False
        redis = urlsplit(self.redis_url) if self.redis_url else None
        return redis is None or not redis.hostname or _is_loopback(redis.hostname)

    def store_timezone(self, store_id: str) -> ZoneInfo:
        return ZoneInfo(self.store_timezones.get(store_id, self.default_timezone))

    def es_client_options(self) -> dict[str, Any]:
        """Connection options for the elasticsearch client (the only place its secrets are unwrapped)."""
        options: dict[str, Any] = {"request_timeout": self.elasticsearch_timeout}
        if self.elasticsearch_api_key:
            options["api_key"] = self.elasticsearch_api_key.get_secret_value()
        elif self.elasticsearch_username:
            password = self.elasticsearch_password.get_secret_value() if self.elasticsearch_password else ""
            options["basic_auth"] = (self.elasticsearch_username, password)
        else:
            local_password = self._local_node_password()
            if local_password:
                options["basic_auth"] = ("elastic", local_password)
        return options

    def _local_node_password(self) -> str | None:
        if not self.elasticsearch_url.startswith(("http://127.0.0.1", "http://localhost")):
            return None
        path = self.es_local_dir / "elastic-password"
        return path.read_text().strip() if path.is_file() else None


def _api_key_error(error: ErrorDetails) -> str:
    """One pydantic error of API_KEYS as `API_KEYS entry 1, scopes.0: <message>` (never the entry's input)."""
    loc = list(error["loc"])
    where = "API_KEYS" if not loc else f"API_KEYS entry {loc[0]}"
    if len(loc) > 1:
        where += ", " + ".".join(str(part) for part in loc[1:])
    return f"{where}: {str(error['msg']).removeprefix('Value error, ')}"
