"""One JSON POST with bounded retries, shared by the webhook and PagerDuty channels.

Never raises: an alerting outage must not fail or stall the pipeline. A failure is logged with
the channel's name and never its URL (a webhook URL carries its token, contract 1).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import dagster as dg
import requests

LOGGER_NAME = "adrecon.alerts"


@dataclass(frozen=True)
class RetryPolicy:
    timeout_seconds: float = 5.0
    max_attempts: int = 3
    backoff_seconds: float = 0.5


def post_json(channel: str, url: str, body: dict[str, Any], policy: RetryPolicy) -> str | None:
    """POST `body` to `url`; None once accepted, else what went wrong (without the URL).

    5xx, 429 and connection errors are retried with exponential backoff; another 4xx is not
    (the sink rejected this body; sending it again will not help)."""
    problem = ""
    for attempt in range(policy.max_attempts):
        if attempt:
            time.sleep(policy.backoff_seconds * 2 ** (attempt - 1))
        try:
            response = requests.post(url, json=body, timeout=policy.timeout_seconds)
        except requests.RequestException as error:
            # The exception's text names the URL: only its type is kept.
            problem = type(error).__name__
            continue
        if response.ok:
            return None
        problem = f"HTTP {response.status_code}"
        if response.status_code < 500 and response.status_code != 429:
            break
    failure = f"{channel} failed after {attempt + 1} attempts ({problem})"
    dg.get_dagster_logger(LOGGER_NAME).error(failure)
    return failure
