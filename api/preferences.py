"""Preferences as the API reads and writes them: a contact's (``/v1/contacts/{idnp}/preferences``,
behind ``contacts:read``/``contacts:write``) and an inbox user's own (``/v1/inbox/preferences``).

Both name the person the way fan-out does: a contact by IDNP, an inbox user by the token's user
(an IDNP or an in-app user id), so an opt-out made in the inbox holds for that person's
registry channels too.
"""

from __future__ import annotations

from models.preference import preferences_of, set_preferences


def preferences(subject: str) -> dict:
    """``subject``'s document (empty maps: everything on)."""
    return preferences_of(subject)


def replace_preferences(subject: str, document: dict) -> dict:
    """Replace ``subject``'s whole document with the validated ``document``; the stored one."""
    return set_preferences(subject, document)


def globally_off(document: dict) -> set[str]:
    """The channels ``document`` turns off for every service."""
    return {channel for channel, enabled in document["channels"].items() if not enabled}
