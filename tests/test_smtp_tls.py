"""E-mail over TLS with a real SMTP server (aiosmtpd) in the test process: STARTTLS on
smtp:// with a login, TLS from the first byte on smtps://, and a certificate that is not
trusted refused unless SMTP_TLS_VERIFY=false. The server's self-signed certificate for
127.0.0.1 (tests/fixtures/smtp-tls.crt, its key beside it) exists for these tests only."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from analytics_service.config import Settings
from analytics_service.devtools.local_servers import free_port
from analytics_service.notifications.channels import Sender, SendFailed
from analytics_service.notifications.tables import Delivery

FIXTURES = Path(__file__).parent / "fixtures"
USER, PASSWORD = "alerts@example.com", "app password"


@contextmanager
def tls_smtp(implicit: bool) -> Iterator[tuple[int, list, list]]:
    """aiosmtpd with TLS (STARTTLS required, or implicit) and a login: (port, messages, logins)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message
    from aiosmtpd.smtp import AuthResult, LoginPassword

    received: list = []
    logins: list = []

    class Keep(Message):
        def handle_message(self, message) -> None:  # type: ignore[override]
            received.append(message)

    def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login.decode(), auth_data.password.decode()) == (
            USER,
            PASSWORD,
        )
        logins.append((mechanism, ok))
        return AuthResult(success=ok)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(FIXTURES / "smtp-tls.crt", FIXTURES / "smtp-tls.key")
    port = free_port()
    # With TLS from the first byte aiosmtpd does not know the session is encrypted, so it is told
    # not to wait for STARTTLS before offering AUTH.
    options = (
        {"ssl_context": context, "auth_require_tls": False}
        if implicit
        else {"tls_context": context, "require_starttls": True, "auth_require_tls": True}
    )
    controller = Controller(Keep(), hostname="127.0.0.1", port=port, authenticator=authenticate, **options)
    controller.start()
    try:
        yield port, received, logins
    finally:
        controller.stop()


def delivery() -> Delivery:
    payload = {
        "type": "alert",
        "store_id": "default",
        "alert": {"name": "TLS check", "measure": "orders", "condition": {"type": "threshold"}},
        "events": [
            {"kind": "fired", "value": 12, "window": {"start": "2026-12-07T10:00:00Z", "end": "2026-12-07T10:01:00Z"}}
        ],
    }
    return Delivery(
        delivery_id="d" * 32,
        channel="email",
        target="owner@example.com",
        kind="alert",
        payload=payload,
        options={},
        attempts=1,
        created_at=datetime.now(UTC),
    )


def settings(url: str, **overrides) -> Settings:
    return Settings(smtp_url=url, smtp_from="analytics@example.com", app_env="development", **overrides)


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "smtps"])
def test_an_email_goes_over_tls_with_a_login(implicit, tmp_path):
    with tls_smtp(implicit) as (port, received, logins):
        scheme = "smtps" if implicit else "smtp"
        url = f"{scheme}://alerts%40example.com:app%20password@127.0.0.1:{port}"
        sender = Sender(settings(url, smtp_starttls=not implicit, smtp_tls_verify=False), tmp_path)
        sender.email(delivery(), None)
    (message,) = received
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed["To"] == "owner@example.com" and parsed["Subject"] == "Alert fired [default]: TLS check"
    assert "TLS check fired: Orders 12" in parsed.get_body(preferencelist=("plain",)).get_content()
    assert logins and all(ok for _, ok in logins)


def test_an_untrusted_certificate_is_refused_when_verified(tmp_path):
    with tls_smtp(implicit=True) as (port, received, _):
        sender = Sender(settings(f"smtps://alerts%40example.com:x@127.0.0.1:{port}"), tmp_path)
        with pytest.raises(SendFailed) as failed:
            sender.email(delivery(), None)
    assert "CERTIFICATE_VERIFY_FAILED" in str(failed.value) and not failed.value.permanent
    assert received == []


def test_a_server_that_requires_starttls_refuses_a_plain_session(tmp_path):
    with tls_smtp(implicit=False) as (port, received, _):
        sender = Sender(settings(f"smtp://127.0.0.1:{port}"), tmp_path)
        with pytest.raises(SendFailed):
            sender.email(delivery(), None)
    assert received == []
