"""What the channels that reach a person at a phone number through an HTTP gateway (SMS,
WhatsApp) share: number parsing, the plain text they send, and reading the gateway's answers.

Parsing is done by the ``phonenumbers`` package (Google's libphonenumber metadata), which
knows every country's number lengths and prefixes; a hand-written pattern would accept numbers
no network can route.
"""

from __future__ import annotations

import re
from typing import Any

import phonenumbers

from channels.base import InvalidDestination
from settings import settings

#: Longest phone number accepted as written (spaces, dashes and brackets included).
MAX_WRITTEN_LENGTH = 32
#: What a written number may contain: digits, one leading +, and the usual separators.
#: Letters are refused (libphonenumber would read "1-800-FLOWERS" as digits).
_WRITTEN = re.compile(r"^\+?[0-9 ()./-]+$")


def parse_phone(value: Any) -> str:
    """A recipient's phone number in E.164 (``+37369123456``).

    A number without ``+`` is read as written in ``SMS_DEFAULT_REGION``. Raises
    :class:`InvalidDestination` when the value is not a phone number in use anywhere.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidDestination("Must be a non-empty string.")
    written = value.strip()
    if len(written) > MAX_WRITTEN_LENGTH or not _WRITTEN.match(written):
        raise InvalidDestination(
            "Not a valid phone number: use digits, optionally starting with +country code."
        )
    try:
        number = phonenumbers.parse(written, settings.SMS_DEFAULT_REGION or None)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise InvalidDestination(
            "Not a valid phone number: write it in E.164 (+37369123456) or as dialled in "
            f"{settings.SMS_DEFAULT_REGION or 'its country'}."
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def plain_text(body: str, action_url: str | None) -> str:
    """What a text message says: the body, then the action link on its own line (no subject)."""
    return f"{body}\n{action_url}" if action_url else body
