"""The adapters' HTTP client (channels.http) on real servers: checked calls connect only to the
checked addresses, whatever a later DNS answer says, over pooled connections too; answers are
read up to a cap; provider calls go through the environment's proxy, checked calls never do."""

import gzip
import socket

import pytest

from channels import http, urlguard
from channels.base import TransientError
from settings import settings
from tests.channels.test_urlguard import HOOK_NAME, Rebinding
from tests.fakes.http import FakeProvider, Response


@pytest.fixture
def servers():
    started = []

    def start(host="127.0.0.1", port=0) -> FakeProvider:
        started.append(FakeProvider().listen(host, port).start())
        return started[-1]

    yield start
    http.close_session()
    for server in started:
        server.stop()


def test_pooled_calls_reconnect_to_the_checked_address_not_to_a_later_dns_answer(
    servers, monkeypatch
):
    """Plain http: each answer closes its connection, so every call reconnects through this
    thread's pool; none of them looks the name up again, and all reach the checked address,
    though every later DNS answer is the internal one (127.0.0.1)."""
    monkeypatch.setattr(settings, "ALLOW_PRIVATE_URLS", True)  # http:// for a plain server
    internal = servers("127.0.0.1")
    checked = servers("127.0.0.2", internal.port)
    rebinding = Rebinding("127.0.0.2", "127.0.0.1")
    monkeypatch.setattr(socket, "getaddrinfo", rebinding.getaddrinfo)
    target = urlguard.check_url(f"http://{HOOK_NAME}:{internal.port}/hook?a=1", rebinding)

    statuses = [http.call_checked("POST", target, data=b"{}").status_code for _ in range(3)]

    assert statuses == [200, 200, 200]
    assert rebinding.lookups == [HOOK_NAME]
    assert internal.connections == 0
    assert checked.connections == 3
    assert [r.path for r in checked.requests] == ["/hook?a=1"] * 3
    assert {r.headers["Host"] for r in checked.requests} == {f"{HOOK_NAME}:{internal.port}"}


def test_a_new_check_with_another_answer_connects_to_its_own_addresses(servers, monkeypatch):
    """A second check of the same URL that resolved elsewhere does not reuse the first one's
    pool: each call goes to what its own check passed."""
    monkeypatch.setattr(settings, "ALLOW_PRIVATE_URLS", True)
    first = servers("127.0.0.2")
    second = servers("127.0.0.3", first.port)
    url = f"http://{HOOK_NAME}:{first.port}/hook"

    http.call_checked("POST", urlguard.check_url(url, lambda host, port: ["127.0.0.2"]))
    http.call_checked("POST", urlguard.check_url(url, lambda host, port: ["127.0.0.3"]))

    assert (len(first.requests), len(second.requests)) == (1, 1)


def test_an_answer_is_read_up_to_the_cap_and_the_next_call_still_works(servers, monkeypatch):
    monkeypatch.setattr(settings, "ALLOW_PRIVATE_URLS", True)
    server = servers()
    server.script = [Response(200, b"x" * 10_000), Response(201, b'{"ok": true}')]
    target = urlguard.check_url(f"{server.url}/hook")

    big = http.call_checked("POST", target, data=b"{}", max_bytes=100)
    small = http.call_checked("POST", target, data=b"{}", max_bytes=100)

    assert (big.status_code, big.content) == (200, b"x" * 100)
    assert (small.status_code, small.json()) == (201, {"ok": True})


def test_the_answer_reads_as_the_adapters_read_it(servers):
    server = servers()
    body = "Factură respinsă".encode("cp1250")
    server.script = [
        Response(429, body, {"Content-Type": "text/plain; charset=cp1250", "Retry-After": "7"}),
        Response(200, gzip.compress(b'{"a": [1]}'), {"Content-Encoding": "gzip"}),
    ]

    refused = http.call("POST", f"{server.url}/send", json={"to": "x"})
    zipped = http.call("GET", f"{server.url}/get")

    assert refused.text == "Factură respinsă"
    assert refused.headers.get("retry-after") == "7" and http.retry_after(refused) == 7.0
    assert refused.url == f"{server.url}/send"
    assert zipped.json() == {"a": [1]} and http.json_object(zipped) == {"a": [1]}
    assert server.requests[0].json() == {"to": "x"}
    assert server.requests[0].headers["Content-Type"] == "application/json"
    with pytest.raises(TransientError, match="answered 429"):
        http.raise_for_status(refused)


def test_a_form_and_basic_auth_are_sent_as_requests_sent_them(servers):
    server = servers()

    http.call("POST", f"{server.url}/form", data={"To": "+373 1", "Body": "ă&b"}, auth=("AC", "t"))

    (request,) = server.requests
    assert request.form() == {"To": "+373 1", "Body": "ă&b"}
    assert request.headers["Authorization"] == "Basic QUM6dA=="


def test_provider_calls_use_the_environment_proxy_and_checked_calls_never_do(servers, monkeypatch):
    monkeypatch.setattr(settings, "ALLOW_PRIVATE_URLS", True)
    proxy, receiver = servers(), servers()
    monkeypatch.setattr(http, "_PROXIES", {"http": proxy.url})
    http.close_session()

    http.call("POST", "http://provider.example.md/api/send", json={})
    http.call_checked("POST", urlguard.check_url(f"{receiver.url}/hook"), data=b"{}")

    assert [r.path for r in proxy.requests] == ["http://provider.example.md/api/send"]
    assert len(receiver.requests) == 1


def test_a_refused_connection_and_a_timeout_are_transient(servers, monkeypatch):
    monkeypatch.setattr(settings, "ALLOW_PRIVATE_URLS", True)
    server = servers()
    port = server.port
    server.stop()
    with pytest.raises(TransientError, match="cannot reach 127.0.0.1"):
        http.call("POST", f"http://127.0.0.1:{port}/x")

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts (in the backlog), never answers
    try:
        target = urlguard.check_url(f"http://127.0.0.1:{silent.getsockname()[1]}/x")
        with pytest.raises(TransientError, match="timed out calling 127.0.0.1"):
            http.call_checked("POST", target, data=b"{}", timeout=0.2)
    finally:
        silent.close()
