"""Client certificates (MPass-style): bound with the CLI, forwarded by a trusted proxy in
X-Client-Cert (URL-encoded PEM, as nginx's $ssl_client_escaped_cert) and ignored from anyone
else; a sender may require its certificate as well as its key. Direct TLS: tests/e2e/test_tls.py."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from models.certificate import bind_certificate, read_pem, set_certificate_required
from models.notification import Notification
from settings import settings
from tests.certificates import certificate_authority, issue
from tests.factories import email_notification

PROXY, CLIENT = "10.0.0.7", "192.0.2.10"


@pytest.fixture(scope="module")
def pki():
    ca, other_ca = certificate_authority("MPass test CA"), certificate_authority("Another CA")
    return {
        "ca": ca,
        "acme": issue(ca, "acme-system"),
        "acme-renewed": issue(ca, "acme-system"),
        "globex": issue(ca, "globex-system"),
        "unbound": issue(ca, "unbound-system"),
        "other-ca": issue(other_ca, "acme-system"),
        "expired": issue(ca, "acme-old", valid_from=timedelta(days=-30), valid_until=-timedelta(1)),
    }


@pytest.fixture
def bound(pki, sender, other_sender, monkeypatch):
    """acme holds two certificates, globex one; 10.0.0.0/24 is the trusted proxy network."""
    monkeypatch.setattr(settings, "TRUSTED_PROXY_ADDRESSES", "10.0.0.0/24, 2001:db8::/32")
    for name in ("acme", "acme-renewed", "expired"):
        bind_certificate(sender.sender, read_pem(pki[name].pem))
    bind_certificate(other_sender.sender, read_pem(pki["globex"].pem))
    return pki


def post(client, certificate=None, peer=PROXY, headers=None):
    """POST a notification with ``certificate`` forwarded (its PEM, URL-encoded, or the raw
    header text given) from ``peer``; the response."""
    headers = dict(headers or {})
    if certificate is not None:
        headers["X-Client-Cert"] = getattr(certificate, "escaped", certificate)
    return client.post(
        "/v1/notifications",
        json=email_notification(),
        headers=headers,
        environ_base={"REMOTE_ADDR": peer},
    )


def sender_of(response) -> str:
    assert response.status_code == 202, response.get_json()
    return Notification.get_by_id(response.get_json()["id"]).sender.name


def refusal(response) -> str:
    assert response.status_code == 401, response.get_json()
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = response.get_json()
    assert body["code"] == 401
    return body["message"]


# --- the proxy path ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["acme", "acme-renewed"])
def test_a_bound_certificate_from_a_trusted_proxy_is_its_sender_without_a_key(client, bound, name):
    assert sender_of(post(client, bound[name])) == "acme"
    assert sender_of(post(client, bound["globex"], peer="10.0.0.200")) == "globex"
    assert sender_of(post(client, bound["acme"], peer="2001:db8::1")) == "acme"
    assert sender_of(post(client, bound["acme"], peer="::ffff:10.0.0.9")) == "acme"


def test_x_client_cert_from_anyone_else_is_ignored(client, bound, other_sender, monkeypatch):
    assert refusal(post(client, bound["acme"], peer=CLIENT)) == (
        "A valid API key is required: Authorization: Bearer <key>."
    )
    # ignored, not checked against the key: a client cannot make its own key fail either
    assert sender_of(post(client, bound["acme"], peer=CLIENT, headers=other_sender.headers)) == (
        "globex"
    )
    assert sender_of(post(client, "garbage", peer=CLIENT, headers=other_sender.headers)) == (
        "globex"
    )
    monkeypatch.setattr(settings, "TRUSTED_PROXY_ADDRESSES", "")  # the default: no proxy
    refusal(post(client, bound["acme"], peer=PROXY))


def test_an_unbound_certificate_needs_a_key_and_then_the_key_decides(client, bound, sender):
    assert "not bound to any sender" in refusal(post(client, bound["unbound"]))
    assert sender_of(post(client, bound["unbound"], headers=sender.headers)) == "acme"
    assert sender_of(post(client, bound["other-ca"], headers=sender.headers)) == "acme"


def test_a_certificate_of_another_sender_than_the_key_is_refused(client, bound, sender):
    assert "another sender" in refusal(post(client, bound["globex"], headers=sender.headers))
    assert sender_of(post(client, bound["acme"], headers=sender.headers)) == "acme"


def test_a_forwarded_certificate_must_be_valid_now(client, bound):
    assert "expired" in refusal(post(client, bound["expired"]))


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        "%ZZ%%",
        quote("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", safe=""),
        "-----BEGIN CERTIFICATE-----",
        "x" * 300_000,
    ],
    ids=["not PEM", "bad escapes", "bad base64", "truncated", "too long"],
)
def test_a_malformed_header_from_a_trusted_proxy_is_a_clear_401(client, bound, header, sender):
    message = refusal(post(client, header))
    assert "X-Client-Cert" in message
    assert "X-Client-Cert" in refusal(post(client, header, headers=sender.headers))


def test_two_certificates_or_a_key_in_the_header_are_refused(client, bound):
    two = quote((bound["acme"].pem + bound["globex"].pem).decode(), safe="")
    assert "2 certificates" in refusal(post(client, two))
    key = quote(bound["acme"].key_pem.decode(), safe="")
    assert "X-Client-Cert" in refusal(post(client, key))


@hypothesis_settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(header=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=400))
def test_any_header_from_a_trusted_proxy_is_never_a_500(client, bound, header):
    response = post(client, "-----BEGIN CERTIFICATE-----" + header)
    assert response.status_code == 401
    assert "X-Client-Cert" in response.get_json()["message"]


def test_a_certificate_sender_sees_only_its_own(client, bound, other_sender):
    theirs = client.post(
        "/v1/notifications", json=email_notification(), headers=other_sender.headers
    )
    path = f"/v1/notifications/{theirs.get_json()['id']}"
    environ = {"REMOTE_ADDR": PROXY}
    assert (
        client.get(
            path, headers={"X-Client-Cert": bound["acme"].escaped}, environ_base=environ
        ).status_code
        == 404
    )
    assert (
        client.get(
            path, headers={"X-Client-Cert": bound["globex"].escaped}, environ_base=environ
        ).status_code
        == 200
    )


# --- a sender requiring a certificate and a key --------------------------------------------
def test_a_sender_may_require_its_certificate_and_its_key(client, bound, sender):
    set_certificate_required(sender.sender, True)
    assert "requires a client certificate" in refusal(post(client, headers=sender.headers))
    assert "none was presented" in refusal(post(client, headers=sender.headers))
    assert "not bound to it" in refusal(post(client, bound["unbound"], headers=sender.headers))
    assert "another sender" in refusal(post(client, bound["globex"], headers=sender.headers))
    assert "requires its API key" in refusal(post(client, bound["acme"]))
    assert sender_of(post(client, bound["acme"], headers=sender.headers)) == "acme"
    # the certificate must come from the trusted proxy: a client's own header is not one
    assert "none was presented" in refusal(post(client, bound["acme"], CLIENT, sender.headers))


def test_requiring_a_certificate_concerns_that_sender_only(client, bound, sender, other_sender):
    set_certificate_required(sender.sender, True)
    assert sender_of(post(client, headers=other_sender.headers)) == "globex"
    assert sender_of(post(client, bound["globex"])) == "globex"


# --- the CLI -------------------------------------------------------------------------------
@pytest.fixture
def pem_files(pki, tmp_path):
    return {name: issued.write(tmp_path, name)[0] for name, issued in pki.items()}


def test_bind_list_and_unbind_certificates(herald, pki, pem_files):
    assert herald("senders", "create", "acme").returncode == 0
    bound = herald("senders", "bind-certificate", "acme", str(pem_files["acme"]))
    assert (bound.returncode, bound.stdout, bound.stderr) == (0, pki["acme"].fingerprint + "\n", "")
    assert (
        herald("senders", "bind-certificate", "acme", str(pem_files["acme-renewed"])).returncode
        == 0
    )
    again = herald("senders", "bind-certificate", "acme", str(pem_files["acme"]))
    assert again.returncode == 0 and "already bound" in again.stderr

    listed = herald("senders", "certificates", "acme").stdout.splitlines()
    assert listed[0] == "certificate required with the key: no"
    assert listed[1].startswith("FINGERPRINT")
    rows = {line.split()[0]: line for line in listed[2:]}
    assert set(rows) == {pki["acme"].fingerprint, pki["acme-renewed"].fingerprint}
    assert "CN=acme-system,O=Herald tests" in rows[pki["acme"].fingerprint]

    colons = ":".join(pki["acme"].fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    assert herald("senders", "unbind-certificate", "acme", colons).returncode == 0
    by_file = herald("senders", "unbind-certificate", "acme", str(pem_files["acme-renewed"]))
    assert by_file.returncode == 0
    assert herald("senders", "certificates", "acme").stdout.count("\n") == 2
    gone = herald("senders", "unbind-certificate", "acme", pki["acme"].fingerprint)
    assert gone.returncode == 1 and "no certificate" in gone.stderr


def test_a_certificate_belongs_to_one_sender(herald, pki, pem_files):
    for name in ("acme", "globex"):
        herald("senders", "create", name)
    assert herald("senders", "bind-certificate", "acme", str(pem_files["acme"])).returncode == 0
    taken = herald("senders", "bind-certificate", "globex", str(pem_files["acme"]))
    assert (taken.returncode, taken.stdout) == (1, "")
    assert "bound to sender 'acme'" in taken.stderr
    refused = herald("senders", "unbind-certificate", "globex", pki["acme"].fingerprint)
    assert refused.returncode == 1
    assert pki["acme"].fingerprint in herald("senders", "certificates", "acme").stdout


def test_bad_certificate_files_are_clear_errors(herald, pki, tmp_path):
    herald("senders", "create", "acme")
    key_only = tmp_path / "key.pem"
    key_only.write_bytes(pki["acme"].key_pem)
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    two = tmp_path / "two.pem"
    two.write_bytes(pki["acme"].pem + pki["globex"].pem)
    cases = {
        str(tmp_path / "missing.pem"): "cannot read",
        str(key_only): "no PEM certificate",
        str(broken): "not a readable PEM certificate",
        str(two): "2 certificates in it",
        str(tmp_path): "cannot read",
    }
    for path, reason in cases.items():
        result = herald("senders", "bind-certificate", "acme", path)
        assert (result.returncode, result.stdout) == (2, ""), path
        assert result.stderr.startswith(f"herald: {path}") or "cannot read" in result.stderr
        assert reason in result.stderr, result.stderr
    assert herald("senders", "certificates", "acme").stdout.count("\n") == 2
    unknown = herald("senders", "bind-certificate", "nobody", str(tmp_path / "missing.pem"))
    assert unknown.returncode == 2


def test_an_expired_certificate_is_bound_with_a_warning(herald, pki, pem_files):
    herald("senders", "create", "acme")
    result = herald("senders", "bind-certificate", "acme", str(pem_files["expired"]))
    assert (result.returncode, result.stdout) == (0, pki["expired"].fingerprint + "\n")
    assert result.stderr.startswith("herald: warning: the certificate expired on ")


def test_require_certificate_on_and_off(herald, pem_files):
    herald("senders", "create", "acme")
    on = herald("senders", "require-certificate", "acme", "on")
    assert on.returncode == 0 and "no certificate bound yet" in on.stderr
    assert "required with the key: yes" in herald("senders", "certificates", "acme").stdout
    assert herald("senders", "require-certificate", "acme", "off").returncode == 0
    assert "required with the key: no" in herald("senders", "certificates", "acme").stdout
    assert herald("senders", "require-certificate", "acme", "maybe").returncode == 2
    assert herald("senders", "require-certificate", "nobody", "on").returncode == 1
