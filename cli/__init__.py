"""The ``herald`` command: senders and their API keys, user-token revocation, database
migrations, settings, provider set-up, the bounce receiver, and the development runner."""

from __future__ import annotations

import argparse
import sys

# Checks every setting before any command runs (exit status settings.EXIT_INVALID).
import settings  # noqa: F401
from cli.common import CommandError, opened
from cli.keys import keys_add, keys_list, keys_revoke, tokens_revoke
from cli.senders import (
    UNCHANGED,
    certificate_commands,
    limit_argument,
    senders_create,
    senders_grant,
    senders_list,
    senders_rotate_secret,
    senders_set_callback,
    senders_set_limits,
    senders_show_secret,
)
from cli.service import bounces, db_upgrade, run, show_settings, vapid_generate, viber_set_webhook


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="herald", description="Herald notification service")
    commands = root.add_subparsers(dest="command", required=True)

    senders = commands.add_parser("senders", help="manage API senders").add_subparsers(
        dest="action", required=True
    )
    create = senders.add_parser("create", help="create a sender; prints only its new API key")
    create.add_argument("name")
    create.add_argument("--admin", action="store_true", help="may see every sender's data")
    create.add_argument(
        "--grant", action="append", default=[], metavar="PERMISSION", help="grant a permission"
    )
    create.add_argument(
        "--callback-url", metavar="URL", help="where to POST signed delivery callbacks"
    )
    create.set_defaults(func=senders_create)
    senders.add_parser("list", help="list senders").set_defaults(func=senders_list)
    for action, text in (("grant", "grant a permission to"), ("revoke-grant", "revoke one of")):
        grant = senders.add_parser(action, help=f"{text} a sender's permissions")
        grant.add_argument("name")
        grant.add_argument("permission", help="contacts:read, contacts:write or resend_failed")
        grant.set_defaults(func=senders_grant)
    callback = senders.add_parser(
        "set-callback", help="set (or --clear) the URL that receives delivery callbacks"
    )
    callback.add_argument("name")
    callback.add_argument("url", nargs="?", help="an https:// URL")
    callback.add_argument("--clear", action="store_true", help="send no more callbacks")
    callback.set_defaults(func=senders_set_callback)
    rotate = senders.add_parser(
        "rotate-secret", help="new secret signing the sender's delivery callbacks; prints only it"
    )
    limits = senders.add_parser(
        "set-limits",
        help="set a sender's own rate limits (a number, 0: none, default: the setting's)",
    )
    limits.add_argument("name")
    for option, what in (
        ("--per-minute", "requests per minute (default: API_RATE_LIMIT_PER_MINUTE's)"),
        ("--per-day", "messages per UTC day (default: DAILY_MESSAGE_LIMIT's)"),
    ):
        limits.add_argument(
            option, type=limit_argument, default=UNCHANGED, metavar="N|default", help=what
        )
    limits.set_defaults(func=senders_set_limits)
    show = senders.add_parser("show-secret", help="print the secret signing a sender's callbacks")
    for parser, func in ((rotate, senders_rotate_secret), (show, senders_show_secret)):
        parser.add_argument("name")
        parser.add_argument(
            "--webhooks",
            action="store_true",
            help="the secret signing webhooks to URLs that are no registered endpoint (legacy)",
        )
        parser.set_defaults(func=func)
    certificate_commands(senders)

    keys = commands.add_parser("keys", help="a sender's API keys").add_subparsers(
        dest="action", required=True
    )
    add = keys.add_parser("add", help="give a sender another API key; prints only the key")
    add.add_argument("sender", help="the sender's name")
    add.add_argument(
        "--expires", metavar="WHEN", help="ISO 8601 date or time (UTC), or 30m, 12h, 90d, 2w"
    )
    add.set_defaults(func=keys_add)
    listed = keys.add_parser("list", help="a sender's keys: id, prefix, created, used, expiry")
    listed.add_argument("sender", help="the sender's name")
    listed.set_defaults(func=keys_list)
    revoke = keys.add_parser("revoke", help="revoke a key (refused within SENDER_CACHE_SECONDS)")
    revoke.add_argument("key_id", type=int, help="the key's id, from `herald keys list`")
    revoke.set_defaults(func=keys_revoke)

    tokens = commands.add_parser("tokens", help="user (inbox) tokens").add_subparsers(
        dest="action", required=True
    )
    revoke_tokens = tokens.add_parser(
        "revoke", help="refuse user tokens minted before a time (default: now)"
    )
    revoke_tokens.add_argument("--user", help="only this user's tokens")
    revoke_tokens.add_argument("--sender", metavar="NAME", help="only tokens this sender minted")
    revoke_tokens.add_argument("--before", metavar="ISO_TIME", help="minted before this (UTC)")
    revoke_tokens.set_defaults(func=tokens_revoke)

    db = commands.add_parser("db", help="database schema").add_subparsers(
        dest="action", required=True
    )
    db.add_parser("upgrade", help="apply pending migrations").set_defaults(func=db_upgrade)

    vapid = commands.add_parser("vapid", help="web push keys").add_subparsers(
        dest="action", required=True
    )
    vapid.add_parser(
        "generate", help="print a new VAPID key pair as VAPID_PRIVATE_KEY=… and VAPID_PUBLIC_KEY=…"
    ).set_defaults(func=vapid_generate)

    viber = commands.add_parser("viber", help="Viber bot set-up").add_subparsers(
        dest="action", required=True
    )
    viber.add_parser(
        "set-webhook",
        help="point the bot's webhook at Herald (PUBLIC_BASE_URL) for delivery receipts",
    ).set_defaults(func=viber_set_webhook)

    shown = commands.add_parser(
        "settings", help="print every setting's effective value (after checking them all)"
    )
    shown.add_argument(
        "--markdown", action="store_true", help="the README's table: defaults, allowed values"
    )
    shown.set_defaults(func=show_settings)
    commands.add_parser(
        "bounces", help="receive emails' delivery reports (SMTP on BOUNCE_SMTP_HOST:_PORT)"
    ).set_defaults(func=bounces)
    dev = commands.add_parser(
        "run", help="run web, worker, scheduler and bounce receiver for development"
    )
    dev.add_argument(
        "--stop-with-parent",
        action="store_true",
        help="also stop when the parent process exits (make run)",
    )
    dev.set_defaults(func=run)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    with opened:
        try:
            return args.func(args)
        except CommandError as error:
            print(f"herald: {error}", file=sys.stderr)
            return error.code
