"""Outbound URL checks for webhooks, delivery callbacks and web push endpoints: a URL someone
else chose is called only if it is plainly written (one reading, the one the HTTP library that
connects makes), https, and names a public host; the connection then goes to the addresses
checked here (:class:`CheckedURL`, see ``channels.http.call_checked``), never to what the name
resolves to later.

``ALLOW_PRIVATE_URLS`` (tests, local development) also allows http:// and private, loopback
and link-local hosts; the plain-writing rules and the connection to the checked address hold
either way.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from channels.base import TransientError
from channels.errors import ChannelError
from settings import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: What the guard asks to resolve a name: ``(host, port)`` to addresses, in the order to try
#: them; raises :class:`socket.gaierror` as ``getaddrinfo`` does.
Resolver = Callable[[str, int], Sequence[str]]

MAX_URL_CHARS = 2000
DEFAULT_PORTS = {"https": 443, "http": 80}
#: Names that never leave the machine or the local network (RFC 6761, 6762, 8375; ICANN's
#: private-use ``internal``), the name itself or any name under it.
PRIVATE_NAMES = ("localhost", "localdomain", "local", "internal", "home.arpa")

_PRINTABLE = re.compile(r"[!-~]+")  # printable ASCII: no spaces, controls or other scripts
_URL = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?:[/?#].*)?", re.DOTALL
)
_AUTHORITY = re.compile(
    r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9.-]+))(?::(?P<port>[1-9][0-9]{0,4}))?"
)
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_NUMBER = re.compile(r"[0-9]+|0x[0-9a-f]*")  # what ends an IPv4 address to inet_aton, WHATWG
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED_QUAD = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")

#: IPv6 ranges refused whatever they hold: IPv4-compatible (and ``::``, ``::1``), local-use
#: NAT64 (RFC 8215), Teredo, site-local.
_REFUSED_V6 = tuple(
    ipaddress.ip_network(net) for net in ("::/96", "64:ff9b:1::/48", "2001::/32", "fec0::/10")
)
#: The well-known NAT64 prefix (RFC 6052): judged by the IPv4 address it embeds.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeURL(ChannelError, ValueError):
    """A URL Herald will not call; the message says why, for the sender."""


class Unresolvable(UnsafeURL):
    """The URL's host name does not resolve (it may later: a push service's name)."""


@dataclass(frozen=True)
class ParsedURL:
    """A URL in its one reading: ``host`` as parsers read it (lower case, no IPv6 brackets);
    ``port`` explicit; ``address`` when the host is an IP address literal."""

    url: str
    scheme: str
    host: str
    port: int
    address: IPAddress | None


@dataclass(frozen=True)
class CheckedURL:
    """A URL that passed the send-time check, and the addresses (checked) to connect to."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def check_url_syntax(url: str) -> str:
    """Check what can be checked without DNS (at accept time); return the URL to store."""
    parsed = parse(url)
    _check_host(parsed)
    return parsed.url


def check_url(url: str, resolver: Resolver | None = None) -> CheckedURL:
    """The full check at send time: the URL as at accept time, and every address its host
    resolves to (asking ``resolver``, :func:`system_resolver` by default), once.

    A resolver that cannot answer right now is a :class:`TransientError`; a name that does not
    exist is :class:`Unresolvable`; any address that is not public is an :class:`UnsafeURL`.
    """
    parsed = parse(url)
    _check_host(parsed)
    if parsed.address is not None:
        addresses: tuple[str, ...] = (str(parsed.address),)
    else:
        addresses = _resolve(parsed, resolver or system_resolver)
        for address in addresses:
            check_address(ipaddress.ip_address(address))
    return CheckedURL(parsed.url, parsed.scheme, parsed.host, parsed.port, addresses)


def parse(url: str) -> ParsedURL:
    """``url`` in its one reading, or :class:`UnsafeURL` when it is not plainly written: the
    scheme (https; http too under ALLOW_PRIVATE_URLS), then a host name or IP address and an
    optional port, nothing else (no credentials, backslashes, spaces, zone ids, odd ports or
    IPv4 addresses written other than as four decimal numbers), read the same by urllib3 (which
    connects) and by :mod:`urllib.parse`."""
    if not isinstance(url, str) or len(url.strip()) > MAX_URL_CHARS:
        raise UnsafeURL(f"Must be a URL of at most {MAX_URL_CHARS} characters.")
    url = url.strip()
    match = _URL.fullmatch(url)
    allowed = ("https", "http") if settings.ALLOW_PRIVATE_URLS else ("https",)
    if match is None or match["scheme"].lower() not in allowed:
        raise UnsafeURL("Must be an https:// URL.")
    if not _PRINTABLE.fullmatch(url) or "\\" in url:
        raise UnsafeURL(
            "Must be written in printable ASCII without spaces or backslashes "
            "(percent-encode the rest; punycode for international names)."
        )
    if "@" in match["authority"]:
        raise UnsafeURL("Must not contain credentials.")
    scheme = match["scheme"].lower()
    authority = _AUTHORITY.fullmatch(match["authority"])
    if authority is None or (authority["port"] and int(authority["port"]) > 65535):
        raise UnsafeURL("Must name a host, and a port from 1 to 65535 if any.")
    host, address = _host(authority["name"], authority["ipv6"])
    port = int(authority["port"]) if authority["port"] else DEFAULT_PORTS[scheme]
    if not _read_alike(url, scheme, host, authority["port"]):
        raise UnsafeURL("Must be a plain URL: it reads differently to different parsers.")
    return ParsedURL(url, scheme, host, port, address)


def _host(name: str | None, ipv6: str | None) -> tuple[str, IPAddress | None]:
    """The host in lower case and its address if it is an IP literal; UnsafeURL otherwise."""
    if ipv6 is not None:
        try:
            address = ipaddress.IPv6Address(ipv6)
        except ValueError:
            raise UnsafeURL(f"[{ipv6}] is not an IPv6 address.") from None
        return ipv6.lower(), address
    assert name is not None, "_AUTHORITY matches a name wherever it matches no IPv6 literal"
    name = name.lower()
    labels = name.split(".")
    if _NUMBER.fullmatch(labels[-1]):
        if not _DOTTED_QUAD.fullmatch(name):
            raise UnsafeURL(
                f"{name} is not a host name, and IPv4 addresses must be written as four "
                "decimal numbers from 0 to 255 (a.b.c.d)."
            )
        return name, ipaddress.IPv4Address(name)
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise UnsafeURL(
            f"{name} is not a host name (letters, digits and hyphens, in labels of 1 to 63 "
            "characters between dots, no dot at the end)."
        )
    return name, None


def _read_alike(url: str, scheme: str, host: str, port: str | None) -> bool:
    """Whether urllib3 (which connects) and urllib.parse read ``url`` as this scheme, host and
    port, without credentials."""
    try:
        ours = parse_url(url)
        theirs = urlsplit(url)
        readings = {
            (ours.scheme, (ours.host or "").strip("[]"), ours.port, ours.auth),
            (theirs.scheme.lower(), theirs.hostname, theirs.port, theirs.username),
        }
    except (LocationParseError, ValueError):
        return False
    return readings == {(scheme, host, int(port) if port else None, None)}


def _check_host(parsed: ParsedURL) -> None:
    """Refuse, unless ALLOW_PRIVATE_URLS, a private address literal or a name that cannot be a
    public host's (one label, or a local-only name)."""
    if settings.ALLOW_PRIVATE_URLS:
        return
    if parsed.address is not None:
        check_address(parsed.address)
        return
    host = parsed.host
    if "." not in host or any(host == n or host.endswith(f".{n}") for n in PRIVATE_NAMES):
        raise UnsafeURL(f"Must name a public host by its full domain name, not {host}.")


def check_address(address: IPAddress) -> None:
    """Refuse, unless ALLOW_PRIVATE_URLS, an address that is not public (see
    :func:`is_public`)."""
    if settings.ALLOW_PRIVATE_URLS:
        return
    if not is_public(address):
        raise UnsafeURL(f"Must not target a private, loopback or link-local address ({address}).")


def is_public(address: IPAddress) -> bool:
    """Whether ``address`` is a public unicast address: not private, loopback, link-local,
    multicast, reserved, unspecified or shared; an IPv6 address that carries an IPv4 address
    (IPv4-mapped, NAT64 64:ff9b::/96, 6to4) is judged by the IPv4 address it carries, and
    IPv4-compatible, local-use NAT64 (64:ff9b:1::/48), Teredo and site-local ones are refused."""
    if address.version == 6:
        embedded = address.ipv4_mapped or address.sixtofour
        if address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
        if any(address in network for network in _REFUSED_V6):
            return False
    return address.is_global and not (
        address.is_multicast
        or address.is_reserved
        or address.is_private
        or address.is_link_local
        or address.is_loopback
        or address.is_unspecified
    )


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system resolver (``getaddrinfo``) gives for ``host``, in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    # An IPv4 or IPv6 socket address starts with the address as text.
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _resolve(parsed: ParsedURL, resolver: Resolver) -> tuple[str, ...]:
    try:
        addresses = tuple(resolver(parsed.host, parsed.port))
    except socket.gaierror as error:
        if error.errno == socket.EAI_AGAIN:
            raise TransientError(f"cannot resolve {parsed.host} for now") from None
        raise Unresolvable(f"Cannot resolve {parsed.host}: {error}") from None
    except (UnicodeError, OSError) as error:
        raise TransientError(f"cannot resolve {parsed.host}: {error}") from None
    if not addresses:
        raise Unresolvable(f"Cannot resolve {parsed.host}: no addresses.")
    return addresses
