"""Webhooks: the message POSTed as signed JSON to a URL the sender names as the recipient.

The body is one JSON object (see :func:`payload`); the request carries the Standard Webhooks
headers and the legacy ``Herald-Signature`` (see ``channels.signing``), keyed with the secret of
the sender's webhook endpoint at that URL (``POST /v1/webhook-endpoints``), or the sender's
legacy webhook secret for an unregistered URL; and ``webhook-id`` and ``Herald-Message-Id``, the
message id, the same on every retry of one message, so receivers can drop duplicates.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from channel_table import WEBHOOK
from channels import http
from channels.base import (
    Channel,
    InvalidDestination,
    PermanentError,
    Receipt,
    Rendered,
)
from channels.signing import signed_headers
from channels.urlguard import CheckedURL, UnsafeURL, check_url, check_url_syntax
from models.base import utcnow
from models.states import FailureReason

USER_AGENT = "Herald"
MESSAGE_ID_HEADER = "Herald-Message-Id"
#: Most bytes of a receiver's answer that are read; the start of it goes into the error.
MAX_RESPONSE_BYTES = 4096


class WebhookChannel(Channel):
    row = WEBHOOK

    def parse_destination(self, value: Any) -> str:
        try:
            return check_url_syntax(value)
        except UnsafeURL as error:
            raise InvalidDestination(str(error)) from None

    def send(self, rendered: Rendered, destination: str) -> Receipt:
        target = check_destination(destination)
        body = json.dumps(payload(rendered), separators=(",", ":")).encode()
        message_id = rendered.metadata.get("messageId", "")
        secrets = rendered.endpoint_secrets or (
            (rendered.signing_secret,) if rendered.signing_secret else ()
        )
        response = post_signed(target, body, secrets, message_id, {MESSAGE_ID_HEADER: message_id})
        http.raise_for_status(response, dead=(410,))
        return Receipt(details={"status": response.status_code})

    def close(self) -> None:
        http.close_session()


def payload(rendered: Rendered) -> dict[str, Any]:
    """The JSON object a webhook receives. Keys are always present (null when unset)."""
    meta = rendered.metadata
    return {
        "messageId": meta.get("messageId"),
        "notificationId": meta.get("notificationId"),
        "event": meta.get("event"),
        "serviceName": meta.get("serviceName"),
        "reference": meta.get("reference"),
        "targetId": meta.get("targetId"),
        "targetType": meta.get("targetType"),
        "subject": rendered.subject,
        "body": rendered.body,
        "actionUrl": rendered.action_url,
        "data": rendered.data,
        "sentAt": utcnow().isoformat(),
    }


def check_destination(url: str) -> CheckedURL:
    """The URL guard at send time, with DNS: the URL and the addresses to post to. An unsafe
    URL fails the message for good (a resolver that cannot answer right now raises
    TransientError from the guard itself)."""
    try:
        return check_url(url)
    except UnsafeURL as error:
        raise PermanentError(FailureReason.INVALID_DESTINATION, str(error)) from None


def post_signed(
    target: CheckedURL,
    body: bytes,
    secrets: Sequence[str],
    webhook_id: str,
    headers: dict[str, str] | None = None,
) -> http.Response:
    """POST ``body`` (JSON) to the checked URL ``target`` (its checked addresses) signed with
    each of ``secrets`` (``webhook-id``: ``webhook_id``), redirects not followed.

    The answer's body is read up to :data:`MAX_RESPONSE_BYTES`; connection failures and
    timeouts raise :class:`TransientError`.
    """
    if not secrets or not all(secrets):
        raise PermanentError(FailureReason.REJECTED_BY_PROVIDER, "the sender has no signing secret")
    all_headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **signed_headers(secrets, webhook_id, body),
        **(headers or {}),
    }
    return http.call_checked(
        "POST", target, data=body, headers=all_headers, max_bytes=MAX_RESPONSE_BYTES
    )
