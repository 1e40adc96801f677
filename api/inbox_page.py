"""``/inbox``: a small web page (static HTML and JS, no build step) showing one user's inbox
through the inbox API, with the user token given in the address's fragment: ``/inbox#token=…``
(a fragment never reaches the server or its logs)."""

from __future__ import annotations

import os

from flask import Blueprint, send_from_directory

from settings import settings

STATIC = os.path.join(os.path.dirname(__file__), "static")
#: The page loads only its own files and talks only to this origin.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

page = Blueprint("inbox_page", __name__)


@page.route("/inbox")
def inbox_html():
    """The inbox page."""
    response = send_from_directory(STATIC, "inbox.html")
    response.headers.update(HEADERS)
    return response


@page.route("/inbox/<any('inbox.js', 'inbox.css'):filename>")
def inbox_asset(filename: str):
    """The page's script and style."""
    response = send_from_directory(STATIC, filename)
    response.headers.update(HEADERS)
    return response


@page.route("/favicon.ico")
def favicon():
    """Herald's icon (an SVG, which browsers take at this address too)."""
    response = send_from_directory(STATIC, "favicon.svg", mimetype="image/svg+xml")
    response.headers.update(HEADERS)
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@page.route("/inbox/config.json")
def inbox_config():
    """Settings the page reads: how often to refresh the badge."""
    return {"pollSeconds": settings.INBOX_POLL_SECONDS}, 200, HEADERS
