"""``herald senders``: create senders, their callback URL and secrets, grants, limits and client
certificates."""

from __future__ import annotations

import argparse
import sys

from cli.common import CommandError, named_sender, use_database
from settings import settings


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
    use_database()
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


def senders_set_callback(args: argparse.Namespace) -> int:
    """Set or clear where a sender's delivery callbacks go; prints nothing."""
    if bool(args.url) == args.clear:
        raise CommandError("give a callback URL or --clear (not both)", code=2)
    url = None if args.clear else _checked_callback_url(args.url)
    sender = named_sender(args.name)
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

    sender, column = named_sender(args.name), _secret_column(args)
    setattr(sender, column, secrets.token_hex(32))
    sender.save(only=[getattr(type(sender), column)])
    print(getattr(sender, column))
    return 0


def senders_show_secret(args: argparse.Namespace) -> int:
    """Print a sender's callback secret (``--webhooks``: webhook secret), for its receivers."""
    print(getattr(named_sender(args.name), _secret_column(args)) or "")
    return 0


def senders_grant(args: argparse.Namespace) -> int:
    """Grant a permission to an existing sender (or, with ``revoke-grant``, take it back)."""
    from models.sender import PERMISSIONS, set_grant

    if args.permission not in PERMISSIONS:
        raise CommandError(
            f"unknown permission {args.permission}; known: {', '.join(PERMISSIONS)}", code=2
        )
    sender = named_sender(args.name)
    changed = set_grant(sender, args.permission, granted=args.action == "grant")
    if not changed:
        state = "has" if args.action == "grant" else "does not have"
        print(f"herald: {args.name} already {state} {args.permission}", file=sys.stderr)
    return 0


def senders_list(args: argparse.Namespace) -> int:
    from models.sender import Sender, newest_prefixes

    use_database()
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


def limit_argument(text: str) -> int | None:
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
    if args.per_minute is UNCHANGED and args.per_day is UNCHANGED:
        raise CommandError("give --per-minute and/or --per-day (a number, 0: none, or default)", 2)
    sender = named_sender(args.name)
    model = type(sender)
    if args.per_minute is not UNCHANGED:
        if args.per_minute is not None and args.per_minute > 10**9:
            raise CommandError("--per-minute is at most 1,000,000,000", code=2)
        sender.rate_limit_per_minute = args.per_minute
    if args.per_day is not UNCHANGED:
        sender.daily_message_limit = args.per_day
    sender.save(only=[model.rate_limit_per_minute, model.daily_message_limit])
    minute = _limit_shown(sender.rate_limit_per_minute, settings.API_RATE_LIMIT_PER_MINUTE)
    day = _limit_shown(sender.daily_message_limit, settings.DAILY_MESSAGE_LIMIT)
    print(f"{sender.name}: per minute {minute}, per day {day} (* the setting's)")
    return 0


UNCHANGED = object()


def senders_bind_certificate(args: argparse.Namespace) -> int:
    """Bind a PEM certificate's fingerprint to a sender; prints the fingerprint."""
    from models.certificate import CertificateTaken, bind_certificate

    certificate = _read_certificate(args.pem_file)
    sender = named_sender(args.name)
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
    if not unbind_certificate(named_sender(args.name), fingerprint):
        raise CommandError(f"no certificate {fingerprint} is bound to {args.name}")
    return 0


def senders_certificates(args: argparse.Namespace) -> int:
    """A sender's certificates: whether it requires one, then one line per certificate."""
    from models.certificate import certificates_of

    sender = named_sender(args.name)
    print(f"certificate required with the key: {'yes' if sender.require_certificate else 'no'}")
    print(f"{'FINGERPRINT (SHA-256)':<64}  {'NOT AFTER':<16}  SUBJECT")
    for bound in certificates_of(sender):
        print(f"{bound.fingerprint}  {bound.not_after:%Y-%m-%d %H:%M}  {bound.subject}")
    return 0


def senders_require_certificate(args: argparse.Namespace) -> int:
    """Require (on) or not (off) a bound certificate as well as a sender's API key."""
    from models.certificate import certificates_of, set_certificate_required

    sender = named_sender(args.name)
    set_certificate_required(sender, args.state == "on")
    if args.state == "on" and not certificates_of(sender):
        print(f"herald: warning: {args.name} has no certificate bound yet", file=sys.stderr)
    return 0


def certificate_commands(senders) -> None:
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
