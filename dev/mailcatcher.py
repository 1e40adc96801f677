"""A local SMTP server that keeps every email: in memory, and as ``.eml`` files in a directory."""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def email(self) -> EmailMessage:
        return message_from_bytes(self.raw, policy=policy.default)


class MailCatcher:
    """An aiosmtpd handler that accepts every message and keeps it.

    With ``directory``, each message is also written there as ``<time>-<id>.eml``.
    """

    def __init__(self, directory: str | None = None) -> None:
        self.directory = directory
        self.received: list[ReceivedMail] = []
        self._changed = threading.Condition()
        if directory:
            os.makedirs(directory, exist_ok=True)

    async def handle_DATA(self, server, session, envelope) -> str:
        mail = ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        if self.directory:
            _write(self.directory, mail.raw)
        with self._changed:
            self.received.append(mail)
            self._changed.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float = 30.0) -> list[ReceivedMail]:
        """Block until at least ``count`` messages arrived (or ``timeout``); return them all."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)


def start_mailcatcher(handler, host: str, port: int) -> Controller:
    """Serve ``handler`` on host:port in a background thread; ``.stop()`` the result to end it."""
    controller = Controller(handler, hostname=host, port=port, decode_data=False)
    controller.start()
    return controller


def _write(directory: str, raw: bytes) -> None:
    """Store ``raw`` in ``directory`` as ``<time>-<id>.eml``, whole or not at all."""
    name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.eml"
    partial = os.path.join(directory, f".{name}.part")
    with open(partial, "wb") as file:
        file.write(raw)
    os.replace(partial, os.path.join(directory, name))
