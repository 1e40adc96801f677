"""Webhooks: the message POSTed as signed JSON to a URL the sender names as the recipient.

The body is one JSON object (see :func:`payload`); the request carries ``Herald-Signature``
(see ``channels.signing``, keyed with the sender's callback secret) and ``Herald-Message-Id``,
the same on every retry of one message, so receivers can drop duplicates.
"""

from __future__ import annotations

import json
from typing import Any

import requests
import urllib3

from channel_table import WEBHOOK
from channels import http
from channels.base import (
    Channel,
    InvalidDestination,
    PermanentError,
    Receipt,
    Rendered,
    TransientError,
)
from channels.signing import HEADER, sign
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
        response = post_signed(
            target,
            body,
            rendered.signing_secret,
            {MESSAGE_ID_HEADER: rendered.metadata.get("messageId", "")},
        )
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
    target: CheckedURL, body: bytes, secret: str | None, headers: dict[str, str] | None = None
) -> requests.Response:
    """POST ``body`` (JSON) to the checked URL ``target`` (its checked addresses) signed with
    ``secret``, redirects not followed.

    The answer's body is read up to :data:`MAX_RESPONSE_BYTES`; connection failures and
    timeouts raise :class:`TransientError`.
    """
    if not secret:
        raise PermanentError(FailureReason.REJECTED_BY_PROVIDER, "the sender has no signing secret")
    all_headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        HEADER: sign(secret, body),
        **(headers or {}),
    }
    response = http.call_checked("POST", target, data=body, headers=all_headers, stream=True)
    try:
        content = response.raw.read(MAX_RESPONSE_BYTES + 1, decode_content=True)
    except (urllib3.exceptions.HTTPError, OSError) as error:
        response.close()
        raise TransientError(
            f"cannot read the answer of {target.host}: {type(error).__name__}"
        ) from None
    if len(content) > MAX_RESPONSE_BYTES:
        response.close()
    response._content = content[:MAX_RESPONSE_BYTES]  # what .text reads, capped
    return response
