"""Direct TLS: the Procfile's web process (gunicorn with ./gunicorn.conf.py) serving HTTPS on
127.0.0.1 with TLS_CERTFILE/TLS_KEYFILE, asking for client certificates signed by TLS_CA_CERTS.
A bound certificate is its sender without a key; an unbound one needs a key; one from another
CA is refused in the handshake, and with TLS_CLIENT_CERT=required so is no certificate."""

from __future__ import annotations

import http.client
import json
import os
import ssl
import sys
from contextlib import contextmanager

import pytest

from dev.embedded_redis import free_port
from dev.run import procfile
from models.certificate import bind_certificate, read_pem
from models.notification import Notification
from tests.certificates import certificate_authority, issue
from tests.e2e.test_gunicorn import ROOT
from tests.factories import email_notification, make_sender
from tests.support import started_with_output, stopped_group, wait_until


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """PEM files: the CA, 127.0.0.1's certificate, and client certificates with their keys."""
    directory = tmp_path_factory.mktemp("pki")
    ca, other_ca = certificate_authority("MPass test CA"), certificate_authority("Another CA")
    (directory / "ca.pem").write_bytes(ca.pem)
    files = {"ca": directory / "ca.pem"}
    issued = {
        "server": issue(ca, "127.0.0.1", server=True),
        "acme": issue(ca, "acme-system"),
        "unbound": issue(ca, "unbound-system"),
        "other-ca": issue(other_ca, "acme-system"),
    }
    for name, certificate in issued.items():
        files[name] = certificate.write(directory, name)
    return files, issued


@contextmanager
def https_web(database, redis_url, pki, mode: str):
    """The web process with TLS_CLIENT_CERT=``mode``; its port."""
    files, _ = pki
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    env.update(
        HOST="127.0.0.1",
        PORT=str(port),
        WEB_CONCURRENCY="1",
        DATABASE_URL=database.herald_url,
        REDIS_URL=redis_url,
        BROKER_URL="",
        METRICS="false",
        TLS_CERTFILE=str(files["server"][0]),
        TLS_KEYFILE=str(files["server"][1]),
        TLS_CA_CERTS=str(files["ca"]),
        TLS_CLIENT_CERT=mode,
        PYTHONPATH=str(ROOT),
        PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
    )
    process, output, reader = started_with_output(
        procfile(str(ROOT / "Procfile"))["web"], shell=True, cwd=ROOT, env=env
    )
    try:
        wait_until(lambda: _up(port, pki), timeout=60, interval=0.2)
        yield port
    finally:
        stopped_group(process, reader)


def _up(port: int, pki) -> bool:
    try:
        return request(port, pki, "acme", "GET", "/healthz")[0] == 200
    except (OSError, ssl.SSLError):
        return False


def request(port, pki, certificate, method, path, key=None) -> tuple[int, dict]:
    """One HTTPS request, verifying the server against the test CA, presenting the client
    ``certificate`` (a name in ``pki``, or None); the status and JSON body."""
    files, _ = pki
    context = ssl.create_default_context(cafile=str(files["ca"]))
    if certificate is not None:
        context.load_cert_chain(*map(str, files[certificate]))
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=20)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    body = json.dumps(email_notification()) if method == "POST" else None
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


@pytest.fixture(scope="module")
def optional_web(database, redis_url, pki):
    with https_web(database, redis_url, pki, "optional") as port:
        yield port


@pytest.fixture(scope="module")
def required_web(database, redis_url, pki):
    with https_web(database, redis_url, pki, "required") as port:
        yield port


@pytest.fixture
def senders(db, pki):
    acme, globex = make_sender("acme"), make_sender("globex")
    bind_certificate(acme.sender, read_pem(pki[1]["acme"].pem))
    return acme, globex


def sender_of(answer: tuple[int, dict]) -> str:
    status, body = answer
    assert status == 202, body
    return Notification.get_by_id(body["id"]).sender.name


@pytest.mark.e2e
def test_a_bound_certificate_is_its_sender_without_a_key(optional_web, pki, senders):
    assert sender_of(request(optional_web, pki, "acme", "POST", "/v1/notifications")) == "acme"


@pytest.mark.e2e
def test_an_unbound_certificate_needs_a_key(optional_web, pki, senders):
    _, globex = senders
    status, body = request(optional_web, pki, "unbound", "POST", "/v1/notifications")
    assert (status, body["code"]) == (401, 401)
    assert "not bound to any sender" in body["message"]
    answer = request(optional_web, pki, "unbound", "POST", "/v1/notifications", globex.key)
    assert sender_of(answer) == "globex"


@pytest.mark.e2e
def test_without_a_certificate_the_key_decides(optional_web, pki, senders):
    _, globex = senders
    assert request(optional_web, pki, None, "POST", "/v1/notifications")[0] == 401
    answer = request(optional_web, pki, None, "POST", "/v1/notifications", globex.key)
    assert sender_of(answer) == "globex"
    status, body = request(optional_web, pki, "acme", "POST", "/v1/notifications", globex.key)
    assert status == 401 and "another sender" in body["message"]


def _refused_handshake(port, pki, certificate) -> None:
    """The server refuses ``certificate`` (or none) in the handshake: with TLS 1.3 the client
    learns it at its first read, as an alert or a reset."""
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        request(port, pki, certificate, "GET", "/healthz")


@pytest.mark.e2e
def test_a_certificate_from_another_ca_is_refused_in_the_handshake(optional_web, pki, senders):
    _refused_handshake(optional_web, pki, "other-ca")


@pytest.mark.e2e
def test_required_mode_refuses_a_handshake_without_a_certificate(required_web, pki, senders):
    acme, _ = senders
    _refused_handshake(required_web, pki, None)
    _refused_handshake(required_web, pki, "other-ca")
    assert sender_of(request(required_web, pki, "acme", "POST", "/v1/notifications")) == "acme"
    answer = request(required_web, pki, "unbound", "POST", "/v1/notifications", acme.key)
    assert sender_of(answer) == "acme"
