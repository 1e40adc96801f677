"""A Twilio Messages API on 127.0.0.1: checks basic auth, the path and the form body as Twilio
does, and answers in Twilio's shapes (a Message resource, or ``{"code", "message", …}``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from tests.fakes.http import FakeProvider, Request, Response

ACCOUNT_SID = "AC" + "5" * 32
AUTH_TOKEN = "twilio-secret-token"


def twilio_error(status: int, code: int, message: str, **headers: str) -> Response:
    """An error answer as Twilio writes it."""
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Response(status, body, headers)


def header(request: Request, name: str) -> str | None:
    """A request header, whatever case the client wrote it in."""
    return next((v for k, v in request.headers.items() if k.lower() == name.lower()), None)


class FakeTwilio(FakeProvider):
    """Valid requests are answered 201, or by ``failures`` in turn while there are any.

    ``num_segments`` is what the fake reports as billed (None: left out of the answer);
    ``arrivals`` keeps the monotonic time each request arrived.
    """

    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.failures: list[Response] = []
        self.num_segments: str | None = "1"
        self.arrivals: list[float] = []
        self.resources: list[dict] = []  # the Message resources answered, in order

    @property
    def messages_path(self) -> str:
        return f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    def respond(self, request: Request) -> Response:
        self.arrivals.append(time.monotonic())
        credentials = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.method != "POST" or request.path != self.messages_path:
            return twilio_error(404, 20404, f"The requested resource {request.path} was not found")
        if header(request, "Authorization") != f"Basic {credentials}":
            return twilio_error(401, 20003, "Authenticate")
        if header(request, "Content-Type") != "application/x-www-form-urlencoded":
            return twilio_error(400, 21620, "Invalid media type")
        form = request.form()
        for field, code in (("To", 21604), ("From", 21603), ("Body", 21602)):
            if not form.get(field):
                return twilio_error(400, code, f"A '{field}' parameter is required.")
        if self.failures:
            return self.failures.pop(0)
        resource = self.message_resource(form)
        self.resources.append(resource)
        return Response(201, resource)

    def message_resource(self, form: dict[str, str]) -> dict:
        """The Message resource Twilio answers with when it queues a message."""
        sid = "SM" + secrets.token_hex(16)
        resource = {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": form["Body"],
            "date_created": "Thu, 24 Apr 2025 09:00:00 +0000",
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form["From"],
            "num_media": "0",
            "price": None,
            "sid": sid,
            "status": "queued",
            "to": form["To"],
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        if self.num_segments is not None:
            resource["num_segments"] = self.num_segments
        return resource


# --- status callbacks, as Twilio posts them ----------------------------------------------------
def twilio_signature(auth_token: str, url: str, form: dict[str, str]) -> str:
    """X-Twilio-Signature as Twilio computes it (written here from Twilio's "Webhooks security"
    page, not taken from Herald): base64 HMAC-SHA1 of the URL followed by every POST
    parameter's name and value, in parameter-name order, keyed with the auth token."""
    data = url + "".join(f"{name}{form[name]}" for name in sorted(form))
    return base64.b64encode(
        hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    ).decode()


def status_callback(resource: dict, status: str, error_code: int | None = None) -> dict[str, str]:
    """The form Twilio posts to a message's StatusCallback when the message whose resource it
    answered the send with reaches ``status``."""
    form = {
        "AccountSid": resource["account_sid"],
        "ApiVersion": "2010-04-01",
        "From": resource["from"],
        "MessageSid": resource["sid"],
        "MessageStatus": status,
        "SmsSid": resource["sid"],
        "SmsStatus": status,
        "To": resource["to"],
    }
    if status == "delivered":
        form["RawDlrDoneDate"] = "2504240901"
    if error_code is not None:
        form["ErrorCode"] = str(error_code)
    return form
