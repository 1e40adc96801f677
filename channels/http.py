"""HTTP for channel adapters: connection pools per worker thread, timeouts, size caps and status
classes, on urllib3 directly (``requests``' per-call work was a third of a webhook's CPU).

Two kinds of call. :func:`call` is for the providers the operator configured (Telegram, Viber,
SMS, WhatsApp base URLs); it goes through the proxy the environment names (``HTTPS_PROXY``,
``NO_PROXY``, …). :func:`call_checked` is for URLs a sender or a browser chose (webhooks,
delivery callbacks, web push endpoints): it connects to the addresses the URL guard checked
(``channels.urlguard.check_url``), never to what the name resolves to by then, keeps the name for
the Host header, SNI and the certificate check, and never follows a redirect or goes through a
proxy. Both read at most ``max_bytes`` of an answer, and return a :class:`Response`.

Error messages name the host, never the URL: provider URLs can carry credentials (Telegram puts
the bot token in the path).
"""

from __future__ import annotations

import base64
import json as jsonlib
import os
import socket
import sys
import threading
import urllib.request
from collections import OrderedDict
from collections.abc import Collection, Mapping
from email.message import Message as _HeaderParser
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import certifi
import urllib3
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
#: Most bytes of an answer read by default; the rest is dropped with its connection.
MAX_RESPONSE_BYTES = 1 << 20
DEFAULT_HEADERS = {"User-Agent": "Herald", "Accept": "*/*", "Accept-Encoding": "gzip, deflate"}

_local = threading.local()


class Response:
    """A provider's answer: status, headers (case-insensitive), and its body as read (capped)."""

    __slots__ = ("status_code", "headers", "content", "url")

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes, url: str):
        self.status_code, self.headers, self.content, self.url = status_code, headers, content, url

    @property
    def text(self) -> str:
        """The body decoded with the charset the answer names (UTF-8 by default)."""
        parser = _HeaderParser()
        parser["Content-Type"] = self.headers.get("Content-Type", "")
        charset = parser.get_content_charset() or "utf-8"
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:  # a charset Python does not know
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not JSON."""
        return jsonlib.loads(self.content)


def call(
    method: str,
    url: str,
    *,
    json: Any = None,
    data: bytes | Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    timeout: float | None = None,
    max_bytes: int = MAX_RESPONSE_BYTES,
) -> Response:
    """Make a request (``json``, a form as ``data`` or bytes; basic ``auth``); redirects are not
    followed. Connection failures and timeouts become :class:`TransientError`."""
    body, all_headers = _body(json, data, headers)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        all_headers["Authorization"] = f"Basic {token}"
    opener = _opener(url)
    return _send(opener, method, url, url, body, all_headers, timeout, max_bytes)


def call_checked(
    method: str,
    target: CheckedURL,
    *,
    json: Any = None,
    data: bytes | Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
    max_bytes: int = MAX_RESPONSE_BYTES,
    verify: bool | str = True,
) -> Response:
    """Make a request to a URL the URL guard checked, connecting only to the addresses it
    checked; never redirected, never through a proxy. ``verify``: check the certificate
    (against this CA bundle). Errors as :func:`call`."""
    body, all_headers = _body(json, data, headers)
    pool = _checked_pool(target, verify)
    path = urllib3.util.parse_url(target.url).request_uri
    return _send(pool, method, path, target.url, body, all_headers, timeout, max_bytes)


def close_session() -> None:
    """Close this thread's connections (of both kinds of call)."""
    managers = getattr(_local, "managers", None) or {}
    pools = getattr(_local, "checked", None) or {}
    _local.managers, _local.checked = {}, OrderedDict()
    for manager in managers.values():
        manager.clear()
    for pool in pools.values():
        pool.close()


def _body(json: Any, data, headers: Mapping[str, str] | None) -> tuple[bytes | None, dict]:
    all_headers = dict(DEFAULT_HEADERS)
    body: bytes | None
    if json is not None:
        body = jsonlib.dumps(json, allow_nan=False).encode()
        all_headers["Content-Type"] = "application/json"
    elif isinstance(data, Mapping):
        body = urlencode(data).encode()
        all_headers["Content-Type"] = "application/x-www-form-urlencoded"
    else:
        body = data
    all_headers.update(headers or {})
    return body, all_headers


def _send(opener, method, target, url, body, headers, timeout, max_bytes: int) -> Response:
    seconds = settings.OUTBOUND_TIMEOUT_SECONDS if timeout is None else timeout
    try:
        raw = opener.urlopen(
            method,
            target,
            body=body,
            headers=headers,
            timeout=urllib3.Timeout(connect=seconds, read=seconds),
            retries=False,
            redirect=False,
            preload_content=False,
            assert_same_host=False,
        )
        try:
            content = raw.read(max_bytes + 1, decode_content=True)
        except BaseException:
            raw.close()
            raise
    except NewConnectionError as error:  # a subclass of ConnectTimeoutError, yet not a timeout
        raise TransientError(f"cannot reach {host(url)}: {_error_name(error)}") from None
    except urllib3.exceptions.TimeoutError:
        raise TransientError(f"timed out calling {host(url)}") from None
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise TransientError(f"cannot reach {host(url)}: {_error_name(error)}") from None
    if len(content) > max_bytes:
        raw.close()  # the rest stays unread: the connection cannot be used again
        content = content[:max_bytes]
    raw.release_conn()
    return Response(raw.status, raw.headers, content, url)


def _error_name(error: BaseException) -> str:
    """The error's class, or the one that caused it (an SSLError inside a MaxRetryError)."""
    reason = getattr(error, "reason", None)
    return type(reason if isinstance(reason, BaseException) else error).__name__


def _ca_bundle() -> str:
    """The CA bundle certificates are checked against: as requests finds it."""
    environ = os.environ
    return environ.get("REQUESTS_CA_BUNDLE") or environ.get("CURL_CA_BUNDLE") or certifi.where()


def _opener(url: str) -> urllib3.PoolManager:
    """This thread's pool manager for ``url``: through the environment's proxy for its scheme,
    unless NO_PROXY names its host."""
    managers = getattr(_local, "managers", None)
    if managers is None:
        managers = _local.managers = {}
    parts = urlsplit(url)
    proxy = _PROXIES.get(parts.scheme)
    if proxy and urllib.request.proxy_bypass(parts.hostname or ""):
        proxy = None
    manager = managers.get(proxy)
    if manager is None:
        tls: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED", "ca_certs": _ca_bundle()}
        manager = managers[proxy] = (
            urllib3.ProxyManager(proxy, num_pools=10, maxsize=1, **tls)
            if proxy
            else urllib3.PoolManager(num_pools=10, maxsize=1, **tls)
        )
    return manager


#: The proxies the environment names, by scheme (read once per process, as requests did).
_PROXIES = {
    scheme: address
    for scheme, address in urllib.request.getproxies().items()
    if scheme in ("http", "https")
}


def _checked_pool(target: CheckedURL, verify: bool | str) -> urllib3.HTTPConnectionPool:
    """This thread's pool whose connections go to ``target``'s checked addresses."""
    pools = getattr(_local, "checked", None)
    if pools is None:
        pools = _local.checked = OrderedDict()
    key = (target.scheme, target.host, target.port, target.addresses, verify)
    pool = pools.pop(key, None)
    if pool is None:
        pool = _new_pool(target, verify)
    pools[key] = pool
    while len(pools) > CHECKED_POOLS:
        pools.popitem(last=False)[1].close()
    return pool


def _new_pool(target: CheckedURL, verify: bool | str) -> urllib3.HTTPConnectionPool:
    if target.scheme != "https":
        return _CheckedHTTPPool(target.host, target.port, maxsize=1, addresses=target.addresses)
    tls: dict[str, Any] = {"cert_reqs": "CERT_NONE"}
    if verify:
        tls = {
            "cert_reqs": "CERT_REQUIRED",
            "ca_certs": verify if isinstance(verify, str) else _ca_bundle(),
        }
    return _CheckedHTTPSPool(target.host, target.port, maxsize=1, addresses=target.addresses, **tls)


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


def retry_after(response: Response) -> float | None:
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


def snippet(response: Response, limit: int = 300) -> str:
    return response.text[:limit].replace("\n", " ")


def json_object(response: Response) -> dict[str, Any]:
    """The response body as a JSON object, or ``{}`` when it is not one."""
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def raise_for_status(
    response: Response,
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
