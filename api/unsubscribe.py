"""``/unsubscribe/<token>``: the link every non-critical email carries (``List-Unsubscribe``).

No login: the token (:mod:`channels.unsubscribe`) is the authority. ``GET`` answers a small
page with a button and changes nothing (mail scanners follow links); ``POST`` with
``List-Unsubscribe=One-Click`` (form-encoded, as RFC 8058 mail clients send it, or the page's
button) turns email off for the person and the email's service, and answers 200 however often
it is repeated. A token that is not genuine answers 404 with a page that says nothing of why.
An HTML route, like ``/inbox``: not part of the JSON API or its OpenAPI document.
"""

from __future__ import annotations

from html import escape

from flask import Blueprint, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from channels.unsubscribe import PATH, Target, target_of
from models.preference import EVERYWHERE, opt_out

#: The page loads nothing; its one form posts back to itself.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
}
#: The largest body a POST may have (``List-Unsubscribe=One-Click`` is 26 bytes).
MAX_BODY_BYTES = 1024
FIELD, ONE_CLICK = "List-Unsubscribe", "One-Click"
LANGUAGES = ("ro", "ru", "en")

TEXT = {
    "ro": {
        "title": "Dezabonare",
        "ask_service": "Nu mai doriți e-mailuri de la serviciul „{service}”?",
        "ask_all": "Nu mai doriți e-mailuri de la aceste servicii?",
        "button": "Dezabonare",
        "done_service": "Nu veți mai primi e-mailuri de la serviciul „{service}”.",
        "done_all": "Nu veți mai primi e-mailuri de la aceste servicii.",
        "invalid": "Acest link de dezabonare nu este valid.",
        "bad_request": "Cererea nu a putut fi înțeleasă.",
    },
    "ru": {
        "title": "Отписка",
        "ask_service": "Больше не получать письма от сервиса «{service}»?",
        "ask_all": "Больше не получать письма от этих сервисов?",
        "button": "Отписаться",
        "done_service": "Вы больше не будете получать письма от сервиса «{service}».",
        "done_all": "Вы больше не будете получать письма от этих сервисов.",
        "invalid": "Эта ссылка для отписки недействительна.",
        "bad_request": "Запрос не удалось понять.",
    },
    "en": {
        "title": "Unsubscribe",
        "ask_service": "Stop receiving emails from the service “{service}”?",
        "ask_all": "Stop receiving emails from these services?",
        "button": "Unsubscribe",
        "done_service": "You will no longer receive emails from the service “{service}”.",
        "done_all": "You will no longer receive emails from these services.",
        "invalid": "This unsubscribe link is not valid.",
        "bad_request": "The request could not be understood.",
    },
}

page = Blueprint("unsubscribe", __name__)


@page.route(f"{PATH}<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> Response:
    """The confirmation page (GET), or the unsubscribe itself (POST)."""
    text = TEXT[_language()]
    target = target_of(token)
    if target is None:
        return _page(text, text["invalid"], status=404)
    if request.method == "GET":
        return _page(text, _said(text, "ask", target), form=True)
    try:
        request.max_content_length = MAX_BODY_BYTES
        one_click = request.form.get(FIELD)
    except RequestEntityTooLarge:
        return _page(text, text["bad_request"], status=413)
    if one_click != ONE_CLICK:
        return _page(text, f"{text['bad_request']} ({FIELD}={ONE_CLICK})", status=400)
    opt_out(target.subject, target.channel, target.service, target.kind)
    return _page(text, _said(text, "done", target))


def _language() -> str:
    wanted = request.args.get("lang", "")
    if wanted in LANGUAGES:
        return wanted
    return request.accept_languages.best_match(LANGUAGES, default=LANGUAGES[0]) or LANGUAGES[0]


def _said(text: dict[str, str], what: str, target: Target) -> str:
    if target.service == EVERYWHERE:
        return text[f"{what}_all"]
    return text[f"{what}_service"].format(service=target.service)


def _page(text: dict[str, str], said: str, status: int = 200, form: bool = False) -> Response:
    """The page, with ``said`` (escaped here) and, with ``form``, the unsubscribe button."""
    button = (
        f'<form method="post"><input type="hidden" name="{FIELD}" value="{ONE_CLICK}">'
        f'<button type="submit">{escape(text["button"])}</button></form>'
        if form
        else ""
    )
    html = (
        f'<!doctype html><html lang="{_language()}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(text['title'])}</title></head>"
        f"<body><main><h1>{escape(text['title'])}</h1><p>{escape(said)}</p>{button}</main>"
        "</body></html>"
    )
    return Response(html, status, HEADERS, mimetype="text/html")
