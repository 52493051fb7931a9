"""A real SMTP server for the alert e-mail tests: aiosmtpd on 127.0.0.1, optionally with
AUTH, STARTTLS or implicit TLS (a self-signed certificate for `localhost`)."""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from adrecon_assets_tests.webhook import free_port

HOST = "localhost"


@dataclass
class SmtpSink:
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate and key for `localhost`/127.0.0.1 (trust it with SSL_CERT_FILE)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp.crt", folder / "smtp.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@contextmanager
def smtp_server(
    password: str | None = None,
    tls: str | None = None,
    certificate: tuple[Path, Path] | None = None,
) -> Iterator[SmtpSink]:
    """Collects every message. `password`: AUTH required (any user); `tls`: "starttls" or
    "implicit" with `certificate`. Stopped when the block ends."""
    sink = SmtpSink(port=free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            message = message_from_bytes(envelope.content, policy=policy.default)
            assert isinstance(message, EmailMessage)
            sink.messages.append(message)
            return "250 OK"

    def authenticate(
        server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password.decode() == password
        if ok:
            sink.logins.append(data.login.decode())
        return AuthResult(success=ok)

    context = None
    if tls:
        assert certificate is not None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*certificate)
    options: dict[str, Any] = {}
    if password is not None:
        options.update(authenticator=authenticate, auth_require_tls=False, auth_required=True)
    if tls == "starttls":
        options.update(tls_context=context, require_starttls=True)
    controller = Controller(
        Handler(),
        hostname=HOST,
        port=sink.port,
        ssl_context=context if tls == "implicit" else None,
        **options,
    )
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()
