"""``herald run``: the whole service on one machine with nothing installed.

Applies migrations, starts an embedded Redis (when REDIS_URL/BROKER_URL are unset) and a mail
catcher writing ``.eml`` files to ``<VAR_DIR>/outbox``, keeps a development API key (an admin's) in
``<VAR_DIR>/dev-key``, then runs the Procfile's processes (web, worker, scheduler, bounces) until
interrupted, printing its banner once ``/healthz`` answers.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
import urllib.request

from dev.embedded_redis import EmbeddedRedis
from dev.mailcatcher import MailCatcher, start_mailcatcher
from dev.processes import start_processes, stop_processes
from settings import settings

DEV_SENDER = "dev"


def procfile(path: str = "Procfile") -> dict[str, str]:
    """The Procfile's processes: name → shell command."""
    processes = {}
    with open(path) as file:
        for line in file:
            match = re.match(r"^([\w-]+):\s*(.+)$", line.strip())
            if match:
                processes[match.group(1)] = match.group(2)
    return processes


def dev_api_key(var_dir: str) -> str:
    """The ``dev`` sender's key, an admin's: kept in ``<VAR_DIR>/dev-key`` (mode 0600) and reused
    while it still opens the ``dev`` sender; otherwise a new one, written there. The database
    keeps only its hash, as for every key."""
    from models.sender import Sender, create_sender, rotate_key, sender_for_key

    path = os.path.join(var_dir, "dev-key")
    try:
        with open(path) as file:
            key = file.read().strip()
    except FileNotFoundError:
        key = ""
    sender = Sender.get_or_none(Sender.name == DEV_SENDER)
    if sender is None:
        sender, key = create_sender(DEV_SENDER, admin=True)
    elif not key or getattr(sender_for_key(key), "id", None) != sender.id:
        key = rotate_key(sender)
    if not sender.is_admin:
        sender.is_admin = True
        sender.save(only=[Sender.is_admin])
    os.makedirs(var_dir, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(key + "\n")
    os.chmod(path, 0o600)
    return key


def _wait_healthy(base_url: str, children: dict, stopping: list, timeout: float = 120) -> bool:
    """Wait until ``/healthz`` answers 200; False if a child exits, a signal arrives or it times
    out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stopping:
        if any(child.poll() is not None for child in children.values()):
            return False
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def main(stop_with_parent: bool = False) -> int:
    """Run until SIGINT or SIGTERM (or, with ``stop_with_parent``, until the parent process
    exits: GNU make neither forwards a signal to its recipe nor waits for it on SIGTERM)."""
    parent = os.getppid()
    from models import upgrade
    from models.db import open_database

    var_dir = os.path.abspath(settings.VAR_DIR)
    outbox = os.path.join(var_dir, "outbox")
    env = dict(os.environ, HOST=os.environ.get("HOST") or "127.0.0.1", PYTHONUNBUFFERED="1")
    # The Procfile's commands (gunicorn, dramatiq, python) come from this interpreter's environment.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    open_database()
    upgrade()
    key = dev_api_key(var_dir)

    redis_server = None
    if not settings.REDIS_URL and not settings.broker_url().startswith(("redis", "rediss")):
        # Locks and rate limits need a Redis even when RabbitMQ is the broker.
        redis_server = EmbeddedRedis(directory=var_dir).start()
        env["REDIS_URL"] = redis_server.url
    catcher = None
    if settings.MAILCATCHER:
        try:
            catcher = start_mailcatcher(MailCatcher(outbox), settings.SMTP_HOST, settings.SMTP_PORT)
        except OSError as error:
            if redis_server:
                redis_server.stop()
            print(
                f"herald run: the mail catcher cannot listen on {settings.SMTP_HOST}:"
                f"{settings.SMTP_PORT} ({error}). Set SMTP_PORT to a free port, or "
                "MAILCATCHER=false to send through the SMTP_* server instead.",
                file=sys.stderr,
            )
            return 1

    children = start_processes(procfile(), env)
    base_url = f"http://{env['HOST']}:{env.get('PORT') or settings.PORT}"
    redis_url = env.get("REDIS_URL") or settings.broker_url()

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    exit_code = 0
    try:
        if _wait_healthy(base_url, children, stopping):
            _banner(base_url, key, var_dir, outbox if catcher else None, redis_url)
        elif not stopping:
            print(f"herald run: {base_url}/healthz did not answer 200", file=sys.stderr)
        while not stopping:
            if stop_with_parent and os.getppid() != parent:
                stopping.append(True)
            for name, child in children.items():
                if child.poll() is not None:
                    print(
                        f"herald run: {name} exited with {child.returncode}; stopping",
                        file=sys.stderr,
                    )
                    exit_code = child.returncode or 1
                    stopping.append(True)
            time.sleep(0.2)
    finally:
        print(f"herald run: stopping {', '.join(children)}", flush=True)
        stop_processes(children)
        if catcher:
            catcher.stop()
        if redis_server:
            redis_server.stop()
        print("herald run: stopped", flush=True)
    return exit_code


def _banner(base_url: str, key: str, var_dir: str, outbox: str | None, redis_url: str) -> None:
    lines = [
        "",
        "Herald is running (Ctrl-C stops it).",
        f"  API:           {base_url}   (docs: {base_url}/docs)",
        f"  Dev API key:   {key}",
        f"                 an admin key with every permission, kept in {var_dir}/dev-key",
        f"  Broker:        {settings.BROKER_URL or redis_url}",
        f"  Redis:         {redis_url}",
        f"  Database:      {settings.DATABASE_URL}",
    ]
    if outbox:
        lines.append(f"  Emails land:   {outbox}/*.eml")
    lines += [
        "",
        "Try:",
        f"  curl -sf {base_url}/v1/notifications -H 'Authorization: Bearer {key}' \\",
        "    -H 'Content-Type: application/json' \\",
        """    -d '{"recipients": [{"type": "email", "value": "ion@example.md"}],"""
        """ "message": {"subject": "Hello", "body": "First message"}}'""",
        "",
    ]
    print("\n".join(lines), flush=True)
