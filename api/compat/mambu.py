"""Mambu's notifications API (seed ``001``) under ``/compat/mambu``: the message history search
and the resend of failed messages."""

from __future__ import annotations

from api.auth import authenticate
from api.compat.dialect import Dialect
from api.errors import Blueprint

blp = Blueprint(
    "compat_mambu",
    __name__,
    url_prefix="/compat/mambu",
    description="Mambu's notifications API: search the history, resend failed messages",
)

DIALECT = Dialect(blp, authenticate)
