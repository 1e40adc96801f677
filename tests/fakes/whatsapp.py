"""A WhatsApp Cloud API on 127.0.0.1: checks the bearer token, the path and the JSON message as
the Graph API does, and answers in its shapes (``messages[].id``, or ``{"error": {…}}``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time

from tests.fakes.http import FakeProvider, Request, Response
from tests.fakes.twilio import header

API_VERSION = "v21.0"
PHONE_NUMBER_ID = "106540352242922"
TOKEN = "EAAG-whatsapp-test-token"


def graph_error(
    status: int, code: int, message: str, error_type: str = "OAuthException", **headers: str
) -> Response:
    """An error answer as the Graph API writes it."""
    error = {
        "message": message,
        "type": error_type,
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": message},
        "fbtrace_id": "A" + secrets.token_hex(8),
    }
    return Response(status, {"error": error}, headers)


class FakeWhatsApp(FakeProvider):
    """Valid requests are answered 200, or by ``failures`` in turn while there are any;
    ``arrivals`` keeps the monotonic time each request arrived."""

    def __init__(self, phone_number_id: str = PHONE_NUMBER_ID, token: str = TOKEN) -> None:
        super().__init__()
        self.phone_number_id = phone_number_id
        self.token = token
        self.failures: list[Response] = []
        self.arrivals: list[float] = []
        self.wamids: list[str] = []  # the message ids answered, in order

    @property
    def api_url(self) -> str:
        """The base URL to configure as WHATSAPP_API_URL."""
        return f"{self.url}/{API_VERSION}"

    def respond(self, request: Request) -> Response:
        self.arrivals.append(time.monotonic())
        if (
            request.method != "POST"
            or request.path != f"/{API_VERSION}/{self.phone_number_id}/messages"
        ):
            return graph_error(400, 100, "Unsupported post request.", "GraphMethodException")
        if header(request, "Authorization") != f"Bearer {self.token}":
            return graph_error(401, 190, "Error validating access token: Session has expired.")
        problem = self.invalid(request)
        if problem:
            return graph_error(400, 100, f"(#100) Invalid parameter: {problem}")
        if self.failures:
            return self.failures.pop(0)
        answer = self.accepted(request.json())
        self.wamids.append(answer["messages"][0]["id"])
        return Response(200, answer)

    @staticmethod
    def invalid(request: Request) -> str | None:
        """What is wrong with a message request, as the Cloud API would see it."""
        if header(request, "Content-Type") != "application/json":
            return "Content-Type"
        try:
            message = request.json()
        except json.JSONDecodeError:
            return "body"
        if message.get("messaging_product") != "whatsapp":
            return "messaging_product"
        if message.get("recipient_type") != "individual" or not str(message.get("to")).isdigit():
            return "to"
        kind = message.get("type")
        if kind == "text" and isinstance(message.get("text"), dict) and message["text"].get("body"):
            return None
        template = message.get("template")
        if kind == "template" and isinstance(template, dict) and template.get("name"):
            return None if isinstance(template.get("language"), dict) else "template.language"
        return "type"

    @staticmethod
    def accepted(message: dict) -> dict:
        wamid = "wamid." + base64.b64encode(secrets.token_bytes(24)).decode()
        answer = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": message["to"], "wa_id": message["to"]}],
            "messages": [{"id": wamid}],
        }
        if message["type"] == "template":
            answer["messages"][0]["message_status"] = "accepted"
        return answer


# --- status webhooks, as Meta posts them -------------------------------------------------------
APP_SECRET = "whatsapp-app-secret"
VERIFY_TOKEN = "whatsapp-verify-token"
BUSINESS_ACCOUNT_ID = "102290129340398"


def hub_signature(app_secret: str, body: bytes) -> str:
    """X-Hub-Signature-256 as Meta sends it: ``sha256=`` and the hex HMAC-SHA256 of the raw
    body, keyed with the app secret."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def message_status(
    wamid: str, status: str, recipient: str, timestamp: int, errors: list[dict] | None = None
) -> dict:
    """One ``statuses[]`` item of a Cloud API webhook."""
    item: dict = {
        "id": wamid,
        "status": status,
        "timestamp": str(timestamp),
        "recipient_id": recipient,
    }
    if status in ("sent", "delivered"):
        item["conversation"] = {
            "id": "CONVERSATION_" + secrets.token_hex(8),
            "origin": {"type": "utility"},
        }
        item["pricing"] = {"billable": True, "pricing_model": "CBP", "category": "utility"}
    if errors:
        item["errors"] = errors
    return item


def undeliverable() -> dict:
    """The ``errors[]`` item of a message Meta could not deliver (131026)."""
    return {
        "code": 131026,
        "title": "Message undeliverable",
        "message": "Message undeliverable",
        "error_data": {"details": "Message Undeliverable."},
        "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
    }


def status_webhook(*statuses: dict, phone_number_id: str = PHONE_NUMBER_ID) -> bytes:
    """The body Meta posts to the app's webhook with these statuses."""
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": BUSINESS_ACCOUNT_ID,
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "37360000000",
                                "phone_number_id": phone_number_id,
                            },
                            "statuses": list(statuses),
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }
    return json.dumps(payload).encode()
