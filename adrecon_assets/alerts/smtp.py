"""Sending e-mail to ADRECON_SMTP_URL: `smtp://` (plain, or `?starttls=true`) or `smtps://`
(implicit TLS), with the user and password of the URL if it has them."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_PORTS = {"smtp": 25, "smtps": 465}


class SmtpUrlError(ValueError):
    """An ADRECON_SMTP_URL that is not smtp:// or smtps:// (the message never holds the URL)."""


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise SmtpUrlError("ADRECON_SMTP_URL must be smtp://host:port or smtps://host:port")
        starttls = parse_qs(parts.query).get("starttls", ["false"])[0].lower() == "true"
        return cls(
            host=parts.hostname,
            port=parts.port or DEFAULT_PORTS[parts.scheme],
            implicit_tls=parts.scheme == "smtps",
            starttls=starttls,
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    def send(self, message: EmailMessage, timeout_seconds: float) -> None:
        """Deliver `message`; raises smtplib/OSError errors (the caller logs them, no URL)."""
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if self.implicit_tls:
            client = smtplib.SMTP_SSL(
                self.host, self.port, timeout=timeout_seconds, context=context
            )
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=timeout_seconds)
        with client:
            if self.starttls:
                client.starttls(context=context)
            if self.user:
                client.login(self.user, self.password or "")
            client.send_message(message)
