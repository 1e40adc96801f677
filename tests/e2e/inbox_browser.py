"""What the /inbox page's browser tests share (their fixtures are in ``conftest.py``): real HTTP
servers on 127.0.0.1, a user token, screenshots, and plain pages served from other origins
(portals that frame the inbox)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.inbox_support import token_for

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL = "install it with: apt-get update && apt-get install -y chromium (or set CHROMIUM)"
#: Screenshots go here, outside the repository (INBOX_SCREENSHOTS=... to move them).
SCREENSHOTS = os.environ.get("INBOX_SCREENSHOTS", "/tmp")


@contextmanager
def serving(app) -> Iterator[str]:
    """``app`` (WSGI) on a real HTTP server on 127.0.0.1, in a thread: its origin."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


@contextmanager
def serving_html(html: str) -> Iterator[str]:
    """One HTML page, at every path, from its own origin (another port: another origin)."""

    @Request.application
    def page(request: Request) -> Response:
        return Response(html, content_type="text/html; charset=utf-8")

    with serving(page) as origin:
        yield origin


def user_token(client, sender, user: str) -> str:
    return token_for(client, sender, user)["Authorization"].removeprefix("Bearer ")


def screenshot(page, name: str) -> str:
    path = os.path.join(SCREENSHOTS, f"inbox-{name}.png")
    page.screenshot(path=path, full_page=True)
    return path
