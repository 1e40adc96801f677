"""HTTP for provider adapters: a session per worker thread, timeouts, and status classes.

Error messages name the host, never the URL: provider URLs can carry credentials (Telegram puts
the bot token in the path).
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Collection
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests

import settings
from channels.base import DeadAddress, PermanentError, TransientError
from models.base import utcnow
from models.states import FailureReason

#: Statuses worth retrying: timeouts, early data, rate limits and server errors.
TRANSIENT_STATUSES = frozenset({408, 425, 429})

_local = threading.local()


def session() -> requests.Session:
    """This thread's session: keeps connections to each provider open between messages."""
    current = getattr(_local, "session", None)
    if current is None:
        current = _local.session = requests.Session()
        # Without proxy variables in the environment, requests' per-request look-ups of them
        # (and of ~/.netrc) are a tenth of a webhook's CPU and find nothing: skip them.
        current.trust_env = bool(urllib.request.getproxies())
    return current


def close_session() -> None:
    current = getattr(_local, "session", None)
    _local.session = None
    if current is not None:
        current.close()


def call(method: str, url: str, **kwargs) -> requests.Response:
    """Make a request; connection failures and timeouts become :class:`TransientError`."""
    kwargs.setdefault("timeout", settings.OUTBOUND_TIMEOUT_SECONDS)
    kwargs.setdefault("allow_redirects", False)
    try:
        return session().request(method, url, **kwargs)
    except requests.Timeout:
        raise TransientError(f"timed out calling {host(url)}") from None
    except requests.RequestException as error:
        raise TransientError(f"cannot reach {host(url)}: {type(error).__name__}") from None


def host(url: str) -> str:
    return urlsplit(url).hostname or "?"


def retry_after(response: requests.Response) -> float | None:
    """The Retry-After header in seconds (delta-seconds or an HTTP date), if present."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - utcnow()).total_seconds())
    except (TypeError, ValueError):
        return None


def snippet(response: requests.Response, limit: int = 300) -> str:
    return response.text[:limit].replace("\n", " ")


def json_object(response: requests.Response) -> dict[str, Any]:
    """The response body as a JSON object, or ``{}`` when it is not one."""
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def raise_for_status(
    response: requests.Response,
    *,
    dead: Collection[int] = (),
    reason: FailureReason = FailureReason.REJECTED_BY_PROVIDER,
) -> None:
    """Classify a provider's HTTP answer: 2xx returns; 408/425/429/5xx are transient (honouring
    Retry-After); statuses in ``dead`` mean the address is gone; any other 4xx fails with
    ``reason``."""
    status = response.status_code
    if 200 <= status < 300:
        return
    message = f"{host(response.url)} answered {status}: {snippet(response)}"
    if status in TRANSIENT_STATUSES or status >= 500:
        raise TransientError(message, retry_after=retry_after(response))
    if status in dead:
        raise DeadAddress(message)
    raise PermanentError(reason, message)
