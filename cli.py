"""The ``herald`` command: senders, database migrations, settings, provider set-up, the bounce
receiver, and the development runner."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

# Checks every setting before any command runs (exit status settings.EXIT_INVALID).
from settings import SETTINGS, markdown_table, settings

#: What the running command opened, closed when it returns (see :func:`main`).
_opened = contextlib.ExitStack()


def _open_database():
    """Bind the models to ``DATABASE_URL`` until the command returns; then the database is
    closed and the previous binding restored, so that :func:`main` run in-process (the tests)
    leaves nothing behind."""
    from models.db import close_database, database, open_database

    _opened.callback(database.initialize, database.obj)
    _opened.callback(close_database, open_database())


class CommandError(Exception):
    """A refusal to report on stderr as ``herald: <message>``, exiting with ``code``."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def senders_create(args: argparse.Namespace) -> int:
    from models.sender import PERMISSIONS, SenderExists, create_sender

    unknown = sorted(set(args.grant) - set(PERMISSIONS))
    if unknown:
        print(
            f"herald: unknown permission {', '.join(unknown)}; known: {', '.join(PERMISSIONS)}",
            file=sys.stderr,
        )
        return 2
    callback_url = args.callback_url and _checked_callback_url(args.callback_url)
    _open_database()
    try:
        sender, key = create_sender(args.name, admin=args.admin, permissions=args.grant)
    except SenderExists:
        print(f"herald: a sender named {args.name!r} already exists", file=sys.stderr)
        return 1
    if callback_url:
        sender.callback_url = callback_url
        sender.save(only=[type(sender).callback_url])
    print(key)
    return 0


def _checked_callback_url(url: str) -> str:
    """``url`` as stored, if the URL guard accepts it (https, no private address literals)."""
    from channels.urlguard import UnsafeURL, check_url_syntax

    try:
        return check_url_syntax(url)
    except UnsafeURL as error:
        raise CommandError(f"invalid callback URL: {error}", code=2) from None


def _named_sender(name: str):
    from models.sender import Sender

    _open_database()
    sender = Sender.get_or_none(Sender.name == name)
    if sender is None:
        raise CommandError(f"no sender named {name!r}")
    return sender


def senders_set_callback(args: argparse.Namespace) -> int:
    """Set or clear where a sender's delivery callbacks go; prints nothing."""
    if bool(args.url) == args.clear:
        raise CommandError("give a callback URL or --clear (not both)", code=2)
    url = None if args.clear else _checked_callback_url(args.url)
    sender = _named_sender(args.name)
    sender.callback_url = url
    sender.save(only=[type(sender).callback_url])
    return 0


def _secret_column(args: argparse.Namespace) -> str:
    """The sender's callback secret, or with ``--webhooks`` its legacy webhook secret."""
    return "webhook_secret" if args.webhooks else "callback_secret"


def senders_rotate_secret(args: argparse.Namespace) -> int:
    """Give a sender a new callback secret (``--webhooks``: webhook secret) and print only it;
    the old one stops working."""
    import secrets

    sender, column = _named_sender(args.name), _secret_column(args)
    setattr(sender, column, secrets.token_hex(32))
    sender.save(only=[getattr(type(sender), column)])
    print(getattr(sender, column))
    return 0


def senders_show_secret(args: argparse.Namespace) -> int:
    """Print a sender's callback secret (``--webhooks``: webhook secret), for its receivers."""
    print(getattr(_named_sender(args.name), _secret_column(args)) or "")
    return 0


def senders_grant(args: argparse.Namespace) -> int:
    """Grant a permission to an existing sender (or, with ``revoke-grant``, take it back)."""
    from models.sender import PERMISSIONS, set_grant

    if args.permission not in PERMISSIONS:
        raise CommandError(
            f"unknown permission {args.permission}; known: {', '.join(PERMISSIONS)}", code=2
        )
    sender = _named_sender(args.name)
    changed = set_grant(sender, args.permission, granted=args.action == "grant")
    if not changed:
        state = "has" if args.action == "grant" else "does not have"
        print(f"herald: {args.name} already {state} {args.permission}", file=sys.stderr)
    return 0


def senders_list(args: argparse.Namespace) -> int:
    from models.sender import Sender

    _open_database()
    print(f"{'ID':>4}  {'NAME':<24} {'ADMIN':<5} {'KEY':<12} PERMISSIONS")
    for sender in Sender.select().order_by(Sender.id):
        permissions = ",".join(sender.permissions or []) or "-"
        admin = "yes" if sender.is_admin else "no"
        hint = sender.key_hint + "…"
        print(f"{sender.id:>4}  {sender.name:<24} {admin:<5} {hint:<12} {permissions}")
    return 0


def db_upgrade(args: argparse.Namespace) -> int:
    from models import schema_version, upgrade

    _open_database()
    applied = upgrade()
    for name in applied:
        print(f"applied {name}")
    print(f"schema version: {schema_version()}")
    return 0


def show_settings(args: argparse.Namespace) -> int:
    """Print each setting's effective value (secrets masked) and where it came from; with
    ``--markdown``, the README's table of defaults, allowed values and meanings."""
    if args.markdown:
        print(markdown_table())
        return 0
    width = max(len(name) for name in SETTINGS)
    for name, item in SETTINGS.items():
        source = "environment" if os.environ.get(name, "") else "default"
        shown = item.show(settings.value(name))
        print(f"{name:<{width}}  {shown or '(empty)'}  [{source}]")
    return 0


def vapid_generate(args: argparse.Namespace) -> int:
    from channels.webpush import generate_vapid_keys

    private, public = generate_vapid_keys()
    print(f"VAPID_PRIVATE_KEY={private}")
    print(f"VAPID_PUBLIC_KEY={public}")
    return 0


def viber_set_webhook(args: argparse.Namespace) -> int:
    """Point the Viber bot's webhook at Herald's events endpoint on PUBLIC_BASE_URL, so that
    Viber reports deliveries, reads, failures and unsubscriptions; prints the URL and the
    event types Viber confirmed."""
    from channels import http
    from channels.base import DeliveryError
    from channels.viber import EVENTS_PATH, set_webhook

    if not settings.PUBLIC_BASE_URL:
        raise CommandError(
            "PUBLIC_BASE_URL is not set: it is the https:// address Viber reaches Herald at",
            code=2,
        )
    if not settings.VIBER_AUTH_TOKEN:
        raise CommandError("Viber is not configured: VIBER_AUTH_TOKEN is not set", code=2)
    url = settings.PUBLIC_BASE_URL.rstrip("/") + EVENTS_PATH
    try:
        events = set_webhook(url)
    except DeliveryError as error:
        raise CommandError(f"Viber did not set the webhook to {url}: {error}") from None
    finally:
        http.close_session()
    print(f"Viber webhook: {url} ({', '.join(events) or 'all events'})")
    return 0


def run(args: argparse.Namespace) -> int:
    from dev.run import main as run_main

    return run_main(stop_with_parent=args.stop_with_parent)


def bounces(args: argparse.Namespace) -> int:
    from bounces import main as bounces_main

    bounces_main()
    return 0


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
    show = senders.add_parser("show-secret", help="print the secret signing a sender's callbacks")
    for parser, func in ((rotate, senders_rotate_secret), (show, senders_show_secret)):
        parser.add_argument("name")
        parser.add_argument(
            "--webhooks",
            action="store_true",
            help="the secret signing webhooks to URLs that are no registered endpoint (legacy)",
        )
        parser.set_defaults(func=func)

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
    with _opened:
        try:
            return args.func(args)
        except CommandError as error:
            print(f"herald: {error}", file=sys.stderr)
            return error.code


if __name__ == "__main__":
    sys.exit(main())
