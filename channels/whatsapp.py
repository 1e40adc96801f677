"""WhatsApp through Meta's Cloud API: a text message, or a provider template when the
notification carries ``whatsappTemplate`` (required outside the 24-hour customer-care window).

The Cloud API reports each message's status (sent, delivered, read, failed) to the Meta app's
webhook, signed with the app secret: :func:`webhook_signature_valid`, :data:`WEBHOOK_STATUSES`
and :func:`webhook_failure_reason` are how the web process checks and reads them."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import quote

from channel_table import WHATSAPP
from channels import http
from channels.base import (
    Channel,
    DeliveryError,
    InvalidContent,
    PermanentError,
    Receipt,
    Rendered,
    TransientError,
)
from channels.http import json_object
from channels.phone import parse_phone, plain_text
from models.receipts import ReceiptStatus
from models.states import FailureReason
from settings import settings

#: Longest text message body the Cloud API accepts.
MAX_TEXT_LENGTH = 4096
#: Throughput (130429), pair rate (131056) and application rate limits (4, 80007).
RATE_LIMIT_CODES = frozenset({4, 80007, 130429, 131056})
TOKEN_EXPIRED = 190
UNDELIVERABLE = 131026
REENGAGEMENT_REQUIRED = 131047
#: The user stopped marketing messages from this business.
MARKETING_STOPPED = 131050
#: A status webhook's ``status`` values, as receipts (others, such as ``warning``, are not
#: about delivery).
WEBHOOK_STATUSES = {
    "sent": ReceiptStatus.SENT,
    "delivered": ReceiptStatus.DELIVERED,
    "read": ReceiptStatus.READ,
    "failed": ReceiptStatus.FAILED,
}
#: The prefix of the ``X-Hub-Signature-256`` header's value.
SIGNATURE_PREFIX = "sha256="


class WhatsAppChannel(Channel):
    row = WHATSAPP
    required_settings = ("WHATSAPP_TOKEN", "WHATSAPP_PHONE_NUMBER_ID")

    def parse_destination(self, value: Any) -> str:
        return parse_phone(value)

    def check_content(self, content: dict[str, Any]) -> None:
        if content.get("whatsapp_template"):
            return
        length = len(plain_text(content["body"], content.get("action_url")))
        if length > MAX_TEXT_LENGTH:
            raise InvalidContent(
                "body",
                f"Too long for WhatsApp: {length} characters (body, plus actionUrl if given); "
                f"at most {MAX_TEXT_LENGTH} are allowed.",
            )

    def send(self, rendered: Rendered, destination: str) -> Receipt:
        self.require_configured()
        token, number_id = settings.WHATSAPP_TOKEN, settings.WHATSAPP_PHONE_NUMBER_ID
        payload = message_payload(rendered, destination)
        response = http.call(
            "POST",
            f"{settings.WHATSAPP_API_URL.rstrip('/')}/{quote(number_id, safe='')}/messages",
            json=payload,
            headers={"Authorization": f"Bearer {token}"},
        )
        if not 200 <= response.status_code < 300:
            raise classify(response)
        messages = json_object(response).get("messages")
        first = messages[0] if isinstance(messages, list) and messages else {}
        details = {"type": payload["type"]}
        if payload["type"] == "template":
            details["template"] = payload["template"]["name"]
        wamid = first.get("id") if isinstance(first, dict) else None
        return Receipt(provider_id=str(wamid) if wamid else None, details=details)

    def close(self) -> None:
        http.close_session()


def message_payload(rendered: Rendered, destination: str) -> dict[str, Any]:
    """The Cloud API request body: the notification's template if it has one, else text."""
    payload: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": destination.lstrip("+"),
    }
    template = rendered.content.get("whatsapp_template")
    if template:
        spec: dict[str, Any] = {
            "name": template["name"],
            "language": {"code": template["language"]},
        }
        if template.get("components"):
            spec["components"] = template["components"]
        return {**payload, "type": "template", "template": spec}
    text = plain_text(rendered.body, rendered.action_url)
    return {**payload, "type": "text", "text": {"body": text, "preview_url": False}}


def classify(response: http.Response) -> DeliveryError:
    """The error for a Cloud API error answer (``{"error": {"message", "type", "code", …}}``)."""
    status = response.status_code
    error = json_object(response).get("error")
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    code = code if isinstance(code, int) else None
    message = f"{http.host(response.url)} answered {status}: {_describe(error, response)}"
    if status in http.TRANSIENT_STATUSES or status >= 500 or code in RATE_LIMIT_CODES:
        return TransientError(message, retry_after=http.retry_after(response))
    if code == TOKEN_EXPIRED or status == 401:
        return TransientError(f"{message} (check WHATSAPP_TOKEN)")
    if code == UNDELIVERABLE:
        return PermanentError(FailureReason.INVALID_DESTINATION, message)
    if code == REENGAGEMENT_REQUIRED:
        return PermanentError(
            FailureReason.REJECTED_BY_PROVIDER,
            f"{message} (over 24 hours since the user last wrote: send a whatsappTemplate)",
        )
    return PermanentError(FailureReason.REJECTED_BY_PROVIDER, message)


def webhook_signature(app_secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends with ``body``: ``sha256=`` and the hex
    HMAC-SHA256 of the raw body, keyed with the app secret."""
    return SIGNATURE_PREFIX + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_signature_valid(app_secret: str, body: bytes, signature: str | None) -> bool:
    """Whether ``signature`` is Meta's for ``body``, compared in constant time."""
    if not app_secret or not signature:
        return False
    return hmac.compare_digest(webhook_signature(app_secret, body).encode(), signature.encode())


def webhook_failure_reason(error_codes: list[int]) -> FailureReason:
    """Herald's reason for a failed status with these ``errors[].code``: undeliverable
    (131026) is a dead address, marketing messages stopped by the user (131050) unsubscribed,
    anything else rejected by the provider."""
    if UNDELIVERABLE in error_codes:
        return FailureReason.DEAD_ADDRESS
    if MARKETING_STOPPED in error_codes:
        return FailureReason.UNSUBSCRIBED
    return FailureReason.REJECTED_BY_PROVIDER


def _describe(error: dict[str, Any], response: http.Response) -> str:
    """Code, type, message, details and trace id of a Cloud API error, briefly."""
    if not error:
        return http.snippet(response)
    text = f"WhatsApp error {error.get('code')} ({error.get('type')}): {error.get('message')}"
    data = error.get("error_data")
    if isinstance(data, dict) and data.get("details"):
        text += f": {data['details']}"
    if error.get("fbtrace_id"):
        text += f" [fbtrace_id {error['fbtrace_id']}]"
    return text[:500]
