"""``/v1/providers``: delivery and read receipts posted by the SMS gateway (Twilio status
callbacks), the WhatsApp Cloud API (status webhooks) and Viber (bot events).

No API key: each provider signs what it posts, and nothing is read before its signature is
checked (403 otherwise, and nothing changes). A receipt is applied through
``tasks.receipts`` (forward only, idempotent, the sender's callback, an undeliverable address
switched off); one naming a message Herald does not know — not sent by it, or purged after
retention — is answered 200 all the same, since a provider retries anything else.
"""

from __future__ import annotations

import hmac
import logging
from datetime import UTC, datetime
from typing import Any

from flask import Response, request
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, ValidationError
from viberbot.api.event_type import EventType

from api.errors import Blueprint, InvalidText, read_json
from api.provider_schemas import (
    MAX_PROVIDER_BODY_BYTES,
    TwilioStatusSchema,
    ViberEventSchema,
    WhatsAppVerificationSchema,
    WhatsAppWebhookSchema,
    statuses_of,
)
from api.provider_schemas import ReceiptsTakenSchema as ReceiptsTaken
from channel_table import SMS, VIBER, WHATSAPP
from channels import sms, viber, whatsapp
from models.base import utcnow
from models.contact import deactivate_address
from models.receipts import ReceiptStatus
from models.states import FailureReason
from settings import settings
from tasks.receipts import receipt_for_provider_id

logger = logging.getLogger(__name__)

blp = Blueprint(
    "providers",
    __name__,
    url_prefix="/v1/providers",
    description="Receipts from providers: Twilio status callbacks, WhatsApp Cloud API status "
    "webhooks, Viber events (no API key: each provider's signature authenticates it)",
)
FORM = "application/x-www-form-urlencoded"
REFUSED = "Refused: the provider's signature is missing or wrong, or the provider is not set up"


@blp.before_request
def _bounded_body() -> None:
    request.max_content_length = MAX_PROVIDER_BODY_BYTES


def signed_receipts(schema: type[Schema], content_type: str = "application/json"):
    """Document a receipts operation: no API key (the provider's signature), its body read
    as ``schema`` once the signature is checked, the tally answered, 403 when refused."""

    def documented(view):
        body = {"required": True, "content": {content_type: {"schema": schema}}}
        view = blp.alt_response(403, schema="Error", description=REFUSED)(view)
        view = blp.response(200, ReceiptsTaken)(view)
        return blp.doc(security=[], requestBody=body)(view)

    return documented


def _refuse(message: str):
    abort(403, message=message)


def _loaded(schema: Schema, data: Any) -> dict[str, Any]:
    """``data`` loaded by ``schema``, or a 400 naming each bad field."""
    try:
        return schema.load(data)
    except ValidationError as invalid:
        abort(400, errors=invalid.messages)


def _signed_json(body: bytes) -> Any:
    """A signed body read as JSON, or a 400."""
    try:
        return read_json(body)
    except InvalidText as invalid:
        abort(400, errors=invalid.errors)
    except ValueError:
        abort(400, errors={"json": ["Invalid JSON body."]})


def _instant(seconds: float | None) -> datetime | None:
    """A provider's Unix time as an instant, no later than now (its clock may be ahead)."""
    if seconds is None:
        return None
    return min(datetime.fromtimestamp(seconds, UTC), utcnow())


class Tally:
    """Receipts applied by one post: how many matched a message, how many did not."""

    def __init__(self) -> None:
        self.matched = self.unmatched = 0

    def receipt(self, channel: str, provider_id: str, status: ReceiptStatus, **details) -> None:
        outcome = receipt_for_provider_id(channel, provider_id, status, **details)
        if outcome is None:
            self.unmatched += 1
        else:
            self.matched += 1

    def answer(self) -> dict[str, int]:
        return {"matched": self.matched, "unmatched": self.unmatched}


# --- Twilio ---------------------------------------------------------------------------------
@blp.route(sms.STATUS_CALLBACK_PATH.removeprefix("/v1/providers"))
class TwilioStatusCallback(MethodView):
    @signed_receipts(TwilioStatusSchema, FORM)
    @blp.alt_response(415, schema="Error", description=f"Not {FORM}")
    def post(self):
        """A Twilio message status callback (the StatusCallback each SMS send names), signed
        with ``X-Twilio-Signature`` over PUBLIC_BASE_URL + this path and the sorted form
        parameters, keyed with SMS_AUTH_TOKEN."""
        if request.mimetype != FORM:
            abort(415, message=f"Content-Type must be {FORM}.")
        params = list(request.form.items(multi=True))
        base = settings.PUBLIC_BASE_URL.rstrip("/")
        if not base or not settings.SMS_AUTH_TOKEN:
            _refuse("Twilio receipts need PUBLIC_BASE_URL and SMS_AUTH_TOKEN to be set.")
        query = request.query_string.decode("latin-1")
        url = f"{base}{request.path}" + (f"?{query}" if query else "")
        signature = request.headers.get("X-Twilio-Signature")
        if not sms.twilio_signature_valid(settings.SMS_AUTH_TOKEN, url, params, signature):
            _refuse("X-Twilio-Signature is missing or does not sign this request.")
        data = _loaded(TwilioStatusSchema(), request.form.to_dict())
        tally = Tally()
        status = sms.TWILIO_STATUSES[data["MessageStatus"]]
        code = int(data["ErrorCode"]) if data.get("ErrorCode") else None
        details: dict[str, Any] = {}
        if status == ReceiptStatus.FAILED:
            details = {
                "failure_reason": sms.twilio_failure_reason(code),
                "error": f"Twilio: {data['MessageStatus']}, error {code}",
            }
        tally.receipt(SMS.name, data["MessageSid"], status, **details)
        return tally.answer()


# --- WhatsApp Cloud API ---------------------------------------------------------------------
@blp.route("/whatsapp/webhook")
class WhatsAppWebhook(MethodView):
    @blp.doc(security=[])
    @blp.arguments(WhatsAppVerificationSchema, location="query")
    @blp.response(200, {"type": "string"}, content_type="text/plain", description="The challenge")
    @blp.alt_response(
        403, schema="Error", description="Not subscribe, or not WHATSAPP_VERIFY_TOKEN"
    )
    def get(self, query):
        """Meta's verification request, sent when the app's webhook is set: the challenge
        echoed when ``hub.mode`` is subscribe and ``hub.verify_token`` is
        WHATSAPP_VERIFY_TOKEN."""
        expected = settings.WHATSAPP_VERIFY_TOKEN
        if not expected:
            _refuse("WhatsApp webhooks need WHATSAPP_VERIFY_TOKEN to be set.")
        if query["mode"] != "subscribe" or not hmac.compare_digest(
            query["verify_token"].encode(), expected.encode()
        ):
            _refuse("hub.mode must be subscribe and hub.verify_token WHATSAPP_VERIFY_TOKEN.")
        return Response(query["challenge"], mimetype="text/plain")

    @signed_receipts(WhatsAppWebhookSchema)
    def post(self):
        """Cloud API status webhooks (``entry[].changes[].value.statuses[]``), signed with
        ``X-Hub-Signature-256``: ``sha256=`` and the hex HMAC-SHA256 of the body, keyed with
        WHATSAPP_APP_SECRET."""
        body = request.get_data(cache=True)
        if not settings.WHATSAPP_APP_SECRET:
            _refuse("WhatsApp webhooks need WHATSAPP_APP_SECRET to be set.")
        signature = request.headers.get("X-Hub-Signature-256")
        if not whatsapp.webhook_signature_valid(settings.WHATSAPP_APP_SECRET, body, signature):
            _refuse("X-Hub-Signature-256 is missing or does not sign this body.")
        webhook = _loaded(WhatsAppWebhookSchema(), _signed_json(body))
        tally = Tally()
        for status in statuses_of(webhook):
            _whatsapp_receipt(tally, status)
        return tally.answer()


def _whatsapp_receipt(tally: Tally, status: dict[str, Any]) -> None:
    kind = whatsapp.WEBHOOK_STATUSES.get(status["status"])
    if kind is None:
        logger.info("whatsapp status %r is not about delivery: ignored", status["status"])
        return
    stamp = status.get("timestamp")
    details: dict[str, Any] = {"at": _instant(int(stamp) if stamp else None)}
    if kind == ReceiptStatus.FAILED:
        errors = status.get("errors") or []
        codes = [error["code"] for error in errors if "code" in error]
        described = "; ".join(
            f"{error.get('code')} {error.get('title') or error.get('message') or ''}".strip()
            for error in errors
        )
        details["failure_reason"] = whatsapp.webhook_failure_reason(codes)
        details["error"] = f"WhatsApp: failed, error {described or 'not given'}"
    tally.receipt(WHATSAPP.name, status["id"], kind, **details)


# --- Viber ----------------------------------------------------------------------------------
@blp.route(viber.EVENTS_PATH.removeprefix("/v1/providers"))
class ViberEvents(MethodView):
    @signed_receipts(ViberEventSchema)
    def post(self):
        """A Viber bot event (the webhook ``herald viber set-webhook`` sets), signed with
        ``X-Viber-Content-Signature``: the hex HMAC-SHA256 of the body, keyed with
        VIBER_AUTH_TOKEN. ``delivered``, ``seen`` and ``failed`` are receipts;
        ``unsubscribed`` switches the user's Viber address off in every contact; the rest
        (``webhook`` included) are answered and ignored."""
        body = request.get_data(cache=True)
        if not settings.VIBER_AUTH_TOKEN:
            _refuse("Viber events need VIBER_AUTH_TOKEN to be set.")
        signature = request.headers.get("X-Viber-Content-Signature")
        if not viber.event_signature_valid(settings.VIBER_AUTH_TOKEN, body, signature):
            _refuse("X-Viber-Content-Signature is missing or does not sign this body.")
        event = _loaded(ViberEventSchema(), _signed_json(body))
        tally = Tally()
        kind = viber.EVENT_STATUSES.get(event["event"])
        if kind is not None:
            _viber_receipt(tally, kind, event)
        elif event["event"] == EventType.UNSUBSCRIBED:
            _viber_unsubscribed(event)
        return tally.answer()


def _viber_receipt(tally: Tally, kind: ReceiptStatus, event: dict[str, Any]) -> None:
    if "message_token" not in event:
        abort(400, errors={"message_token": [f"Required with {event['event']}."]})
    stamp = event.get("timestamp")
    details: dict[str, Any] = {"at": _instant(stamp / 1000 if stamp is not None else None)}
    if kind == ReceiptStatus.FAILED:
        details["failure_reason"] = FailureReason.REJECTED_BY_PROVIDER
        details["error"] = f"Viber: failed: {event.get('desc') or 'no description'}"
    tally.receipt(VIBER.name, str(event["message_token"]), kind, **details)


def _viber_unsubscribed(event: dict[str, Any]) -> None:
    if "user_id" not in event:
        abort(400, errors={"user_id": ["Required with unsubscribed."]})
    switched = deactivate_address(
        VIBER.recipient_type, event["user_id"], "Viber: the user unsubscribed from the bot"
    )
    logger.info("viber unsubscribed: %d contact channels switched off", switched)
