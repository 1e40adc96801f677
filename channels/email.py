"""Email over SMTP: one reused connection per worker thread, STARTTLS/SSL/AUTH from settings,
the notification's attachments from the document store, with BOUNCE_DOMAIN a VERP return
path per message (``channels.return_path``) as the envelope sender, and the unsubscribe link
and address the renderer chose (``channels.unsubscribe``) as ``List-Unsubscribe``."""

from __future__ import annotations

import smtplib
import ssl
import threading
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

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
            self._send(email, envelope_sender)
        except smtplib.SMTPRecipientsRefused as error:
            self.close()
            code, reply = next(iter(error.recipients.values()))
            raise _by_code(code, reply, FailureReason.INVALID_DESTINATION) from None
        except (
            smtplib.SMTPAuthenticationError,
            smtplib.SMTPConnectError,
            smtplib.SMTPHeloError,
        ) as error:
            self.close()  # the server or our configuration, not this message: keep retrying
            raise TransientError(f"SMTP session failed: {_reply(error)}") from None
        except smtplib.SMTPResponseException as error:
            self.close()
            raise _by_code(
                error.smtp_code, error.smtp_error, FailureReason.REJECTED_BY_PROVIDER
            ) from None
        except (smtplib.SMTPException, OSError) as error:
            self.close()
            raise TransientError(f"SMTP connection failed: {error!r}") from None
        return Receipt(provider_id=email["Message-ID"])

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

    def _send(self, email: EmailMessage, envelope_sender: str | None) -> None:
        """Send on this thread's connection, from ``envelope_sender`` (MAIL FROM; None: the From
        address); a stale connection (closed by the server) is replaced once."""
        connection = getattr(self._local, "smtp", None)
        if connection is not None:
            try:
                connection.send_message(email, from_addr=envelope_sender)
                return
            except smtplib.SMTPServerDisconnected:
                self._local.smtp = None
        self._local.smtp = connect()
        self._local.smtp.send_message(email, from_addr=envelope_sender)


def connect() -> smtplib.SMTP:
    """Open an SMTP connection as the settings say (TLS mode, credentials, timeout)."""
    host, port, timeout = settings.SMTP_HOST, settings.SMTP_PORT, settings.SMTP_TIMEOUT_SECONDS
    mode = settings.SMTP_TLS.lower()
    connection: smtplib.SMTP
    if mode == "ssl":
        connection = smtplib.SMTP_SSL(host, port, timeout=timeout, context=_tls_context())
    else:
        connection = smtplib.SMTP(host, port, timeout=timeout)
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


def compose(
    rendered: Rendered, destination: str, attachments: Sequence[documents.Document] = ()
) -> EmailMessage:
    """Build the MIME message: plain text, plus an HTML alternative when there is one, plus
    the attachments."""
    sender_domain = parseaddr(settings.MAIL_FROM)[1].rpartition("@")[2] or "localhost"
    email = EmailMessage()
    try:
        email["From"] = settings.MAIL_FROM
        email["To"] = destination
        email["Subject"] = rendered.subject or ""
        email["Date"] = formatdate(usegmt=True)
        email["Message-ID"] = make_msgid(domain=sender_domain)
        for name, value in rendered.headers.items():
            email[name] = value
        for name, value in list_unsubscribe(rendered).items():
            email[name] = value
    except (ValueError, TypeError) as error:
        raise PermanentError(
            FailureReason.TEMPLATE_ERROR, f"invalid email header: {error}"
        ) from None
    email.set_content(rendered.body)
    if rendered.html:
        email.add_alternative(rendered.html, subtype="html")
    for attachment in attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        email.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return email


class UriListHeader(str):
    """A header that is a list of URIs in angle brackets (RFC 2369), written one URI a line and
    never encoded: the email package would fold a long URI apart or turn it into encoded words,
    which mail clients do not read as URIs."""

    name: str
    uris: tuple[str, ...]

    def __new__(cls, name: str, uris: Sequence[str]) -> UriListHeader:
        header = super().__new__(cls, ", ".join(f"<{uri}>" for uri in uris))
        header.name, header.uris = name, tuple(uris)
        return header

    def fold(self, *, policy) -> str:
        """The header as written: ``name: <uri>,`` and each further URI on a line of its own."""
        separator = f",{policy.linesep} "
        return f"{self.name}: {separator.join(f'<{uri}>' for uri in self.uris)}{policy.linesep}"


def list_unsubscribe(rendered: Rendered) -> dict[str, str]:
    """``List-Unsubscribe`` (RFC 2369) with the message's unsubscribe link and ``mailto:``
    address, those it has, and with a link ``List-Unsubscribe-Post`` (RFC 8058 one-click: mail
    clients POST ``List-Unsubscribe=One-Click`` to it); nothing for a message without either (a
    critical one, or neither PUBLIC_BASE_URL nor BOUNCE_DOMAIN set)."""
    link = rendered.metadata.get("unsubscribeUrl")
    mailto = rendered.metadata.get("unsubscribeMailto")
    uris = [uri for uri in (link, mailto) if uri]
    if not uris:
        return {}
    headers: dict[str, str] = {"List-Unsubscribe": UriListHeader("List-Unsubscribe", uris)}
    if link:
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


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
