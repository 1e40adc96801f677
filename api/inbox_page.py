"""``/inbox``: a small web page (static HTML and JS, no build step) showing one user's inbox
through the inbox API, with the user token given in the address's fragment: ``/inbox#token=…``
(a fragment never reaches the server or its logs). Its service worker, ``/inbox/sw.js``, shows
web pushes and opens the inbox when one is clicked. The page may be framed only by the origins
in INBOX_FRAME_ANCESTORS, and tells them its unread count."""

from __future__ import annotations

import os

from flask import Blueprint, send_from_directory

from channel_table import CHANNELS
from settings import settings

STATIC = os.path.join(os.path.dirname(__file__), "static")
#: The page's languages; the first is the default.
LANGUAGES = ("ro", "ru", "en")
#: The channels the preferences panel offers: those a person registers addresses for.
PREFERENCE_CHANNELS = tuple(row.name for row in CHANNELS if row.in_registry)
ASSETS = ("inbox.js", "inbox.css", "inbox-i18n.js")
#: Where the service worker is served and the scope it is registered with.
WORKER_SCOPE = "/inbox"


def frame_ancestors() -> list[str]:
    """The origins allowed to frame the page (none: an empty list)."""
    return settings.INBOX_FRAME_ANCESTORS.split()


def page_headers() -> dict[str, str]:
    """The page loads only its own files, talks only to this origin, and is framed only by
    INBOX_FRAME_ANCESTORS."""
    ancestors = " ".join(frame_ancestors()) or "'none'"
    return {
        "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
        f"frame-ancestors {ancestors}",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


page = Blueprint("inbox_page", __name__)


@page.route("/inbox")
def inbox_html():
    """The inbox page."""
    response = send_from_directory(STATIC, "inbox.html")
    response.headers.update(page_headers())
    return response


@page.route(f"/inbox/<any{ASSETS}:filename>")
def inbox_asset(filename: str):
    """The page's scripts (its code, its strings in each language) and style."""
    response = send_from_directory(STATIC, filename)
    response.headers.update(page_headers())
    return response


@page.route("/inbox/sw.js")
def inbox_service_worker():
    """The service worker, allowed to control ``/inbox`` although it is served below it."""
    response = send_from_directory(STATIC, "inbox-sw.js", mimetype="text/javascript")
    response.headers.update(page_headers())
    response.headers["Service-Worker-Allowed"] = WORKER_SCOPE
    return response


@page.route("/favicon.ico")
def favicon():
    """Herald's icon (an SVG, which browsers take at this address too)."""
    response = send_from_directory(STATIC, "favicon.svg", mimetype="image/svg+xml")
    response.headers.update(page_headers())
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@page.route("/inbox/config.json")
def inbox_config():
    """Settings the page reads: how often to refresh the badge, the origins that may frame it
    (it posts its unread count to them), its languages and the channels it offers."""
    config = {
        "pollSeconds": settings.INBOX_POLL_SECONDS,
        "frameAncestors": frame_ancestors(),
        "languages": list(LANGUAGES),
        "channels": list(PREFERENCE_CHANNELS),
        "workerScope": WORKER_SCOPE,
    }
    return config, 200, page_headers()
