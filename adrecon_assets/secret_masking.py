"""Secrets (contract 1): every URL or key setting reaches resources as `dg.EnvVar` (the UI shows
the variable's name, never its value) and is masked in every log line and error message.

`mask_secrets` is the one masking function: it replaces the values of the secret settings of
the environment (and URLs given to it), their URL passwords, and any password it sees in a
`scheme://user:password@` URL or a `password=` parameter, because drivers echo connection
strings in their errors. `install_log_masking` applies it to every log record the process
makes (Dagster's event log and console included), so a message that quotes an error is masked
too, whoever logs it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import dagster as dg

from adrecon_assets.settings import SECRET_VARIABLES

MASK = "***"
# Shorter values are not masked on their own (they would mangle ordinary words); inside a URL
# the pattern below still masks them.
MIN_MASKED_LENGTH = 4
URL_PASSWORD = re.compile(r"\b([a-z][a-z0-9+.\-]*://[^\s/:@]*:)[^\s/@]+(?=@)", re.IGNORECASE)
# libpq's key=value form (`host=db password=...`) and a password query parameter.
PASSWORD_PARAMETER = re.compile(r"\b(password\s*=\s*)('[^']*'|[^\s&;]+)", re.IGNORECASE)


def url_password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def masked_url(url: str) -> str:
    """`url` with its password replaced by ***, safe for logs, metadata and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = f"{parts.username}:{MASK}" if parts.username else MASK
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{netloc[-1]}"))


def replacements(secrets: Iterable[str]) -> dict[str, str]:
    """What each secret becomes: a URL with a password its masked form (where the data is stays
    readable), any other secret (a webhook URL, a key) and each password `***`."""
    result: dict[str, str] = {}
    for secret in secrets:
        password = url_password(secret)
        if password:
            result[secret] = masked_url(secret)
            result[password] = MASK
            result[unquote(password)] = MASK
        else:
            result[secret] = MASK
    return {value: mask for value, mask in result.items() if len(value) >= MIN_MASKED_LENGTH}


def environment_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of the secret settings that are set (contract 1: every URL and key)."""
    env = os.environ if environ is None else environ
    return [value for name in SECRET_VARIABLES if (value := env.get(name, "").strip())]


def mask_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every secret of the environment and of `secrets` masked (longest first, so a
    URL goes before its password), and any URL password left."""
    masks = replacements([*environment_secrets(), *secrets])
    for value in sorted(masks, key=len, reverse=True):
        text = text.replace(value, masks[value])
    text = URL_PASSWORD.sub(rf"\1{MASK}", text)
    return PASSWORD_PARAMETER.sub(rf"\1{MASK}", text)


def secret_env(variable: str, value: str | None) -> str | dg.EnvVar:
    """How a secret setting reaches a resource: as `dg.EnvVar(variable)` when set, resolved
    only where the resource runs, so the UI's resource config shows the name; else ''."""
    if variable not in SECRET_VARIABLES:
        raise ValueError(f"{variable} is not a secret setting")
    return dg.EnvVar(variable) if value else ""


def masked_record(record: logging.LogRecord) -> logging.LogRecord:
    """`record` with secrets masked in its message and its exception text."""
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # a malformed call: logging reports it itself
        return record
    masked = mask_secrets(message)
    if masked != message:
        record.msg, record.args = masked, None
    if record.exc_info and not record.exc_text:
        record.exc_text = mask_secrets(logging.Formatter().formatException(record.exc_info))
    return record


def install_log_masking() -> None:
    """Mask secrets in every log record this process makes from now on (idempotent).

    A record factory, not a handler filter: Dagster adds and removes its handlers per run, and
    a logger's filters do not apply to records of its children."""
    current = logging.getLogRecordFactory()
    if getattr(current, "masks_secrets", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return masked_record(current(*args, **kwargs))

    factory.masks_secrets = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
