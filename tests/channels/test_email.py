"""The email adapter against a real SMTP server: connections, TLS, AUTH and error classes."""

import datetime
import ipaddress
import socket
import ssl

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from channels.base import PermanentError, Rendered, TransientError
from channels.email import EmailChannel
from dev.embedded_redis import free_port
from models.states import FailureReason
from settings import settings
from tests.support import ScriptedMailServer

HELLO = Rendered(subject="Salut", body="Text", html="<p>Text</p>")


@pytest.fixture
def channel():
    channel = EmailChannel()
    yield channel
    channel.close()


def test_one_connection_serves_many_messages(smtp, channel):
    for number in range(5):
        channel.send(HELLO, f"p{number}@example.md")
    assert len(smtp.received) == 5
    assert len(smtp.sessions) == 1


def test_a_connection_closed_by_the_server_is_replaced_without_failing(smtp, channel):
    channel.send(HELLO, "a@example.md")
    channel._local.smtp.sock.shutdown(socket.SHUT_RDWR)  # as when the server drops it

    channel.send(HELLO, "b@example.md")

    assert [mail.rcpt_tos for mail in smtp.received] == [["a@example.md"], ["b@example.md"]]
    assert len(smtp.sessions) == 2


@pytest.mark.parametrize(
    ("reply", "error", "reason"),
    [
        ("451 4.3.0 Try later", TransientError, None),
        ("552 5.3.4 Message too big", PermanentError, FailureReason.REJECTED_BY_PROVIDER),
    ],
)
def test_data_replies_are_classified(smtp, channel, reply, error, reason):
    smtp.data_replies = [reply]
    with pytest.raises(error) as raised:
        channel.send(HELLO, "a@example.md")
    assert reply.split()[0] in str(raised.value)
    if reason:
        assert raised.value.reason == reason


def test_refused_recipient_classes(smtp, channel):
    smtp.rcpt_replies = {
        "gone@example.md": "550 5.1.1 No such user",
        "full@example.md": "452 4.2.2 Full",
    }
    with pytest.raises(PermanentError) as gone:
        channel.send(HELLO, "gone@example.md")
    assert gone.value.reason == FailureReason.INVALID_DESTINATION
    with pytest.raises(TransientError):
        channel.send(HELLO, "full@example.md")
    channel.send(HELLO, "ok@example.md")  # the adapter recovers for the next message
    assert len(smtp.received) == 1
    assert len(smtp.sessions) == 1  # on the same connection: a refusal does not end it


def test_no_server_is_transient(channel, monkeypatch):
    monkeypatch.setattr(settings, "SMTP_HOST", "127.0.0.1")
    monkeypatch.setattr(settings, "SMTP_PORT", free_port())
    with pytest.raises(TransientError):
        channel.send(HELLO, "a@example.md")


# --- TLS and AUTH --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, trusted through SMTP_CA_FILE."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"herald",
        b"s3cret",
    )
    return AuthResult(success=ok, handled=False)


def start_tls_server(certificate, monkeypatch, mode: str):
    """An SMTP server with AUTH over TLS: STARTTLS required, or TLS from the first byte (ssl)."""
    cert_file, key_file = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    handler = ScriptedMailServer()
    port = free_port()
    tls = {"tls_context": context, "require_starttls": True, "auth_require_tls": True}
    if mode == "ssl":
        # aiosmtpd does not count implicit TLS as TLS for AUTH; the transport is TLS anyway.
        tls = {"ssl_context": context, "auth_require_tls": False}
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        **tls,
    )
    controller.start()
    monkeypatch.setattr(settings, "SMTP_HOST", "127.0.0.1")
    monkeypatch.setattr(settings, "SMTP_PORT", port)
    monkeypatch.setattr(settings, "SMTP_TLS", mode)
    monkeypatch.setattr(settings, "SMTP_CA_FILE", cert_file)
    monkeypatch.setattr(settings, "SMTP_USER", "herald")
    monkeypatch.setattr(settings, "SMTP_PASSWORD", "s3cret")
    return handler, controller


@pytest.fixture
def tls_server(certificate, monkeypatch):
    handler, controller = start_tls_server(certificate, monkeypatch, "starttls")
    yield handler
    controller.stop()


def test_starttls_and_auth(tls_server, channel):
    channel.send(HELLO, "a@example.md")
    assert [mail.rcpt_tos for mail in tls_server.received] == [["a@example.md"]]


def test_implicit_tls_and_auth(certificate, monkeypatch, channel):
    handler, controller = start_tls_server(certificate, monkeypatch, "ssl")
    try:
        channel.send(HELLO, "a@example.md")
    finally:
        controller.stop()
    assert [mail.rcpt_tos for mail in handler.received] == [["a@example.md"]]


def test_wrong_password_is_transient_not_the_messages_fault(tls_server, channel, monkeypatch):
    monkeypatch.setattr(settings, "SMTP_PASSWORD", "wrong")
    with pytest.raises(TransientError, match="535"):
        channel.send(HELLO, "a@example.md")


def test_an_untrusted_certificate_is_refused(tls_server, channel, monkeypatch):
    monkeypatch.setattr(settings, "SMTP_CA_FILE", "")
    with pytest.raises(TransientError, match="CERTIFICATE_VERIFY_FAILED"):
        channel.send(HELLO, "a@example.md")
    assert tls_server.received == []


class DroppingAtData(ScriptedMailServer):
    """Once ``drop`` is set, takes each message, then closes the connection instead of
    answering DATA (as a server that crashed, or a network cut, after receiving it)."""

    drop = False

    async def handle_DATA(self, server, session, envelope):
        await super().handle_DATA(server, session, envelope)
        if self.drop:
            server.transport.close()
        return "250 OK"


class CountingNoops(ScriptedMailServer):
    def __init__(self) -> None:
        super().__init__()
        self.noops = 0

    async def handle_NOOP(self, server, session, envelope, arg):
        self.noops += 1
        return "250 OK"


def test_a_connection_lost_after_the_data_went_out_is_not_sent_again(serve, channel):
    server = serve(DroppingAtData())
    channel.send(HELLO, "first@example.md")  # a reused connection would be replaced once
    server.received.clear()
    server.drop = True

    with pytest.raises(TransientError):
        channel.send(HELLO, "a@example.md")

    assert [mail.rcpt_tos for mail in server.received] == [["a@example.md"]]


def test_an_idle_connection_is_checked_before_its_next_message(serve, channel, monkeypatch):
    server = serve(CountingNoops())
    channel.send(HELLO, "a@example.md")
    channel.send(HELLO, "b@example.md")
    assert server.noops == 0  # a connection in steady use is not checked
    monkeypatch.setattr(settings, "SMTP_IDLE_CHECK_SECONDS", 0.0)

    channel.send(HELLO, "c@example.md")

    assert server.noops == 1
    assert len(server.received) == 3
    assert len(server.sessions) == 1
