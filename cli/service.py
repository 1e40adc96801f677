"""The service's own commands: ``db upgrade``, ``settings``, ``vapid generate``, ``viber
set-webhook``, ``run`` and ``bounces``."""

from __future__ import annotations

import argparse
import os

from cli.common import CommandError, use_database
from settings import SETTINGS, markdown_table, settings


def db_upgrade(args: argparse.Namespace) -> int:
    from models import schema_version, upgrade
    from models.server_secret import seal_all

    use_database()
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
