"""SMS through the gateway named by ``SMS_PROVIDER``; Twilio's Messages API is built in.

A gateway is one :class:`SmsProvider` subclass listed in ``PROVIDERS``: it sends a text to an
E.164 number and classifies the gateway's answers. The channel around it validates numbers,
counts segments and records them on the message.

Twilio's delivery receipts (status callbacks) come to ``STATUS_CALLBACK_PATH`` on
``PUBLIC_BASE_URL``: each send names that URL, and :func:`twilio_signature`,
:data:`TWILIO_STATUSES` and :func:`twilio_failure_reason` are how the web process checks and
reads what Twilio posts there.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from channel_table import SMS
from channels import http
from channels.base import (
    Channel,
    DeadAddress,
    DeliveryError,
    InvalidContent,
    NotConfigured,
    PermanentError,
    Receipt,
    Rendered,
    TransientError,
)
from channels.errors import ChannelError
from channels.http import json_object
from channels.phone import parse_phone, plain_text
from models.receipts import ReceiptStatus
from models.states import FailureReason
from settings import settings

GSM7 = "GSM-7"
UCS2 = "UCS-2"
#: The GSM 03.38 default alphabet: one septet each (ESC itself is not text).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: The extension table: ESC plus one septet each, so two septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")


@dataclass(frozen=True)
class Segments:
    """How many SMS a text takes, and in which encoding."""

    count: int
    encoding: str


def count_segments(text: str) -> Segments:
    """Segments for ``text``: GSM-7 when every character is in the GSM alphabet (160 septets
    alone, 153 per part when concatenated), else UCS-2 (70 UTF-16 units alone, 67 per part).

    An escape sequence or a surrogate pair is never split across parts, as gateways do.
    """
    if all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text):
        units = [2 if char in GSM7_EXTENSION else 1 for char in text]
        return Segments(_pack(units, single=160, part=153), GSM7)
    units = [2 if ord(char) > 0xFFFF else 1 for char in text]
    return Segments(_pack(units, single=70, part=67), UCS2)


def _pack(units: list[int], single: int, part: int) -> int:
    if sum(units) <= single:
        return 1
    parts, used = 1, 0
    for size in units:
        if used + size > part:
            parts, used = parts + 1, 0
        used += size
    return parts


# --- gateways ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SmsAccepted:
    """A gateway's acceptance: its message id and, when it says, the segments it billed."""

    provider_id: str | None
    segments: int | None = None


class SmsProvider:
    """One SMS gateway's API: send ``text`` to an E.164 number, or raise a delivery error."""

    name: ClassVar[str]
    #: The settings the gateway needs (its credentials and sender).
    required_settings: ClassVar[tuple[str, ...]] = ()

    def send(self, to: str, text: str) -> SmsAccepted:
        raise NotImplementedError


class TwilioProvider(SmsProvider):
    """Twilio's Messages API, or any gateway speaking it (form POST, basic auth)."""

    name = "twilio"
    required_settings = ("SMS_ACCOUNT_SID", "SMS_AUTH_TOKEN", "SMS_FROM")
    INVALID_DESTINATION_CODES = frozenset({21211, 21614})  # invalid To; not a mobile number
    UNSUBSCRIBED_CODES = frozenset({21610})  # the recipient replied STOP

    def send(self, to: str, text: str) -> SmsAccepted:
        account = settings.SMS_ACCOUNT_SID
        url = (
            f"{settings.SMS_API_URL.rstrip('/')}/2010-04-01/Accounts/"
            f"{quote(account, safe='')}/Messages.json"
        )
        form = {"To": to, "From": settings.SMS_FROM, "Body": text}
        if callback := status_callback_url():
            form["StatusCallback"] = callback
        response = http.call("POST", url, data=form, auth=(account, settings.SMS_AUTH_TOKEN))
        if not 200 <= response.status_code < 300:
            raise self.classify(response)
        answer = json_object(response)
        return SmsAccepted(
            provider_id=str(answer["sid"]) if answer.get("sid") else None,
            segments=_positive_int(answer.get("num_segments")),
        )

    def classify(self, response: http.Response) -> DeliveryError:
        """The error for a Twilio error answer (``{"code", "message", "status"}``)."""
        status = response.status_code
        error = json_object(response)
        code = _positive_int(error.get("code"))
        detail = str(error.get("message") or http.snippet(response))[:300]
        message = f"{http.host(response.url)} answered {status}: Twilio error {code}: {detail}"
        if status in http.TRANSIENT_STATUSES or status >= 500:
            return TransientError(message, retry_after=http.retry_after(response))
        if status == 401:
            return TransientError(f"{message} (check SMS_ACCOUNT_SID and SMS_AUTH_TOKEN)")
        if code in self.UNSUBSCRIBED_CODES:
            return DeadAddress(message)
        if code in self.INVALID_DESTINATION_CODES:
            return PermanentError(FailureReason.INVALID_DESTINATION, message)
        return PermanentError(FailureReason.REJECTED_BY_PROVIDER, message)


# --- Twilio's status callbacks ------------------------------------------------------------
#: Where on Herald Twilio posts a message's status changes.
STATUS_CALLBACK_PATH = "/v1/providers/twilio/status"
#: Twilio's message statuses, as receipts. Those before delivery (and ``canceled``, which
#: only a scheduled Twilio message reaches) tell Herald nothing new.
TWILIO_STATUSES = {
    **dict.fromkeys(
        ("accepted", "scheduled", "queued", "sending", "sent", "canceled", "partially_delivered"),
        ReceiptStatus.SENT,
    ),
    "delivered": ReceiptStatus.DELIVERED,
    "read": ReceiptStatus.READ,
    "undelivered": ReceiptStatus.FAILED,
    "failed": ReceiptStatus.FAILED,
}
#: Twilio ErrorCodes of an undelivered message that say the number itself cannot be reached:
#: unreachable handset (30003), unknown handset (30005), landline or unreachable carrier
#: (30006), and the recipient having replied STOP (21610).
TWILIO_DEAD_ADDRESS_CODES = frozenset({30003, 30005, 30006, 21610})


def status_callback_url() -> str | None:
    """The StatusCallback each send names: STATUS_CALLBACK_PATH on PUBLIC_BASE_URL; None
    when PUBLIC_BASE_URL is empty (then Twilio sends no receipts)."""
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    return f"{base}{STATUS_CALLBACK_PATH}" if base else None


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """The ``X-Twilio-Signature`` of a request to ``url`` with these POST parameters: base64
    HMAC-SHA1, keyed with the auth token, of the URL followed by each parameter's name and
    value, sorted by name (a repeated name's values sorted too)."""
    signed = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(
        auth_token.encode(), signed.encode(errors="surrogatepass"), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode()


def twilio_signature_valid(
    auth_token: str, url: str, params: list[tuple[str, str]], signature: str | None
) -> bool:
    """Whether ``signature`` is Twilio's for this request, compared in constant time. As
    Twilio's own validators do, an https URL is also tried with its default port (443) written
    out or left out."""
    if not auth_token or not signature:
        return False
    given = signature.encode()
    return any(
        hmac.compare_digest(twilio_signature(auth_token, candidate, params).encode(), given)
        for candidate in _port_variants(url)
    )


def _port_variants(url: str) -> list[str]:
    """``url``, and for https the same with the default port written out or left out."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        return [url]
    if parts.port is None:
        return [url, parts._replace(netloc=f"{parts.netloc}:443").geturl()]
    if parts.port == 443:
        return [url, parts._replace(netloc=parts.netloc.rsplit(":", 1)[0]).geturl()]
    return [url]


def twilio_failure_reason(error_code: int | None) -> FailureReason:
    """Herald's reason for an undelivered message with this Twilio ErrorCode."""
    if error_code in TWILIO_DEAD_ADDRESS_CODES:
        return FailureReason.DEAD_ADDRESS
    if error_code in TwilioProvider.INVALID_DESTINATION_CODES:
        return FailureReason.INVALID_DESTINATION
    return FailureReason.REJECTED_BY_PROVIDER


#: The gateways ``SMS_PROVIDER`` may name.
PROVIDERS: dict[str, SmsProvider] = {provider.name: provider for provider in (TwilioProvider(),)}


class UnknownProvider(ChannelError, ValueError):
    """``SMS_PROVIDER`` names no gateway in ``PROVIDERS``."""


def sms_provider(name: str) -> SmsProvider:
    """The gateway called ``name`` (case-insensitive)."""
    try:
        return PROVIDERS[name.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(PROVIDERS))
        raise UnknownProvider(f"SMS_PROVIDER={name!r} is not one of: {known}") from None


# --- the channel ---------------------------------------------------------------------------
class SmsChannel(Channel):
    row = SMS

    def missing_settings(self) -> list[str]:
        """The settings the gateway ``SMS_PROVIDER`` names needs and this server lacks."""
        try:
            provider = sms_provider(settings.SMS_PROVIDER)
        except UnknownProvider:
            return ["SMS_PROVIDER"]
        return [name for name in provider.required_settings if not getattr(settings, name)]

    def parse_destination(self, value: Any) -> str:
        return parse_phone(value)

    def check_content(self, content: dict[str, Any]) -> None:
        segments = count_segments(plain_text(content["body"], content.get("action_url")))
        limit = settings.SMS_MAX_SEGMENTS
        if segments.count > limit:
            raise InvalidContent(
                "body",
                f"Too long for SMS: it would take {segments.count} {segments.encoding} segments "
                f"(body, plus actionUrl if given); at most {limit} are allowed.",
            )

    def send(self, rendered: Rendered, destination: str) -> Receipt:
        try:
            provider = sms_provider(settings.SMS_PROVIDER)
        except UnknownProvider as error:
            raise NotConfigured(str(error)) from None
        self.require_configured()
        text = plain_text(rendered.body, rendered.action_url)
        counted = count_segments(text)
        accepted = provider.send(destination, text)
        return Receipt(
            provider_id=accepted.provider_id,
            details={"segments": accepted.segments or counted.count, "encoding": counted.encoding},
        )

    def close(self) -> None:
        http.close_session()


def _positive_int(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None
