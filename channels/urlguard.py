"""Outbound URL checks for webhooks and callbacks: https only, and never a private, loopback,
link-local or otherwise non-public address, unless ``ALLOW_PRIVATE_URLS`` is set."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import settings
from channels.base import TransientError


class UnsafeURL(ValueError):
    pass


def check_url_syntax(url: str) -> str:
    """Check what can be checked without DNS (at accept time); return the URL."""
    if not isinstance(url, str) or len(url) > 2000:
        raise UnsafeURL("Must be a URL of at most 2000 characters.")
    parts = urlsplit(url.strip())
    allowed = {"https", "http"} if settings.ALLOW_PRIVATE_URLS else {"https"}
    if parts.scheme not in allowed or not parts.hostname:
        raise UnsafeURL("Must be an https:// URL.")
    if parts.username or parts.password:
        raise UnsafeURL("Must not contain credentials.")
    try:
        literal = ipaddress.ip_address(parts.hostname)
    except ValueError:
        literal = None
    if literal is not None:
        _check_address(literal)
    elif parts.hostname.lower() in {"localhost", "localhost.localdomain"}:
        _check_address(ipaddress.ip_address("127.0.0.1"))
    return url.strip()


def check_url(url: str) -> str:
    """The full check at send time: the syntax, and every address the host resolves to.

    A resolver that cannot answer right now is a :class:`TransientError`; a name that does not
    exist, or resolves anywhere non-public, is an :class:`UnsafeURL`.
    """
    check_url_syntax(url)
    if settings.ALLOW_PRIVATE_URLS:
        return url
    parts = urlsplit(url)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as error:
        if error.errno == socket.EAI_AGAIN:
            raise TransientError(f"cannot resolve {parts.hostname} for now") from None
        raise UnsafeURL(f"Cannot resolve {parts.hostname}: {error}") from None
    for info in infos:
        _check_address(ipaddress.ip_address(info[4][0]))
    return url


def _check_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    if settings.ALLOW_PRIVATE_URLS:
        return
    if not address.is_global or address.is_multicast:
        raise UnsafeURL(f"Must not target a private, loopback or link-local address ({address}).")
