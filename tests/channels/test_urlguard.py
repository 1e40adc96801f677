"""Outbound goes only where it was checked (DESIGN, promise 7): webhook, callback and push URLs
are refused at the door in every private spelling, checked again with DNS when sent, and the
connection goes to the address that passed the check, with the name kept for TLS."""

import ipaddress
import json
import socket

import pytest

import cli
import cli.common
from channels import REGISTRY, http, urlguard
from channels.base import PermanentError, Rendered, TransientError
from channels.webpush import generate_vapid_keys
from models.callback import Callback
from models.sender import Sender
from models.states import MessageState
from settings import settings
from tasks.callbacks import deliver_callback
from tasks.deliver import deliver
from tests.factories import message, stored_message
from tests.fakes.http import FakeProvider
from tests.fakes.pushservice import Subscriber
from tests.fakes.tls import CertificateAuthority
from tests.hostile import SSRF_HOSTS, SSRF_URLS, with_port
from tests.support import settled, wait_until

HOOK_NAME = "hooks.example.md"
#: The URLs that are not a host of SSRF_HOSTS: odd readings, credentials, ports, schemes.
SPELLINGS = SSRF_URLS[len(SSRF_HOSTS) :]


class Rebinding:
    """A name server that answers ``first`` once and ``later`` afterwards, as an attacker's
    does to slip past a check. The system resolver behind ``socket.getaddrinfo`` has no local
    peer that rebinds on demand, so this is given to the guard as its resolver, and stands in
    for ``socket.getaddrinfo`` for names too: any second look-up, wherever it is made, gets
    ``later``."""

    def __init__(self, first: str, later: str) -> None:
        self.first, self.later = first, later
        self.lookups: list[str] = []
        self._getaddrinfo = socket.getaddrinfo

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return [self.first if len(self.lookups) == 1 else self.later]

    def getaddrinfo(self, host, port, *args, **kwargs):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            (address,) = self(host, port)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return self._getaddrinfo(host, port, *args, **kwargs)


@pytest.fixture
def ca(tmp_path) -> CertificateAuthority:
    return CertificateAuthority(str(tmp_path))


@pytest.fixture
def servers():
    """Start fake HTTP(S) servers on demand; all stopped (and this thread's sessions closed)
    after the test."""
    started = []

    def start(host="127.0.0.1", port=0, tls=None) -> FakeProvider:
        started.append(FakeProvider().listen(host, port, tls).start())
        return started[-1]

    yield start
    http.close_session()
    for server in started:
        server.stop()


@pytest.fixture
def private_urls_refused(monkeypatch):
    monkeypatch.setattr(settings, "ALLOW_PRIVATE_URLS", False)


@pytest.fixture
def resolves_to_loopback(monkeypatch) -> list[str]:
    """The guard's resolver answers 127.0.0.1 for every name (where the test's servers listen);
    the names it was asked are returned. There is no DNS for public names on this machine."""
    lookups = []

    def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    monkeypatch.setattr(urlguard, "system_resolver", resolver)
    return lookups


# --- the connection goes to the checked address ----------------------------------------------
def test_the_connection_goes_to_the_checked_address_not_to_a_rebound_one(
    ca, servers, private_urls_refused, monkeypatch
):
    """The name first resolves to a public address, then to an internal one (127.0.0.1).
    Nothing here may contact a public address, so 127.0.0.2 plays the public one."""
    public = ipaddress.ip_address("127.0.0.2")
    monkeypatch.setattr(urlguard, "is_public", lambda address: address == public)
    internal = servers("127.0.0.1", tls=ca.server_context(HOOK_NAME))
    checked = servers("127.0.0.2", internal.port, ca.server_context(HOOK_NAME))
    rebinding = Rebinding("127.0.0.2", "127.0.0.1")
    monkeypatch.setattr(socket, "getaddrinfo", rebinding.getaddrinfo)
    url = f"https://{HOOK_NAME}:{internal.port}/hook"

    target = urlguard.check_url(url, rebinding)
    for _ in range(2):
        response = http.call_checked("POST", target, data=b"{}", verify=ca.path)
        assert response.status_code == 200
        http.close_session()  # the second call connects anew

    assert rebinding.lookups == [HOOK_NAME]
    assert target.addresses == ("127.0.0.2",)
    assert internal.connections == 0
    assert len(checked.requests) == 2
    assert checked.server_names == [HOOK_NAME, HOOK_NAME]  # SNI: the name, not the address
    assert {r.headers["Host"] for r in checked.requests} == {url.split("/")[2]}


def test_a_name_that_first_resolves_to_a_private_address_is_refused_without_a_connection(
    servers, private_urls_refused
):
    server = servers()
    rebinding = Rebinding("127.0.0.1", "127.0.0.1")

    with pytest.raises(urlguard.UnsafeURL, match="127.0.0.1"):
        urlguard.check_url(f"https://{HOOK_NAME}:{server.port}/", rebinding)

    assert rebinding.lookups == [HOOK_NAME]
    assert server.connections == 0


def test_the_certificate_is_checked_for_the_name_not_the_address(ca, servers, monkeypatch):
    """The server's certificate is valid for its address but not for the URL's name."""
    monkeypatch.setattr(settings, "ALLOW_PRIVATE_URLS", True)
    server = servers(tls=ca.server_context("127.0.0.1", "other.example.md"))
    url = f"https://{HOOK_NAME}:{server.port}/hook"
    target = urlguard.check_url(url, lambda host, port: ["127.0.0.1"])

    with pytest.raises(TransientError, match="SSLError"):
        http.call_checked("POST", target, data=b"{}", verify=ca.path)

    assert server.server_names == [HOOK_NAME]
    assert server.requests == []


@pytest.mark.parametrize(
    "answers",
    [["93.184.215.14", "10.0.0.1"], ["2606:2800:21f:cb07:6820:80da:af6b:8b2c", "fd00::1"]],
)
def test_every_address_a_name_resolves_to_is_checked(private_urls_refused, answers):
    with pytest.raises(urlguard.UnsafeURL, match=answers[1]):
        urlguard.check_url(f"https://{HOOK_NAME}/hook", lambda host, port: answers)


@pytest.mark.parametrize("address", ["93.184.215.14", "64:ff9b::808:808", "2002:808:808::1"])
def test_public_addresses_pass_including_nat64_and_6to4_of_public_ones(
    private_urls_refused, address
):
    target = urlguard.check_url(f"https://{HOOK_NAME}/hook", lambda host, port: [address])
    assert target.addresses == (address,)


def test_the_url_urllib3_would_read_as_127_0_0_1_is_refused_whatever_the_name_resolves_to(
    private_urls_refused,
):
    """urllib.parse reads the host as "127.0.0.1\\.x.attacker.test" (a name an attacker makes
    resolve to a public address); urllib3, which connects, reads 127.0.0.1."""
    with pytest.raises(urlguard.UnsafeURL, match="backslashes"):
        urlguard.check_url("https://127.0.0.1\\.x.attacker.test/", lambda h, p: ["93.184.215.14"])


def test_a_public_looking_name_resolving_to_a_private_address_fails_at_send_time(
    client, sender, servers, private_urls_refused, resolves_to_loopback, worker
):
    server = servers()
    body = {
        "recipients": [{"type": "webhook", "value": with_port(HOOK_NAME, server.port)}],
        "message": {"body": "Dosarul 42 a fost aprobat."},
    }
    response = client.post("/v1/notifications", json=body, headers=sender.headers)
    assert response.status_code == 202, response.get_json()
    message_id = response.get_json()["messages"][0]["id"]

    wait_until(settled(message_id, MessageState.FAILED))

    assert message(message_id).failure_reason == "INVALID_DESTINATION"
    assert "127.0.0.1" in message(message_id).last_error
    assert resolves_to_loopback == [HOOK_NAME]
    assert server.connections == 0


# --- refused at the door ---------------------------------------------------------------------
@pytest.mark.parametrize("url", SSRF_URLS)
def test_a_hostile_webhook_url_is_400_naming_the_recipient(
    client, sender, private_urls_refused, url
):
    body = {
        "recipients": [
            {"type": "webhook", "value": "https://hooks.example.md/herald"},
            {"type": "webhook", "value": url},
        ],
        "message": {"body": "Dosarul 42 a fost aprobat."},
    }

    response = client.post("/v1/notifications", json=body, headers=sender.headers)

    assert response.status_code == 400, response.get_json()
    assert list(response.get_json()["errors"]["recipients"]) == ["1"]
    assert response.get_json()["errors"]["recipients"]["1"]["value"]


@pytest.mark.parametrize("url", SSRF_URLS)
def test_a_hostile_push_endpoint_is_400_naming_the_recipient(
    client, sender, private_urls_refused, vapid_keys, url
):
    subscriber = Subscriber()
    body = {
        "recipients": [
            {"type": "webpush", "value": subscriber.subscription("https://push.example.net/p/1")},
            {"type": "webpush", "value": subscriber.subscription(url)},
        ],
        "message": {"body": "Dosarul 42 a fost aprobat."},
    }

    response = client.post("/v1/notifications", json=body, headers=sender.headers)

    assert response.status_code == 400, response.get_json()
    (error,) = response.get_json()["errors"]["recipients"]["1"]["value"]
    assert error.startswith("endpoint: ")


@pytest.mark.parametrize("url", SSRF_URLS)
def test_a_hostile_callback_url_is_refused_by_the_cli(
    private_urls_refused, monkeypatch, url, capsys
):
    def accepted():
        raise AssertionError(f"herald senders set-callback accepted {url!r}")

    monkeypatch.setattr(cli.common, "use_database", accepted)

    assert cli.main(["senders", "set-callback", "permits", url]) == 2
    assert "invalid callback URL" in capsys.readouterr().err


# --- refused again when sent -----------------------------------------------------------------
@pytest.fixture
def vapid_keys(monkeypatch):
    private, public = generate_vapid_keys()
    monkeypatch.setattr(settings, "VAPID_PRIVATE_KEY", private)
    monkeypatch.setattr(settings, "VAPID_PUBLIC_KEY", public)


def stored_url(case: str, port: int) -> str:
    """The URL for a send-time ``case``: an SSRF host on ``port``, or a spelling as is."""
    return with_port(case, port) if case in SSRF_HOSTS else case


@pytest.mark.parametrize("case", SSRF_HOSTS + SPELLINGS)
def test_a_stored_hostile_webhook_and_callback_url_are_never_called(
    sender, servers, queues, private_urls_refused, resolves_to_loopback, case
):
    """Rows written while the rules were looser (or by hand): the send and the callback it
    owes fail without a connection."""
    server = servers()
    url = stored_url(case, server.port)
    Sender.update(callback_url=url).where(Sender.id == sender.sender.id).execute()
    row = stored_message(sender.sender, channel="webhook", destination=url, state="queued")

    deliver(str(row.id))

    assert message(row.id).state == MessageState.FAILED
    assert message(row.id).failure_reason == "INVALID_DESTINATION"
    (callback,) = Callback.select().where(Callback.message_id == row.id)
    deliver_callback(str(callback.id))
    assert Callback.select().count() == 0  # given up
    assert server.connections == 0
    assert resolves_to_loopback == []  # refused before any look-up


@pytest.mark.parametrize("case", SSRF_HOSTS + SPELLINGS)
def test_a_stored_hostile_push_endpoint_is_never_called(
    sender, servers, queues, private_urls_refused, vapid_keys, resolves_to_loopback, case
):
    server = servers()
    subscription = Subscriber().subscription(stored_url(case, server.port))
    destination = json.dumps({k: subscription[k] for k in ("endpoint", "keys")})
    row = stored_message(sender.sender, channel="webpush", destination=destination, state="queued")

    deliver(str(row.id))

    assert message(row.id).failure_reason == "INVALID_DESTINATION"
    assert server.connections == 0
    assert resolves_to_loopback == []


def test_the_webhook_adapter_refuses_what_the_guard_refuses(private_urls_refused):
    with pytest.raises(PermanentError) as raised:
        REGISTRY["webhook"].send(Rendered(subject=None, body="x"), "https://127.1/hook")
    assert raised.value.reason == "INVALID_DESTINATION"
