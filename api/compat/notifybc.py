"""NotifyBC's notification API (seed ``003``) under ``/compat/notifybc``: admin requests with a
sender's API key, user requests with a user token."""

from __future__ import annotations

from api.auth import authenticate
from api.compat.dialect import Dialect
from api.errors import Blueprint

blp = Blueprint(
    "compat_notifybc",
    __name__,
    url_prefix="/compat/notifybc",
    description="NotifyBC's notification API: admin (API key) and user (user token) requests",
)

DIALECT = Dialect(blp, authenticate)
