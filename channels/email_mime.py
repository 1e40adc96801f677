"""The bytes of an email as it goes on the wire, built without an ``EmailMessage`` per send.

The email package's header parsing and folding cost more than the rest of a delivery, so a
header whose value is plain printable ASCII that fits a line is written as it is, and only the
others (encoded words for non-ASCII, folding, address syntax) go through the email package,
which also refuses what it would have refused (a CR or LF in a value), once per distinct value.
The MIME part (text, HTML alternative, attachments) is built by the email package as before,
once per distinct content: the recipients of one notification share it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from functools import lru_cache

from channels import documents
from channels.base import PermanentError, Rendered
from models.cache import ExpiringCache
from models.states import FailureReason
from settings import settings

#: How every part is written: the email package's default policy with CRLF line ends.
SMTP_POLICY = email_policy.SMTP
#: For a message to or from a non-ASCII address (sent with SMTPUTF8): headers in raw UTF-8.
SMTPUTF8_POLICY = email_policy.SMTP.clone(utf8=True)
#: A value written as it is: printable ASCII, no leading or trailing space, nothing the email
#: package would read as an encoded word.
_PLAIN = re.compile(r"(?!.*=\?)[!-~](?:[ -~]*[!-~])?")
#: The longest header line written without the email package's folding (RFC 5322's 78).
_LINE = 78
#: What a worker keeps of what it wrote, for SENDER_CACHE_SECONDS as it keeps notifications
#: (nothing with 0): header lines that needed the email package, and MIME parts without
#: attachments (one with attachments is built for each message).
_headers = ExpiringCache(max_entries=1024)
_parts = ExpiringCache(max_entries=64)


@dataclass(frozen=True)
class Composed:
    """An email ready for ``sendmail``: its bytes, its ``Message-ID``, and whether an address
    in it is non-ASCII (then it needs the server's SMTPUTF8)."""

    data: bytes
    message_id: str
    international: bool


def compose(
    rendered: Rendered, destination: str, attachments: Sequence[documents.Document] = ()
) -> Composed:
    """The message to ``destination``: the headers, then the MIME part (plain text, plus an
    HTML alternative when there is one, plus the attachments). A header the email package
    refuses fails the message with TEMPLATE_ERROR."""
    international = not (destination.isascii() and envelope_from(settings.MAIL_FROM).isascii())
    message_id = make_msgid(domain=sender_domain(settings.MAIL_FROM))
    headers = [
        ("From", settings.MAIL_FROM),
        ("To", destination),
        ("Subject", rendered.subject or ""),
        ("Date", format_datetime(datetime.now(UTC))),
        ("Message-ID", message_id),
        *rendered.headers.items(),
        *list_unsubscribe(rendered).items(),
    ]
    try:
        names = [name.lower() for name, _ in headers]
        if len(set(names)) != len(names):
            raise ValueError("a header is given twice")
        head = b"".join(header_line(name, value, international) for name, value in headers)
    except (ValueError, TypeError) as error:
        raise PermanentError(
            FailureReason.TEMPLATE_ERROR, f"invalid email header: {error}"
        ) from None
    if attachments:
        part = mime_part(rendered.body, rendered.html, attachments)
    else:
        part = _text_part(rendered.body, rendered.html)
    return Composed(head + part, message_id, international)


def header_line(name: str, value: str, international: bool = False) -> bytes:
    """``name: value`` and CRLF, folded and encoded as the email package does where needed."""
    if hasattr(value, "fold"):  # a header object that writes itself (UriListHeader)
        return value.fold(policy=SMTP_POLICY).encode("ascii")
    if isinstance(value, str) and len(name) + len(value) + 2 <= _LINE and _PLAIN.fullmatch(value):
        return f"{name}: {value}\r\n".encode("ascii")
    return _folded(name, value, international)


def _folded(name: str, value: str, international: bool) -> bytes:
    key = (name, value, international)
    folded = _headers.get(key)
    if folded is None:
        policy = SMTPUTF8_POLICY if international else SMTP_POLICY
        folded = policy.fold_binary(*policy.header_store_parse(name, value))
        _headers.put(key, folded)
    return folded


@lru_cache(maxsize=16)
def sender_domain(mail_from: str) -> str:
    """The domain of the From address, for Message-IDs."""
    return parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"


@lru_cache(maxsize=16)
def envelope_from(mail_from: str) -> str:
    """MAIL FROM when there is no return path: the From address, as ``send_message`` took it."""
    return parseaddr(mail_from)[1]


def mime_part(body: str, html: str | None, attachments: Sequence[documents.Document]) -> bytes:
    """The MIME headers (``Content-Type``, ``Content-Transfer-Encoding``, ``MIME-Version``), a
    blank line and the encoded content, as the email package writes them."""
    part = EmailMessage(policy=SMTP_POLICY)
    part.set_content(body)
    if html:
        part.add_alternative(html, subtype="html")
    for attachment in attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        part.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return part.as_bytes(policy=SMTP_POLICY)


def _text_part(body: str, html: str | None) -> bytes:
    """:func:`mime_part` without attachments, kept for the next recipient of the same content."""
    part = _parts.get((body, html))
    if part is None:
        part = mime_part(body, html, ())
        _parts.put((body, html), part)
    return part


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
