"""Client certificates as credentials: the certificate a request presents, over Herald's own
TLS (the peer certificate, put in the WSGI environ by ``api.gunicorn_worker``) or forwarded by a
trusted proxy in ``X-Client-Cert`` (URL-encoded PEM, nginx's ``$ssl_client_escaped_cert``),
and the sender it is bound to (``models.certificate``).

A bound certificate alone is its sender, unless that sender requires its API key as well
(``herald senders require-certificate NAME on``): then it takes both, the key and a certificate
bound to it. ``X-Client-Cert`` from any peer not in TRUSTED_PROXY_ADDRESSES is ignored.
"""

from __future__ import annotations

from typing import NoReturn
from urllib.parse import unquote_to_bytes

from flask import g, request
from flask_smorest import abort

from api.proxies import from_trusted_proxy
from models.cache import ExpiringCache
from models.certificate import (
    MAX_PEM_BYTES,
    InvalidCertificate,
    fingerprint_of_der,
    read_pem,
    sender_for_fingerprint,
)
from models.sender import Sender

#: The WSGI environ key holding the TLS peer's certificate (DER bytes), set by Herald's worker.
#: A client cannot set it: request headers reach the environ as ``HTTP_*``.
PEER_CERTIFICATE = "herald.peer_certificate"
HEADER = "X-Client-Cert"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="herald"'}
#: Certificates checked recently, and their senders (unbound ones are never cached).
_holders = ExpiringCache(max_entries=1000)


def presented_fingerprint() -> str | None:
    """The SHA-256 fingerprint of the request's client certificate: a trusted proxy's
    ``X-Client-Cert``, else the TLS peer's; None when there is none. A trusted proxy's header
    that is not a certificate valid now is a 401."""
    forwarded = request.headers.get(HEADER, "").strip()
    if forwarded and from_trusted_proxy(request.remote_addr):
        return _forwarded_fingerprint(forwarded)
    der = request.environ.get(PEER_CERTIFICATE)
    return fingerprint_of_der(der) if der else None


def _forwarded_fingerprint(forwarded: str) -> str:
    if len(forwarded) > 3 * MAX_PEM_BYTES:
        _refuse(f"{HEADER} is too long for a certificate.")
    try:
        certificate = read_pem(unquote_to_bytes(forwarded))
    except InvalidCertificate as invalid:
        _refuse(f"{HEADER} is not a URL-encoded PEM certificate: {invalid}.")
    if not certificate.valid_now():
        _refuse(f"The client certificate in {HEADER} is expired or not valid yet.")
    return certificate.fingerprint


def certificate_holder() -> Sender | None:
    """The sender the presented certificate is bound to (None: no certificate, or unbound),
    read once per request."""
    if "certificate_holder" not in g:
        fingerprint = presented_fingerprint()
        g.certificate_presented = fingerprint is not None
        g.certificate_holder = None if fingerprint is None else _holder(fingerprint)
    return g.certificate_holder


def _holder(fingerprint: str) -> Sender | None:
    holder = _holders.get(fingerprint)
    if holder is None:
        holder = sender_for_fingerprint(fingerprint)
        if holder is not None:
            _holders.put(fingerprint, holder)
    return holder


def certificate_sender() -> Sender | None:
    """For a request without an ``Authorization`` header: the sender its certificate is bound
    to, or 401 (an unbound certificate; a sender requiring its key too). None when the request
    carries a key or no certificate: the key decides, then :func:`check_certificate`."""
    holder = certificate_holder()
    if request.headers.get("Authorization") or not g.certificate_presented:
        return None
    if holder is None:
        _refuse("The client certificate is not bound to any sender; send an API key.")
    if holder.require_certificate:
        _refuse(f"Sender {holder.name!r} requires its API key as well as its certificate.")
    return holder


def check_certificate(sender: Sender) -> None:
    """401 unless the request's certificate fits ``sender``, identified by its key: none, or
    one bound to it; one bound to it when it requires a certificate."""
    holder = certificate_holder()
    if holder is not None and holder.id != sender.id:
        _refuse("The client certificate is bound to another sender than the API key.")
    if sender.require_certificate and holder is None:
        _refuse(
            f"Sender {sender.name!r} requires a client certificate bound to it as well as its "
            "API key; none was presented."
            if not g.certificate_presented
            else f"Sender {sender.name!r} requires a client certificate bound to it as well as "
            "its API key; the certificate presented is not bound to it."
        )


def forget_checked_certificates() -> None:
    """Empty this process's cache of checked certificates."""
    _holders.clear()


def _refuse(message: str) -> NoReturn:
    abort(401, message=message, headers=CHALLENGE)
