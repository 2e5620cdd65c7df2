"""Settings, read from the environment or `.env` (names as in API.md)."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .ingest.limits import check_store_id

LOCAL_ES_URL = "http://127.0.0.1:9200"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    elasticsearch_url: str = LOCAL_ES_URL
    elasticsearch_username: str | None = None
    elasticsearch_password: str | None = None
    elasticsearch_api_key: str | None = None
    elasticsearch_timeout: float = 30.0
    # Where `es start` keeps the local node; its generated password is used when
    # no credentials are configured and the URL is a local one.
    es_local_dir: Path = Path("data/elasticsearch")

    index_prefix: str = "analytics"
    redis_url: str | None = None
    # A hung or dead Redis must not slow requests: each command waits at most this long
    # (connect and read), and after a failure Redis is bypassed (cache off, enqueue left
    # to the reaper) for REDIS_COOLDOWN_SECONDS before one call probes it again.
    redis_timeout_seconds: float = Field(default=0.25, gt=0)
    redis_cooldown_seconds: float = Field(default=5.0, gt=0)
    database_url: str = "sqlite:///./data/analytics.db"
    reports_dir: Path = Path("data/reports")
    api_keys: str | None = Field(default=None, description="JSON list or @path to a JSON file")
    default_timezone: str = "UTC"
    # Optional JSON map store_id -> IANA zone; stores not listed use default_timezone.
    store_timezones: str | None = None
    default_store_id: str = "default"
    base_currency: str = "USD"
    signing_secret: str = "change-me"

    # Ingest limits (API.md: 5,000 records and 10 MB per batch).
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
    # Reports (and their files and download links) expire this long after they are requested.
    report_ttl_hours: float = Field(default=168, gt=0)

    @field_validator("index_prefix")
    @classmethod
    def _prefix_is_index_safe(cls, v: str) -> str:
        if not v or v != v.lower() or any(c in v for c in ' "*\\<|,>/?#:') or v.startswith(("-", "_", "+")):
            raise ValueError("INDEX_PREFIX must be lower case without spaces or any of \" * \\ < | , > / ? # :")
        return v

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
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    @cached_property
    def store_timezone_map(self) -> dict[str, str]:
        if not self.store_timezones:
            return {}
        data = json.loads(self.store_timezones)
        for zone in data.values():
            ZoneInfo(zone)
        return {str(k): str(v) for k, v in data.items()}

    def store_timezone(self, store_id: str) -> ZoneInfo:
        return ZoneInfo(self.store_timezone_map.get(store_id, self.default_timezone))

    def es_client_options(self) -> dict[str, Any]:
        """Connection options for the elasticsearch client."""
        options: dict[str, Any] = {"request_timeout": self.elasticsearch_timeout}
        if self.elasticsearch_api_key:
            options["api_key"] = self.elasticsearch_api_key
        elif self.elasticsearch_username:
            options["basic_auth"] = (self.elasticsearch_username, self.elasticsearch_password or "")
        else:
            password = self._local_node_password()
            if password:
                options["basic_auth"] = ("elastic", password)
        return options

    def _local_node_password(self) -> str | None:
        if not self.elasticsearch_url.startswith(("http://127.0.0.1", "http://localhost")):
            return None
        path = self.es_local_dir / "elastic-password"
        return path.read_text().strip() if path.is_file() else None


def get_settings() -> Settings:
    return Settings()
