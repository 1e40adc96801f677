"""The ``herald`` command: senders, database migrations, settings, and the development runner."""

from __future__ import annotations

import argparse
import sys


def _open_database():
    from models.db import open_database

    open_database()


def senders_create(args: argparse.Namespace) -> int:
    from models.sender import PERMISSIONS, SenderExists, create_sender

    unknown = sorted(set(args.grant) - set(PERMISSIONS))
    if unknown:
        print(
            f"herald: unknown permission {', '.join(unknown)}; known: {', '.join(PERMISSIONS)}",
            file=sys.stderr,
        )
        return 2
    _open_database()
    try:
        _, key = create_sender(args.name, admin=args.admin, permissions=args.grant)
    except SenderExists:
        print(f"herald: a sender named {args.name!r} already exists", file=sys.stderr)
        return 1
    print(key)
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
    import settings

    print(settings.markdown_table())
    return 0


def vapid_generate(args: argparse.Namespace) -> int:
    from channels.webpush import generate_vapid_keys

    private, public = generate_vapid_keys()
    print(f"VAPID_PRIVATE_KEY={private}")
    print(f"VAPID_PUBLIC_KEY={public}")
    return 0


def run(args: argparse.Namespace) -> int:
    from dev.run import main as run_main

    return run_main()


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
    create.set_defaults(func=senders_create)
    senders.add_parser("list", help="list senders").set_defaults(func=senders_list)

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

    commands.add_parser("settings", help="print every setting as a Markdown table").set_defaults(
        func=show_settings
    )
    commands.add_parser("run", help="run web, worker and scheduler for development").set_defaults(
        func=run
    )
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
