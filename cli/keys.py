"""``herald keys`` and ``herald tokens``: a sender's API keys, and revoking user tokens."""

from __future__ import annotations

import argparse

from cli.common import CommandError, named_sender, use_database


def keys_add(args: argparse.Namespace) -> int:
    """Give a sender another API key and print only it (once: only its hash is kept)."""
    from models.sender import add_key

    expires_at = _expiry(args.expires) if args.expires else None

    _, key = add_key(named_sender(args.sender), expires_at=expires_at)
    print(key)
    return 0


def keys_list(args: argparse.Namespace) -> int:
    """A header line, then one line per key of the sender: id, prefix, created, last used,
    expiry, revoked (UTC, to the second; ``-`` for none)."""
    from models.sender import keys_of

    rows = keys_of(named_sender(args.sender))
    print(f"{'ID':>6}  {'PREFIX':<12} {'CREATED':<20} {'LAST USED':<20} {'EXPIRES':<20} REVOKED")
    for row in rows:
        times = [row.created_at, row.last_used_at, row.expires_at, row.revoked_at]
        shown = [_utc(moment) for moment in times]
        print(
            f"{row.id:>6}  {row.prefix + '…':<12} {shown[0]:<20} {shown[1]:<20} "
            f"{shown[2]:<20} {shown[3]}"
        )
    return 0


def _utc(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else "-"


def keys_revoke(args: argparse.Namespace) -> int:
    """Revoke a key: every web process refuses it within SENDER_CACHE_SECONDS."""
    from models.sender import revoke_key

    use_database()
    row = revoke_key(args.key_id)
    if row is None:
        raise CommandError(f"no API key with id {args.key_id}")
    return 0


def tokens_revoke(args: argparse.Namespace) -> int:
    """Refuse user tokens minted before a time (default now): one user's, or everyone's with
    ``--before``; those of one sender with ``--sender``."""
    from models.base import utcnow
    from models.user_token import revoke_user_tokens

    if args.user is None and args.before is None:
        raise CommandError("give --user USER, --before ISO_TIME, or both", code=2)
    if args.user is not None and not 0 < len(args.user) <= 200:
        raise CommandError("--user: a user id of 1 to 200 characters", code=2)
    before = _moment("--before", args.before) if args.before else None
    if before is not None and before > utcnow():
        raise CommandError("--before is in the future: tokens not yet minted cannot be", code=2)
    if args.sender:
        sender = named_sender(args.sender)
    else:
        sender = None
        use_database()
    revoke_user_tokens(user=args.user, sender=sender, before=before)
    return 0


def _moment(option: str, text: str):
    """An ISO 8601 date or date and time (UTC when it has no offset)."""
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{option}: not an ISO 8601 date or time: {text!r}", code=2) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _expiry(text: str):
    """``--expires``: a duration from now (``30m``, ``12h``, ``90d``, ``2w``) or an ISO 8601 date
    or time, in the future."""
    import re
    from datetime import timedelta

    from models.base import utcnow

    duration = re.fullmatch(r"(\d{1,6})([mhdw])", text.strip())
    if duration:
        unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[duration.group(2)]
        expires_at = utcnow() + timedelta(**{unit: int(duration.group(1))})
    else:
        expires_at = _moment("--expires", text)
    if expires_at <= utcnow():
        raise CommandError("--expires is not in the future", code=2)
    return expires_at
