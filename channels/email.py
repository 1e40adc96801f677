"""Email over SMTP: one reused connection per worker thread (checked with NOOP after
SMTP_IDLE_CHECK_SECONDS idle), STARTTLS/SSL/AUTH from settings, the message's bytes from
``channels.email_mime`` with the notification's attachments from the document store, with
BOUNCE_DOMAIN a VERP return path per message (``channels.return_path``) as the envelope sender,
and the unsubscribe link and address the renderer chose (``channels.unsubscribe``) as
``List-Unsubscribe``."""

from __future__ import annotations

import smtplib
import ssl
import threading
import time

from marshmallow import ValidationError, validate

from channel_table import EMAIL
from channels import documents
from channels.base import (
    Channel,
    InvalidContent,
    InvalidDestination,
    PermanentError,
    Receipt,
    Rendered,
    TransientError,
)
from channels.email_mime import Composed, compose, envelope_from
from channels.return_path import return_path
from models.states import FailureReason
from settings import settings

_is_email = validate.Email()


class EmailChannel(Channel):
    row = EMAIL
    required_settings = ("SMTP_HOST",)

    def __init__(self) -> None:
        self._local = threading.local()

    def parse_destination(self, value) -> str:
        address = super().parse_destination(value)
        try:
            if len(address) > 254 or any(char.isspace() for char in address):
                raise ValidationError("")
            _is_email(address)
        except ValidationError:
            raise InvalidDestination("Not a valid email address.") from None
        return address

    def check_content(self, content: dict) -> None:
        if not content.get("subject"):
            raise InvalidContent("subject", "Required for email recipients.")

    def send(self, rendered: Rendered, destination: str) -> Receipt:
        self.require_configured()
        email = compose(rendered, destination, self._attachments(rendered))
        envelope_sender = return_path(rendered.metadata.get("messageId"))
        try:
            self._send(email, envelope_sender or envelope_from(settings.MAIL_FROM), destination)
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = next(iter(error.recipients.values()))
            self._after_refusal(code)
            raise _by_code(code, reply, FailureReason.INVALID_DESTINATION) from None
        except (
            smtplib.SMTPAuthenticationError,
            smtplib.SMTPConnectError,
            smtplib.SMTPHeloError,
        ) as error:
            self.close()  # the server or our configuration, not this message: keep retrying
            raise TransientError(f"SMTP session failed: {_reply(error)}") from None
        except smtplib.SMTPResponseException as error:
            if isinstance(error, smtplib.SMTPSenderRefused | smtplib.SMTPDataError):
                self._after_refusal(error.smtp_code)
            else:
                self.close()
            raise _by_code(
                error.smtp_code, error.smtp_error, FailureReason.REJECTED_BY_PROVIDER
            ) from None
        except (smtplib.SMTPException, OSError) as error:
            self.close()
            raise TransientError(f"SMTP connection failed: {error!r}") from None
        return Receipt(provider_id=email.message_id)

    def _after_refusal(self, code: int) -> None:
        """After the server refused one message (``smtplib`` has sent RSET): the session goes
        on serving the next message, unless the server is closing it (421)."""
        if code == 421:
            self.close()

    def close(self) -> None:
        connection = getattr(self._local, "smtp", None)
        self._local.smtp = None
        if connection is not None:
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                connection.close()

    def _attachments(self, rendered: Rendered) -> list[documents.Document]:
        """The message's attachments, read from the document store. Each thread keeps the last
        message's, so the recipients of one notification read each file once."""
        references = rendered.content.get("attachments") or []
        cached = getattr(self._local, "attachments", {})
        loaded = {}
        for reference in references:
            document_id = reference["document_id"]
            loaded[document_id] = cached.get(document_id) or _load(reference)
        self._local.attachments = loaded
        return [loaded[reference["document_id"]] for reference in references]

    def _send(self, email: Composed, envelope_sender: str, destination: str) -> None:
        """Send on this thread's connection, from ``envelope_sender`` (MAIL FROM). A reused
        connection that the server closed is replaced once, unless the message's data had gone
        out on it (the server may have it: the attempt ends, to be retried later)."""
        connection = self._connection()
        try:
            transmit(connection, email, envelope_sender, destination)
        except smtplib.SMTPServerDisconnected:
            self._local.smtp = None
            if connection.data_sent or connection.fresh:
                raise
            self._local.smtp = connection = connect()
            transmit(connection, email, envelope_sender, destination)
        finally:
            connection.fresh, self._local.used_at = False, time.monotonic()

    def _connection(self) -> _SMTP | _SMTPOverTLS:
        """This thread's open connection (checked with NOOP when it has been idle longer than
        SMTP_IDLE_CHECK_SECONDS), or a new one."""
        connection = getattr(self._local, "smtp", None)
        idle = time.monotonic() - getattr(self._local, "used_at", 0.0)
        stale = idle > settings.SMTP_IDLE_CHECK_SECONDS
        if connection is not None and stale and not _answers(connection):
            self.close()
            connection = None
        if connection is None:
            connection = self._local.smtp = connect()
        return connection


def _answers(connection: smtplib.SMTP) -> bool:
    try:
        return connection.noop()[0] == 250
    except (smtplib.SMTPException, OSError):
        return False


class _Session:
    """What a connection knows of its use: ``fresh`` until its first message, ``data_sent``
    once the current message's data went out (DATA issued)."""

    fresh = True
    data_sent = False

    def mail(self, *args, **kwargs):
        self.data_sent = False
        return super().mail(*args, **kwargs)

    def data(self, *args, **kwargs):
        self.data_sent = True
        return super().data(*args, **kwargs)


class _SMTP(_Session, smtplib.SMTP):
    pass


class _SMTPOverTLS(_Session, smtplib.SMTP_SSL):
    pass


def transmit(
    connection: smtplib.SMTP, email: Composed, envelope_sender: str, destination: str
) -> None:
    """One SMTP transaction, as ``SMTP.send_message`` makes it: with SMTPUTF8 when an address
    needs it (refused when the server does not offer it)."""
    options: tuple[str, ...] = ()
    if email.international:
        connection.ehlo_or_helo_if_needed()
        if not connection.has_extn("smtputf8"):
            raise smtplib.SMTPNotSupportedError(
                "a non-ASCII address needs SMTPUTF8, which the server does not offer"
            )
        options = ("SMTPUTF8", "BODY=8BITMIME")
    connection.sendmail(envelope_sender, [destination], email.data, options)


def connect() -> _SMTP | _SMTPOverTLS:
    """Open an SMTP connection as the settings say (TLS mode, credentials, timeout)."""
    host, port, timeout = settings.SMTP_HOST, settings.SMTP_PORT, settings.SMTP_TIMEOUT_SECONDS
    mode = settings.SMTP_TLS.lower()
    connection: _SMTP | _SMTPOverTLS
    if mode == "ssl":
        connection = _SMTPOverTLS(host, port, timeout=timeout, context=_tls_context())
    else:
        connection = _SMTP(host, port, timeout=timeout)
    try:
        if mode == "starttls":
            connection.starttls(context=_tls_context())
        if settings.SMTP_USER:
            connection.login(settings.SMTP_USER, settings.SMTP_PASSWORD)
    except BaseException:
        connection.close()
        raise
    return connection


def _tls_context() -> ssl.SSLContext:
    """Verifying TLS: the system CAs, plus SMTP_CA_FILE when set."""
    context = ssl.create_default_context()
    if settings.SMTP_CA_FILE:
        context.load_verify_locations(settings.SMTP_CA_FILE)
    return context


def _load(reference: dict) -> documents.Document:
    """An attachment from the store. One that is gone will not come back: the message fails."""
    try:
        return documents.get(reference["document_id"])
    except documents.DocumentNotFound:
        raise PermanentError(
            FailureReason.TEMPLATE_ERROR,
            f"attachment {reference['filename']!r} is missing from the document store",
        ) from None
    except OSError as error:
        raise TransientError(f"document store: {error.strerror or error!r}") from None


def _reply(error: smtplib.SMTPResponseException) -> str:
    text = error.smtp_error
    return f"{error.smtp_code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"


def _by_code(code: int, reply: bytes | str, permanent_reason: FailureReason) -> Exception:
    """SMTP replies: 4xx try again later, 5xx do not."""
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    message = f"SMTP {code} {text}"
    if 400 <= code < 500:
        return TransientError(message)
    return PermanentError(permanent_reason, message)
