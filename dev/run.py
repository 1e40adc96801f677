"""``herald run``: the whole service on one machine with nothing installed.

Applies migrations, starts an embedded Redis (when REDIS_URL/BROKER_URL are unset) and a mail
catcher writing ``.eml`` files to ``<VAR_DIR>/outbox``, creates a development API key, then runs
the Procfile's processes (web, worker, scheduler) until interrupted.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import settings
from dev.embedded_redis import EmbeddedRedis
from dev.mailcatcher import MailCatcher, start_mailcatcher

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


def dev_api_key() -> str:
    """A fresh key for the ``dev`` sender (created on first run; its old key stops working)."""
    from models.sender import Sender, create_sender, rotate_key

    sender = Sender.get_or_none(Sender.name == DEV_SENDER)
    if sender is None:
        return create_sender(DEV_SENDER)[1]
    return rotate_key(sender)


def main() -> int:
    from models import upgrade
    from models.db import open_database

    var_dir = os.path.abspath(settings.VAR_DIR)
    outbox = os.path.join(var_dir, "outbox")
    env = dict(os.environ, HOST=os.environ.get("HOST") or "127.0.0.1", PYTHONUNBUFFERED="1")
    # The Procfile's commands (gunicorn, dramatiq, python) come from this interpreter's environment.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    open_database()
    upgrade()
    key = dev_api_key()

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

    children = {
        name: subprocess.Popen(command, shell=True, env=env, start_new_session=True)
        for name, command in procfile().items()
    }
    base_url = f"http://{env['HOST']}:{env.get('PORT') or settings.PORT}"
    redis_url = env.get("REDIS_URL") or settings.broker_url()
    _banner(base_url, key, outbox if catcher else None, settings.BROKER_URL or redis_url, redis_url)

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    exit_code = 0
    try:
        while not stopping:
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
        _stop(children.values())
        if catcher:
            catcher.stop()
        if redis_server:
            redis_server.stop()
    return exit_code


def _stop(children) -> None:
    for child in children:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)


def _banner(base_url: str, key: str, outbox: str | None, broker: str, redis_url: str) -> None:
    lines = [
        "",
        "Herald is running (Ctrl-C stops it).",
        f"  API docs:      {base_url}/docs",
        f"  Dev API key:   {key}",
        f"  Broker:        {broker}",
        f"  Redis:         {redis_url}",
        f"  Database:      {settings.DATABASE_URL}",
    ]
    if outbox:
        lines.append(f"  Emails land:   {outbox}/*.eml")
    lines += [
        "",
        "Try:",
        f"  curl -s {base_url}/v1/notifications -H 'Authorization: Bearer {key}' \\",
        "    -H 'Content-Type: application/json' \\",
        """    -d '{"recipients": [{"type": "email", "value": "ion@example.md"}],"""
        """ "message": {"subject": "Hello", "body": "First message"}}'""",
        "",
    ]
    print("\n".join(lines), flush=True)
