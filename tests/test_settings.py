"""Settings are parsed and validated when built (README "Settings" and "Auth"): bad values fail the start."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from analytics_service.auth import KeyRing
from analytics_service.cli import main
from analytics_service.config import Settings

# Every variable these tests set, cleared first so the machine's environment cannot interfere.
VARIABLES = (
    "APP_ENV",
    "API_KEYS",
    "STORE_TIMEZONES",
    "SIGNING_SECRET",
    "ELASTICSEARCH_URL",
    "ELASTICSEARCH_USERNAME",
    "ELASTICSEARCH_PASSWORD",
    "ELASTICSEARCH_API_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "INDEX_SHARDS",
    "INDEX_REPLICAS",
)
SECRET_KEY = "a-very-secret-api-key"
REMOTE_ES = "https://es.example.com:9200"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no `.env` of the checkout


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def refused(**values: Any) -> str:
    """The message of the ValidationError that building Settings with `values` raises."""
    with pytest.raises(ValidationError) as exc:
        settings(**values)
    return str(exc.value)


def entry(**fields: Any) -> dict[str, Any]:
    return {"key": SECRET_KEY, "scopes": ["read"], **fields}


# -- INDEX_SHARDS / INDEX_REPLICAS ---------------------------------------------------------


def test_index_layout_settings_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INDEX_SHARDS", '{"orders": 3, "order-items": 3, "*": 2}')
    monkeypatch.setenv("INDEX_REPLICAS", "0")
    parsed = settings()
    assert parsed.index_shards == {"orders": 3, "order-items": 3, "*": 2}
    assert parsed.index_replicas == {"*": 0}
    assert settings(index_shards=None).index_shards == {}


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("index_shards", '{"order": 3}', "INDEX_SHARDS: unknown index family 'order'"),
        ("index_shards", "0", "INDEX_SHARDS: * must be a whole number from 1 to 1024"),
        ("index_shards", '{"orders": true}', "INDEX_SHARDS: orders must be a whole number from 1 to 1024"),
        ("index_shards", '{"orders": 2.5}', "INDEX_SHARDS: orders must be a whole number"),
        ("index_shards", "[3]", "INDEX_SHARDS must be a number or a JSON object"),
        ("index_replicas", "-1", "INDEX_REPLICAS: * must be a whole number from 0 to 1024"),
        ("index_replicas", "{", "INDEX_REPLICAS is not valid JSON"),
    ],
)
def test_bad_index_layout_settings_fail_naming_the_setting(name: str, value: str, message: str) -> None:
    assert message in refused(**{name: value})


# -- API_KEYS --------------------------------------------------------------------------


def test_api_keys_are_parsed_into_entries(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    keys = [entry(store_id="s1", name="analyst"), {"key": "sha256:" + "ab" * 32, "scopes": ["ingest", "admin"]}]
    parsed = settings(api_keys=json.dumps(keys)).api_keys
    assert [(k.scopes, k.store_id, k.name) for k in parsed] == [
        (["read"], "s1", "analyst"),
        (["ingest", "admin"], None, None),
    ]
    assert parsed[0].key.get_secret_value() == SECRET_KEY
    # From the environment, as a JSON list or as @path to a file holding one.
    monkeypatch.setenv("API_KEYS", json.dumps(keys))
    assert len(settings().api_keys) == 2
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(keys))
    monkeypatch.setenv("API_KEYS", f"@{path}")
    assert [k.digest for k in settings().api_keys] == [k.digest for k in parsed]


@pytest.mark.parametrize("value", ["", "[]"])
def test_no_api_keys(value: str) -> None:
    assert settings(api_keys=value).api_keys == []
    assert settings().api_keys == []


def test_the_keyring_is_built_from_the_parsed_entries() -> None:
    digest = "sha256:" + hashlib.sha256(b"hashed-key-123").hexdigest()
    ring = KeyRing(
        settings(api_keys=json.dumps([entry(store_id="s1", name="a"), {"key": digest, "scopes": ["admin"]}])).api_keys
    )
    principal = ring.authenticate(SECRET_KEY)
    assert principal is not None and principal.scopes == {"read"}
    assert principal.store_id == "s1" and principal.name == "a"
    admin = ring.authenticate("hashed-key-123")
    assert admin is not None and admin.has("reports")
    assert ring.authenticate(digest) is None and ring.authenticate("unknown-key") is None


@pytest.mark.parametrize("value", ["[{", "not json", '{"key": "abcdefgh"', "[1,]"])
def test_api_keys_that_are_not_json_fail(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "API_KEYS is not valid JSON" in refused(api_keys=value)
    monkeypatch.setenv("API_KEYS", value)
    assert "API_KEYS is not valid JSON" in refused()


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"key": SECRET_KEY, "scopes": ["read"]}, "API_KEYS: Input should be a valid list"),
        (["just-a-key-string"], "API_KEYS entry 0: Input should be a valid dictionary"),
        (
            [entry(scopes=["write"])],
            "API_KEYS entry 0, scopes.0: Input should be 'ingest', 'read', 'reports' or 'admin'",
        ),
        ([entry(), entry(key="short")], "API_KEYS entry 1, key: keys must be at least 8 characters"),
        ([entry(key="sha256:abc")], "API_KEYS entry 0, key: a sha256: key must carry 64 hex digits"),
        ([entry(store_id="acme:eu")], "API_KEYS entry 0, store_id: must be 1-64 characters"),
        ([entry(store_id="")], "API_KEYS entry 0, store_id: must be 1-64 characters"),
        ([{"key": SECRET_KEY}], "API_KEYS entry 0, scopes: Field required"),
        ([entry(scope=["read"])], "API_KEYS entry 0, scope: Extra inputs are not permitted"),
        ([entry(), entry(scopes=["admin"])], "API_KEYS entries 0 and 1 have the same key"),
        (
            [entry(), {"key": "sha256:" + hashlib.sha256(SECRET_KEY.encode()).hexdigest(), "scopes": ["admin"]}],
            "API_KEYS entries 0 and 1 have the same key",
        ),
    ],
)
def test_bad_api_key_entries_fail_naming_the_entry(keys: Any, message: str) -> None:
    text = refused(api_keys=json.dumps(keys))
    assert message in text
    assert SECRET_KEY not in text  # neither the key nor the raw setting is echoed


def test_an_unreadable_api_keys_file_fails(tmp_path: Path) -> None:
    assert f"API_KEYS: cannot read {tmp_path / 'missing.json'}" in refused(api_keys=f"@{tmp_path / 'missing.json'}")
    (tmp_path / "bad.json").write_text("[{")
    assert "API_KEYS is not valid JSON" in refused(api_keys=f"@{tmp_path / 'bad.json'}")


# -- STORE_TIMEZONES ---------------------------------------------------------------------


def test_store_timezones_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORE_TIMEZONES", '{"br": "America/Sao_Paulo"}')
    parsed = settings(default_timezone="Europe/Berlin")
    assert parsed.store_timezones == {"br": "America/Sao_Paulo"}
    assert parsed.store_timezone("br").key == "America/Sao_Paulo"
    assert parsed.store_timezone("other").key == "Europe/Berlin"
    assert settings(store_timezones="").store_timezones == {}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"br": "America/Sao_Paulo"', "STORE_TIMEZONES is not valid JSON"),
        ('["America/Sao_Paulo"]', "STORE_TIMEZONES must be a JSON object"),
        ('{"br": "Mars/Olympus"}', "STORE_TIMEZONES: unknown time zone 'Mars/Olympus' for store 'br'"),
        ('{"br": "America"}', "STORE_TIMEZONES: unknown time zone 'America' for store 'br'"),
        ('{"br": "../etc/passwd"}', "STORE_TIMEZONES: unknown time zone '../etc/passwd' for store 'br'"),
        ('{"br": -3}', "STORE_TIMEZONES: the zone of store 'br' must be a string"),
        ('{"acme:eu": "UTC"}', "STORE_TIMEZONES: store id 'acme:eu' must be 1-64 characters"),
    ],
)
def test_bad_store_timezones_fail_naming_the_setting(value: str, message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert message in refused(store_timezones=value)
    monkeypatch.setenv("STORE_TIMEZONES", value)
    assert message in refused()


# -- SIGNING_SECRET: the default only in local development -------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        {},  # every service on this machine: the Quick start and the tests
        {
            "database_url": "postgresql+psycopg://postgres@127.0.0.1:5432/analytics",
            "redis_url": "redis://localhost:6379/0",
        },
        {"elasticsearch_url": "http://[::1]:9200", "database_url": "postgresql+psycopg:///analytics"},  # Unix socket
        {"app_env": "development", "elasticsearch_url": REMOTE_ES},
        {"app_env": "Development", "redis_url": "redis://cache:6379/0"},
    ],
)
def test_the_default_secret_is_accepted_in_local_development(values: dict[str, str]) -> None:
    built = settings(**values)
    assert built.is_local_development
    assert built.signing_secret.get_secret_value() == "change-me"


@pytest.mark.parametrize(
    "values",
    [
        {"elasticsearch_url": REMOTE_ES},
        {"elasticsearch_url": "http://elasticsearch:9200"},  # the Compose file's
        {"database_url": "postgresql+psycopg://analytics:pw@postgres:5432/analytics"},
        {"redis_url": "redis://redis:6379/0"},
        {"app_env": "production"},
        {"app_env": "production", "signing_secret": ""},
        {"elasticsearch_url": REMOTE_ES, "signing_secret": ""},
    ],
)
def test_the_default_secret_is_refused_elsewhere(values: dict[str, str]) -> None:
    assert "SIGNING_SECRET must be set" in refused(**values)


def test_the_default_secret_is_refused_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    assert "SIGNING_SECRET must be set" in refused()
    monkeypatch.setenv("SIGNING_SECRET", "change-me")
    assert "SIGNING_SECRET must be set" in refused()
    monkeypatch.setenv("SIGNING_SECRET", "a-long-random-secret")
    assert settings().signing_secret.get_secret_value() == "a-long-random-secret"


def test_a_real_secret_is_accepted_anywhere() -> None:
    built = settings(elasticsearch_url=REMOTE_ES, signing_secret="a-long-random-secret")
    assert not built.is_local_development
    assert settings(app_env="production", signing_secret="s3cr3t-value").app_env == "production"


def test_an_unknown_app_env_fails() -> None:
    assert "app_env" in refused(app_env="staging")


# -- secrets never shown -----------------------------------------------------------------------


def test_secrets_do_not_appear_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELASTICSEARCH_PASSWORD", "es-password-value")
    monkeypatch.setenv("ELASTICSEARCH_API_KEY", "es-api-key-value")
    monkeypatch.setenv("SIGNING_SECRET", "signing-secret-value")
    monkeypatch.setenv("API_KEYS", json.dumps([entry()]))
    built = settings(elasticsearch_username="elastic")
    for text in (repr(built), str(built), repr(built.api_keys), built.model_dump_json()):
        for secret in ("es-password-value", "es-api-key-value", "signing-secret-value", SECRET_KEY):
            assert secret not in text
    # The clients still get them.
    assert built.es_client_options()["api_key"] == "es-api-key-value"
    assert built.signing_secret.get_secret_value() == "signing-secret-value"
    assert settings(
        elasticsearch_username="elastic", elasticsearch_password="pw", elasticsearch_api_key=None
    ).es_client_options()["basic_auth"] == ("elastic", "pw")


def test_the_command_line_names_bad_settings_without_their_values(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("API_KEYS", json.dumps([entry(scopes=["write"])]))
    monkeypatch.setenv("ELASTICSEARCH_URL", REMOTE_ES)
    assert main(["setup"]) == 2
    err = capsys.readouterr().err
    assert "invalid settings" in err and "API_KEYS entry 0, scopes.0" in err
    assert SECRET_KEY not in err
    monkeypatch.setenv("API_KEYS", json.dumps([entry()]))
    assert main(["setup"]) == 2
    assert "SIGNING_SECRET must be set" in capsys.readouterr().err
