"""Sending one delivery: an e-mail over SMTP or a signed webhook POST, from the delivery's payload.

Webhooks: the body is JSON (our payload, or a Slack-compatible message with `format: slack`),
with `X-Timestamp: <unix seconds>` and `X-Signature: sha256=<hex HMAC-SHA256 of
"<timestamp>.<body>">` keyed by WEBHOOK_SIGNING_SECRET, and `X-Delivery-ID` (the same on every
attempt: receivers drop repeats by it). A 2xx answer is delivered; anything else, or no
answer, is an attempt that failed (`SendFailed`), retried with backoff by the worker; a
redirect is not followed (it could lead to an address the SSRF check refuses).

E-mail: SMTP_URL (`smtp://host:port`, or `smtps://user:pass@host:port` for TLS from the first
byte; SMTP_STARTTLS upgrades a plain connection), from SMTP_FROM; an HTML body (and a plain
text one) with the key figures; a report's file is attached up to SMTP_MAX_ATTACHMENT_BYTES,
and linked by its signed download URL either way.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import smtplib
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import orjson

from ..config import Settings
from ..reports.renderers.values import display, money_text, period_label
from .rules import TargetRefused, TargetUnresolved, check_public_target
from .tables import Delivery

WEBHOOK_TIMEOUT_SECONDS = 10.0
USER_AGENT = "store-analytics-notifications/1"


class SendFailed(Exception):
    """An attempt that did not deliver; `permanent`: trying again cannot help (e.g. a refused target)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, "<timestamp>.<body>")."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


# -- what a notification says -------------------------------------------------------------


def _value_text(value: Any, kind: str, currency: str) -> str:
    return money_text(value, currency) if kind == "money" else display(value, kind)  # type: ignore[arg-type]


def _measure(name: str) -> tuple[str, str]:
    """(label, kind) of an alert measure."""
    from .measures import MEASURES

    spec = MEASURES.get(name)
    return (spec.label, spec.kind) if spec is not None else (name, "number")


def _window_text(window: dict[str, str]) -> str:
    """`2026-12-07 13:00 – 14:00 UTC` (or both dates when the window spans days)."""
    start, end = (datetime.fromisoformat(window[k].replace("Z", "+00:00")).astimezone(UTC) for k in ("start", "end"))
    if start.date() == end.date() or end == datetime.combine(start.date(), dtime(0), UTC) + timedelta(days=1):
        return f"{start:%Y-%m-%d %H:%M} – {end:%H:%M} UTC"
    return f"{start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} UTC"


def alert_lines(payload: dict[str, Any], currency: str) -> list[str]:
    """One sentence per event of an alert payload."""
    alert = payload["alert"]
    label, kind = _measure(alert["measure"])
    lines = []
    for event in payload["events"]:
        subject = f" for product {event['subject']}" if event.get("subject") else ""
        value = _value_text(event.get("value"), kind, currency)
        verb = "fired" if event["kind"] == "fired" else "resolved"
        extra = ""
        if event.get("change") is not None:
            unit = "%" if alert["condition"].get("unit", "pct") == "pct" else ""
            reference = _value_text(event.get("reference"), kind, currency)
            extra = f" ({event['change']:+.2f}{unit} against {reference})"
        elif event.get("band"):
            low, high = event["band"]
            extra = f" (expected {_value_text(low, kind, currency)} – {_value_text(high, kind, currency)})"
        lines.append(f"{alert['name']} {verb}{subject}: {label} {value}{extra}, {_window_text(event['window'])}")
    return lines


def subject_line(payload: dict[str, Any]) -> str:
    if payload["type"] == "alert":
        events = payload["events"]
        fired = sum(e["kind"] == "fired" for e in events)
        state = "fired" if fired else "resolved"
        store = f" [{payload['store_id']}]" if payload.get("store_id") else ""
        many = f" ({len(events)} changes)" if len(events) > 1 else ""
        return f"Alert {state}{store}: {payload['alert']['name']}{many}"
    report = payload["report"]
    if payload["type"] == "report_failed":
        return f"Report failed: {report['report_name']}"
    return f"Report: {report['report_name']}"


def kpi_rows(payload: dict[str, Any]) -> list[tuple[str, str, str, str, bool | None]]:
    """(label, value, previous, change, whether the change is good news) of a report payload's
    KPIs, as people read them."""
    currency = payload.get("currency") or "USD"
    rows = []
    for k in payload.get("kpis") or []:
        change, moved = "", None
        if k.get("change_pp") is not None and k["kind"] == "rate":
            change, moved = display(k["change_pp"], "pp"), k["change_pp"]
        elif k.get("growth_pct") is not None:
            change, moved = display(k["growth_pct"], "pct"), k["growth_pct"]
        good = None if not moved else (moved > 0) == bool(k.get("up_is_good", True))
        previous = _value_text(k.get("previous"), k["kind"], currency) if k.get("previous") is not None else ""
        rows.append((k["label"], _value_text(k.get("value"), k["kind"], currency), previous, change, good))
    return rows


def _period_text(report: dict[str, Any]) -> str:
    return period_label(report.get("period") or {})


def text_body(payload: dict[str, Any]) -> str:
    if payload["type"] == "alert":
        return "\n".join(alert_lines(payload, payload.get("currency") or "USD")) + "\n"
    report = payload["report"]
    lines = [
        f"{report['report_name']} ({report['report_type']}, {report['format']})",
        f"Period: {_period_text(report)}",
    ]
    if payload["type"] == "report_failed":
        lines.append(f"The report could not be generated: {report.get('error') or 'unknown error'}")
    for label, value, previous, change, _ in kpi_rows(payload):
        lines.append(f"{label}: {value}" + (f" (previous {previous}, {change})" if previous or change else ""))
    if report.get("download_url"):
        lines.append(f"Download (until {report.get('expires_at')}): {report['download_url']}")
    return "\n".join(lines) + "\n"


_FONT = "font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#1f2430"
_CELL = "padding:6px 10px;border-bottom:1px solid #e3e6ee"
_COLOURS = {True: "#1e8e3e", False: "#c0392b", None: "#6b7385"}


def html_body(payload: dict[str, Any]) -> str:
    """A small HTML page with inline styles (mail clients drop style sheets)."""
    e = html.escape
    title = f"<h2 style='margin:0 0 4px;font-size:20px'>{e(subject_line(payload))}</h2>"
    if payload["type"] == "alert":
        items = "".join(
            f"<li style='margin:6px 0'>{e(line)}</li>"
            for line in alert_lines(payload, payload.get("currency") or "USD")
        )
        return f"<html><body style=\"{_FONT}\">{title}<ul style='padding-left:18px'>{items}</ul></body></html>"
    report = payload["report"]
    parts = [title, f"<p style='margin:0 0 14px;color:#6b7385'>{e(_period_text(report))}</p>"]
    if payload["type"] == "report_failed":
        parts.append(f"<p><strong>The report could not be generated:</strong> {e(report.get('error') or '')}</p>")
    rows = kpi_rows(payload)
    if rows:
        cells = "".join(
            f"<tr><td style='{_CELL}'>{e(label)}</td>"
            f"<td style='{_CELL};text-align:right;font-weight:600'>{e(value)}</td>"
            f"<td style='{_CELL};text-align:right;color:#6b7385'>{e(previous)}</td>"
            f"<td style='{_CELL};text-align:right;color:{_COLOURS[good]}'>{e(change)}</td></tr>"
            for label, value, previous, change, good in rows
        )
        head = "".join(
            f"<th style='{_CELL};text-align:{align};color:#6b7385;font-weight:600'>{name}</th>"
            for name, align in (("Figure", "left"), ("Value", "right"), ("Previous", "right"), ("Change", "right"))
        )
        parts.append(f"<table style='border-collapse:collapse;font-size:14px'><tr>{head}</tr>{cells}</table>")
    if report.get("download_url"):
        parts.append(
            f"<p style='margin-top:16px'><a href='{e(report['download_url'])}' style='color:#2f5bea'>Download the "
            f"report</a> <span style='color:#6b7385'>(link valid until {e(str(report.get('expires_at')))})</span></p>"
        )
    return f'<html><body style="{_FONT}">' + "".join(parts) + "</body></html>"


def slack_message(payload: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message: `text` (the fallback) and `blocks`."""
    title = subject_line(payload)
    body = text_body(payload)
    return {
        "text": f"{title}\n{body}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body[:2900]}},
        ],
    }


# -- senders ------------------------------------------------------------------------------


def pinned(url: str, address: str) -> tuple[str, str, dict[str, Any]]:
    """(the URL with `address` for its host, the Host header, the request's TLS server name):
    the host in its ASCII form (an internationalised name as punycode), an IPv6 literal in
    brackets, the port only when the URL gives one."""
    parsed = httpx.URL(url)
    host = parsed.raw_host.decode("ascii")
    host_header = (f"[{host}]" if ":" in host else host) + (f":{parsed.port}" if parsed.port else "")
    return str(parsed.copy_with(host=address)), host_header, {"sni_hostname": host}


def target_label(delivery: Delivery) -> str:
    """Where a delivery goes, for logs: an address, or a webhook's scheme and host only (the
    rest of a webhook URL is often its credential, e.g. Slack's)."""
    if delivery.channel == "email":
        return delivery.target
    parts = urlsplit(delivery.target)
    return f"{parts.scheme}://{parts.hostname}/…"


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    implicit_tls: bool
    username: str | None
    password: str | None


def smtp_target(url: str) -> SmtpTarget:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("SMTP_URL must be smtp://host:port or smtps://user:password@host:port")
    return SmtpTarget(
        host=parts.hostname,
        port=parts.port or (465 if parts.scheme == "smtps" else 25),
        implicit_tls=parts.scheme == "smtps",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


class Sender:
    """Sends deliveries with the service's settings."""

    def __init__(self, settings: Settings, reports_dir: Path) -> None:
        self.settings = settings
        self.reports_dir = Path(reports_dir)

    async def send(self, delivery: Delivery, attachment: Path | None = None) -> None:
        if delivery.channel == "webhook":
            await self.webhook(delivery)
        else:
            await asyncio.to_thread(self.email, delivery, attachment)

    async def webhook(self, delivery: Delivery) -> None:
        allow_private = self.settings.webhook_allow_private_targets
        try:
            addresses = await asyncio.to_thread(check_public_target, delivery.target, allow_private)
        except TargetUnresolved as exc:  # DNS may answer later: retried
            raise SendFailed(str(exc)) from None
        except TargetRefused as exc:
            raise SendFailed(str(exc), permanent=True) from None
        key = self.settings.webhook_secret
        if key is None:
            raise SendFailed("WEBHOOK_SIGNING_SECRET is not set: webhooks are not sent unsigned", permanent=True)
        payload = delivery.payload
        message = (
            slack_message(payload)
            if (delivery.options or {}).get("format") == "slack"
            else {"delivery_id": delivery.delivery_id, **payload}
        )
        body = orjson.dumps(message)
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Timestamp": stamp,
            "X-Signature": signature(key.get_secret_value(), stamp, body),
            "X-Delivery-ID": delivery.delivery_id,
        }
        # Connect to an address just checked, not to a second resolution that could answer
        # otherwise (DNS rebinding); the host still names the site (Host header, TLS SNI and
        # certificate check). No proxy from the environment then: a tunnel would not keep the name.
        targets: list[tuple[str, dict[str, str], dict[str, Any]]] = [(delivery.target, headers, {})]
        if not allow_private:
            targets = []
            for address in addresses:
                url, host_header, extensions = pinned(delivery.target, address)
                targets.append((url, {**headers, "Host": host_header}, extensions))
        answer = None
        async with httpx.AsyncClient(
            timeout=WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False, trust_env=allow_private
        ) as client:
            for index, (url, request_headers, extensions) in enumerate(targets):
                try:
                    answer = await client.post(url, content=body, headers=request_headers, extensions=extensions)
                    break
                except httpx.ConnectError as exc:
                    if index == len(targets) - 1:  # every address refused the connection
                        raise SendFailed(f"{type(exc).__name__}: {exc}") from None
                except httpx.HTTPError as exc:
                    raise SendFailed(f"{type(exc).__name__}: {exc}") from None
        assert answer is not None
        if not 200 <= answer.status_code < 300:
            raise SendFailed(f"HTTP {answer.status_code}: {answer.text[:200]}")

    def email(self, delivery: Delivery, attachment: Path | None) -> None:
        s = self.settings
        if not s.smtp_url:
            raise SendFailed('SMTP_URL is not set: e-mail cannot be sent (docs/alerts.md "E-mail")')
        target = smtp_target(s.smtp_url.get_secret_value())
        payload = delivery.payload
        message = EmailMessage()
        message["Subject"] = subject_line(payload)
        message["From"] = s.smtp_from
        message["To"] = delivery.target
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(idstring=delivery.delivery_id)
        message.set_content(text_body(payload))
        message.add_alternative(html_body(payload), subtype="html")
        if attachment is not None:
            report = payload["report"]
            message.add_attachment(
                attachment.read_bytes(),
                maintype=report["media_type"].split("/")[0],
                subtype=report["media_type"].split("/")[1].split(";")[0],
                filename=report["filename"],
            )
        context = ssl.create_default_context()
        if not s.smtp_tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        try:
            smtp: smtplib.SMTP
            if target.implicit_tls:
                smtp = smtplib.SMTP_SSL(target.host, target.port, timeout=s.smtp_timeout_seconds, context=context)
            else:
                smtp = smtplib.SMTP(target.host, target.port, timeout=s.smtp_timeout_seconds)
            with smtp:
                if s.smtp_starttls and not target.implicit_tls:
                    smtp.starttls(context=context)
                if target.username:
                    smtp.login(target.username, target.password or "")
                refused = smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            raise SendFailed(f"the server refused the recipient: {exc.recipients}", permanent=True) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise SendFailed(f"{type(exc).__name__}: {exc}") from None
        if refused:
            raise SendFailed(f"the server refused the recipient: {refused}", permanent=True)
