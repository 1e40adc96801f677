"""HTTP for channel adapters: sessions per worker thread, timeouts, and status classes.

Two kinds of call. :func:`call` is for the providers the operator configured (Telegram, Viber,
SMS, WhatsApp base URLs). :func:`call_checked` is for URLs a sender or a browser chose
(webhooks, delivery callbacks, web push endpoints): it connects to the addresses the URL guard
checked (``channels.urlguard.check_url``), never to what the name resolves to by then, keeps the
name for the Host header, SNI and the certificate check, and never follows a redirect or goes
through a proxy.

Error messages name the host, never the URL: provider URLs can carry credentials (Telegram puts
the bot token in the path).
"""

from __future__ import annotations

import socket
import sys
import threading
import urllib.request
from collections import OrderedDict
from collections.abc import Collection
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.connection import create_connection

from channels.base import DeadAddress, PermanentError, TransientError
from channels.urlguard import CheckedURL
from models.base import utcnow
from models.states import FailureReason
from settings import settings

#: Statuses worth retrying: timeouts, early data, rate limits and server errors.
TRANSIENT_STATUSES = frozenset({408, 425, 429})
#: Connection pools a thread keeps for checked URLs (one per host, port and addresses).
CHECKED_POOLS = 10

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
    """Close this thread's sessions (and their connections)."""
    for name in ("session", "checked_session"):
        current = getattr(_local, name, None)
        setattr(_local, name, None)
        if current is not None:
            current.close()


def call(method: str, url: str, **kwargs) -> requests.Response:
    """Make a request; connection failures and timeouts become :class:`TransientError`."""
    kwargs.setdefault("allow_redirects", False)
    return _request(session(), method, url, **kwargs)


def call_checked(method: str, target: CheckedURL, **kwargs) -> requests.Response:
    """Make a request to a URL the URL guard checked, connecting only to the addresses it
    checked; never redirected, never through a proxy. Errors as :func:`call`."""
    kwargs["allow_redirects"] = False
    current = checked_session()
    adapter = current.get_adapter(target.url)
    assert isinstance(adapter, _CheckedAdapter), "checked_session mounts one for http and https"
    adapter.target = target
    try:
        return _request(current, method, target.url, **kwargs)
    finally:
        adapter.target = None


def checked_session() -> requests.Session:
    """This thread's session for :func:`call_checked` (no proxies, no netrc)."""
    current = getattr(_local, "checked_session", None)
    if current is None:
        current = _local.checked_session = requests.Session()
        current.trust_env = False
        current.mount("https://", _CheckedAdapter())
        current.mount("http://", _CheckedAdapter())
    return current


def _request(current: requests.Session, method: str, url: str, **kwargs) -> requests.Response:
    kwargs.setdefault("timeout", settings.OUTBOUND_TIMEOUT_SECONDS)
    try:
        return current.request(method, url, **kwargs)
    except requests.Timeout:
        raise TransientError(f"timed out calling {host(url)}") from None
    except requests.RequestException as error:
        raise TransientError(f"cannot reach {host(url)}: {type(error).__name__}") from None


class _CheckedAdapter(HTTPAdapter):
    """Sends each request over a pool whose connections go to ``target``'s checked addresses;
    a request for any other host (a redirect, a changed URL) is refused."""

    def __init__(self) -> None:
        super().__init__(pool_connections=1, pool_maxsize=1)
        self.target: CheckedURL | None = None
        self._pools: OrderedDict[tuple, urllib3.HTTPConnectionPool] = OrderedDict()

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        target = self.target
        wanted, tls = self.build_connection_pool_key_attributes(request, verify, cert)
        port = wanted["port"] or (443 if wanted["scheme"] == "https" else 80)
        if target is None or (wanted["scheme"], wanted["host"], port) != (
            target.scheme,
            target.host,
            target.port,
        ):
            raise requests.exceptions.InvalidURL(f"{wanted['host']} is not the checked host")
        key = (target.scheme, target.host, target.port, frozenset(target.addresses))
        key += tuple(sorted(tls.items()))
        pool = self._pools.pop(key, None) or self._new_pool(target, tls)
        self._pools[key] = pool
        while len(self._pools) > CHECKED_POOLS:
            self._pools.popitem(last=False)[1].close()
        return pool

    @staticmethod
    def _new_pool(target: CheckedURL, tls: dict[str, Any]) -> urllib3.HTTPConnectionPool:
        if target.scheme == "https":
            return _CheckedHTTPSPool(target.host, target.port, addresses=target.addresses, **tls)
        return _CheckedHTTPPool(target.host, target.port, addresses=target.addresses)

    def close(self) -> None:
        super().close()
        while self._pools:
            self._pools.popitem()[1].close()


class _CheckedConnection(urllib3.connection.HTTPConnection):
    """Connects to ``addresses`` in turn (no name look-up); ``host`` stays the URL's host, for
    the Host header, SNI and the certificate's name."""

    def __init__(self, *args, addresses: tuple[str, ...], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.addresses = addresses

    def _new_conn(self) -> socket.socket:
        failure: OSError | None = None
        for address in self.addresses:
            try:
                sock = create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except OSError as error:
                failure = error
                continue
            sys.audit("http.client.connect", self, self.host, self.port)
            return sock
        if isinstance(failure, socket.timeout):
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out.")
        raise NewConnectionError(self, f"Failed to establish a new connection: {failure}")


class _CheckedHTTPConnection(_CheckedConnection, urllib3.connection.HTTPConnection):
    pass


class _CheckedHTTPSConnection(_CheckedConnection, urllib3.connection.HTTPSConnection):
    pass


class _CheckedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


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
