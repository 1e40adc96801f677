"""Hackney's notifications API (seed ``002``) under ``/compat/hackney``: create, list, act on
and delete notifications, and the GOV.UK Notify message status."""

from __future__ import annotations

from api.auth import authenticate
from api.compat.dialect import Dialect
from api.errors import Blueprint

blp = Blueprint(
    "compat_hackney",
    __name__,
    url_prefix="/compat/hackney",
    description="Hackney's notifications API: notifications, actions and message status",
)

DIALECT = Dialect(blp, authenticate)
