"""The ``herald`` command: senders and their API keys, user-token revocation, database
migrations, settings, provider set-up, the bounce receiver, and the development runner."""

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
    from models.sender import Sender, newest_prefixes

    _open_database()
    print(
        f"{'ID':>4}  {'NAME':<24} {'ADMIN':<5} {'KEY':<12} {'PER-MINUTE':<12} {'PER-DAY':<12} "
        "PERMISSIONS"
    )
    prefixes = newest_prefixes()
    for sender in Sender.select().order_by(Sender.id):
        permissions = ",".join(sender.permissions or []) or "-"
        admin = "yes" if sender.is_admin else "no"
        hint = prefixes[sender.id] + "…" if sender.id in prefixes else "-"
        minute = _limit_shown(sender.rate_limit_per_minute, settings.API_RATE_LIMIT_PER_MINUTE)
        day = _limit_shown(sender.daily_message_limit, settings.DAILY_MESSAGE_LIMIT)
        print(
            f"{sender.id:>4}  {sender.name:<24} {admin:<5} {hint:<12} {minute:<12} {day:<12} "
            f"{permissions}"
        )
    return 0


def _limit_shown(override: int | None, default: int) -> str:
    """A limit as listed: the sender's own (``500``), else the setting's (``3000*``); 0 is
    ``off`` (``off*`` when it is the setting's)."""
    value = default if override is None else override
    return (str(value) if value else "off") + ("*" if override is None else "")


#: What ``set-limits`` takes for "no override: the setting's value".
DEFAULT_LIMIT = "default"


def _limit_argument(text: str) -> int | None:
    """A ``set-limits`` value: a whole number (0: no limit) or ``default`` (None)."""
    if text == DEFAULT_LIMIT:
        return None
    if not text.isdigit() or len(text) > 12:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number from 0 (no limit) or 'default'"
        )
    return int(text)


def senders_set_limits(args: argparse.Namespace) -> int:
    """Set (or with ``default`` clear) a sender's own request and daily message limits; web
    processes apply them within SENDER_CACHE_SECONDS. Prints the limits now in force."""
    if args.per_minute is _UNCHANGED and args.per_day is _UNCHANGED:
        raise CommandError("give --per-minute and/or --per-day (a number, 0: none, or default)", 2)
    sender = _named_sender(args.name)
    model = type(sender)
    if args.per_minute is not _UNCHANGED:
        if args.per_minute is not None and args.per_minute > 10**9:
            raise CommandError("--per-minute is at most 1,000,000,000", code=2)
        sender.rate_limit_per_minute = args.per_minute
    if args.per_day is not _UNCHANGED:
        sender.daily_message_limit = args.per_day
    sender.save(only=[model.rate_limit_per_minute, model.daily_message_limit])
    minute = _limit_shown(sender.rate_limit_per_minute, settings.API_RATE_LIMIT_PER_MINUTE)
    day = _limit_shown(sender.daily_message_limit, settings.DAILY_MESSAGE_LIMIT)
    print(f"{sender.name}: per minute {minute}, per day {day} (* the setting's)")
    return 0


_UNCHANGED = object()


def keys_add(args: argparse.Namespace) -> int:
    """Give a sender another API key and print only it (once: only its hash is kept)."""
    from models.sender import add_key

    expires_at = _expiry(args.expires) if args.expires else None

    _, key = add_key(_named_sender(args.sender), expires_at=expires_at)
    print(key)
    return 0


def keys_list(args: argparse.Namespace) -> int:
    """A header line, then one line per key of the sender: id, prefix, created, last used,
    expiry, revoked (UTC, to the second; ``-`` for none)."""
    from models.sender import keys_of

    rows = keys_of(_named_sender(args.sender))
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

    _open_database()
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
        sender = _named_sender(args.sender)
    else:
        sender = None
        _open_database()
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


def senders_bind_certificate(args: argparse.Namespace) -> int:
    """Bind a PEM certificate's fingerprint to a sender; prints the fingerprint."""
    from models.certificate import CertificateTaken, bind_certificate

    certificate = _read_certificate(args.pem_file)
    sender = _named_sender(args.name)
    if not certificate.valid_now():
        when = "expired on" if certificate.expired() else "is not valid before"
        moment = certificate.not_after if certificate.expired() else certificate.not_before
        print(
            f"herald: warning: the certificate {when} {moment:%Y-%m-%d %H:%M} UTC", file=sys.stderr
        )
    try:
        if not bind_certificate(sender, certificate):
            print(f"herald: already bound to {args.name}", file=sys.stderr)
    except CertificateTaken as taken:
        raise CommandError(str(taken)) from None
    print(certificate.fingerprint)
    return 0


def _read_certificate(path: str):
    from models.certificate import MAX_PEM_BYTES, InvalidCertificate, read_pem

    try:
        with open(path, "rb") as file:
            return read_pem(file.read(MAX_PEM_BYTES + 1))
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror}", code=2) from None
    except InvalidCertificate as invalid:
        raise CommandError(f"{path}: {invalid}", code=2) from None


def senders_unbind_certificate(args: argparse.Namespace) -> int:
    """Unbind a certificate, given by its fingerprint or its PEM file, from a sender."""
    from models.certificate import normal_fingerprint, unbind_certificate

    fingerprint = normal_fingerprint(args.certificate)
    if fingerprint is None:
        fingerprint = _read_certificate(args.certificate).fingerprint
    if not unbind_certificate(_named_sender(args.name), fingerprint):
        raise CommandError(f"no certificate {fingerprint} is bound to {args.name}")
    return 0


def senders_certificates(args: argparse.Namespace) -> int:
    """A sender's certificates: whether it requires one, then one line per certificate."""
    from models.certificate import certificates_of

    sender = _named_sender(args.name)
    print(f"certificate required with the key: {'yes' if sender.require_certificate else 'no'}")
    print(f"{'FINGERPRINT (SHA-256)':<64}  {'NOT AFTER':<16}  SUBJECT")
    for bound in certificates_of(sender):
        print(f"{bound.fingerprint}  {bound.not_after:%Y-%m-%d %H:%M}  {bound.subject}")
    return 0


def senders_require_certificate(args: argparse.Namespace) -> int:
    """Require (on) or not (off) a bound certificate as well as a sender's API key."""
    from models.certificate import certificates_of, set_certificate_required

    sender = _named_sender(args.name)
    set_certificate_required(sender, args.state == "on")
    if args.state == "on" and not certificates_of(sender):
        print(f"herald: warning: {args.name} has no certificate bound yet", file=sys.stderr)
    return 0


def db_upgrade(args: argparse.Namespace) -> int:
    from models import schema_version, upgrade
    from models.server_secret import seal_all

    _open_database()
    applied = upgrade()
    for name in applied:
        print(f"applied {name}")
    for name in seal_all():
        print(f"wrapped server secret {name} under SECRET_KEY")
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
            option, type=_limit_argument, default=_UNCHANGED, metavar="N|default", help=what
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
    _certificate_commands(senders)

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


def _certificate_commands(senders) -> None:
    bind = senders.add_parser(
        "bind-certificate",
        help="bind a client certificate (PEM) to a sender; prints its fingerprint",
    )
    bind.add_argument("name")
    bind.add_argument("pem_file")
    bind.set_defaults(func=senders_bind_certificate)
    unbind = senders.add_parser("unbind-certificate", help="unbind a client certificate")
    unbind.add_argument("name")
    unbind.add_argument("certificate", help="its SHA-256 fingerprint (hex), or its PEM file")
    unbind.set_defaults(func=senders_unbind_certificate)
    listed = senders.add_parser("certificates", help="list a sender's client certificates")
    listed.add_argument("name")
    listed.set_defaults(func=senders_certificates)
    require = senders.add_parser(
        "require-certificate", help="require a bound certificate as well as the API key"
    )
    require.add_argument("name")
    require.add_argument("state", choices=("on", "off"))
    require.set_defaults(func=senders_require_certificate)


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
