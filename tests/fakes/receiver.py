"""A webhook / delivery-callback receiver, as an integrator would write one: it checks
``Herald-Signature`` with the sender's secret and answers 401 to a missing or bad signature."""

from __future__ import annotations

import time

from channels.signing import HEADER, verify
from tests.fakes.http import FakeProvider, Request, Response


class SignedReceiver(FakeProvider):
    """Verifies every request, then answers from ``replies`` in turn, else 200.

    ``verified`` holds the requests that passed the check; ``arrivals`` the monotonic time each
    request came in. ``port`` binds a chosen port (to bring an endpoint "back up").
    """

    def __init__(self, secret: str, port: int | None = None) -> None:
        super().__init__()
        self.secret = secret
        self.replies: list[Response] = []
        self.verified: list[Request] = []
        self.arrivals: list[float] = []
        if port is not None:
            self.listen(port=port)

    def respond(self, request: Request) -> Response:
        self.arrivals.append(time.monotonic())
        if not verify(self.secret, request.body, header(request, HEADER)):
            return Response(401, {"error": "bad signature"})
        self.verified.append(request)
        if self.replies:
            return self.replies.pop(0)
        return Response(200, {"ok": True})


def header(request: Request, name: str) -> str | None:
    """A request header by case-insensitive name."""
    return next((v for k, v in request.headers.items() if k.lower() == name.lower()), None)


class StandardReceiver(FakeProvider):
    """A receiver that checks the Standard Webhooks headers with the ``standardwebhooks``
    package itself (401 when they do not verify with ``secret``), then answers from
    ``replies`` in turn, else 200. ``verified`` holds the requests that passed."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret
        self.replies: list[Response] = []
        self.verified: list[Request] = []

    def respond(self, request: Request) -> Response:
        if not standard_verifies(self.secret, request):
            return Response(401, {"error": "bad signature"})
        self.verified.append(request)
        if self.replies:
            return self.replies.pop(0)
        return Response(200, {"ok": True})


def standard_verifies(secret: str, request: Request) -> bool:
    """Whether ``request`` verifies with ``secret`` by ``standardwebhooks``' own check."""
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    try:
        Webhook(secret).verify(request.body, dict(request.headers))
    except WebhookVerificationError:
        return False
    return True
