"""Trusted proxies: peers in TRUSTED_PROXY_ADDRESSES, whose identity headers (SiteMinder's
``SM_USER`` on /compat/notifybc, a forwarded ``X-Client-Cert``) are believed; from any other
peer those headers are ignored."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from setting_kinds import networks
from settings import settings


def from_trusted_proxy(peer: str | None) -> bool:
    """Whether ``peer`` (``request.remote_addr``) is in TRUSTED_PROXY_ADDRESSES."""
    try:
        address = ipaddress.ip_address(peer or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in _networks(settings.TRUSTED_PROXY_ADDRESSES))


@lru_cache(maxsize=8)
def _networks(setting: str):
    return networks(setting)
