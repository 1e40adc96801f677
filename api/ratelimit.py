"""Requests per minute per sender, and the daily message limit's answer (``tasks.limits``).

What counts: every request made with an API key (``g.sender`` set by authentication, under
/v1 and the compatibility dialects), checked after authentication and before the handler, so a
refused request stores nothing. User-token requests (the inbox) and the providers' signed
receipts are not counted: a user's inbox is not the sender's traffic, and a receipt refused
would be a delivery state lost.

Every counted response carries the IETF httpapi RateLimit header fields
(draft-ietf-httpapi-ratelimit-headers-11, May 2026: Structured Fields, one policy named
``"minute"``): ``RateLimit-Policy: "minute";q=3000;w=60`` and ``RateLimit: "minute";r=2999;t=42``
(``r`` requests left in this window, ``t`` seconds until it resets). Over the limit: 429 in the
error contract with ``Retry-After`` (the seconds until the window resets) and the same fields.
"""

from __future__ import annotations

from flask import Flask, Response, g
from flask_smorest import abort
from werkzeug.exceptions import HTTPException

from api.errors import HeraldApi
from tasks.limits import DailyLimitExceeded, Window, count_request

#: The per-minute policy's name in the RateLimit fields.
POLICY = "minute"


def init_app(app: Flask, api: HeraldApi) -> None:
    """Check each API-key request once authenticated (register after the authentication
    hook), add the RateLimit fields to its response, answer DailyLimitExceeded with a 429."""
    app.before_request(check)
    app.after_request(add_headers)
    app.register_error_handler(DailyLimitExceeded, lambda error: _daily_refusal(api, error))


def check() -> None:
    """Count the request against its sender's window; 429 if it is over the limit."""
    sender = g.get("sender")
    if sender is None or "rate_window" in g:
        return
    window = g.rate_window = count_request(sender)
    if window is not None and window.exceeded:
        abort(
            429,
            message=f"Rate limit exceeded: at most {window.limit} requests per minute for "
            f"this sender; retry after {window.reset} s.",
            headers={"Retry-After": str(window.reset), **headers(window)},
        )


def headers(window: Window) -> dict[str, str]:
    return {
        "RateLimit-Policy": f'"{POLICY}";q={window.limit};w={window.seconds}',
        "RateLimit": f'"{POLICY}";r={window.remaining};t={window.reset}',
    }


def add_headers(response: Response) -> Response:
    window = g.get("rate_window")
    if window is not None:
        response.headers.update(headers(window))
    return response


def _daily_refusal(api: HeraldApi, refused: DailyLimitExceeded):
    """The 429 for a request whose messages do not fit in the sender's daily limit."""
    try:
        abort(
            429,
            message=f"Daily message limit exceeded: this request makes {refused.wanted} "
            f"messages and {refused.remaining} of the sender's {refused.limit} for today (UTC) "
            "are left; nothing was stored.",
            errors={"recipients": [f"Over the daily message limit ({refused.limit})."]},
            headers={"Retry-After": str(refused.reset)},
        )
    except HTTPException as error:
        return api.handle_http_exception(error)
