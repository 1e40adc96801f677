"""The SMTP server the invariant test sends to: a real aiosmtpd server whose answer depends on
the recipient's address, so each message's fate is decided by what the test addressed."""

from __future__ import annotations

import asyncio
import re
import threading
from collections import Counter

from tests.support import ScriptedMailServer

#: How the server treats an address ``<kind>-<n>@example.md``.
KINDS = ("ok", "flaky", "reject", "refuse", "down")
#: A flaky address refuses each message this many times with a 4xx, then accepts it.
FLAKY_REFUSALS = 2
#: The longest the server holds a stalled DATA (the test releases it sooner).
STALL_SECONDS = 60

_MESSAGE_ID = re.compile(rb"^X-Herald-Message-Id: *(\S+)", re.MULTILINE | re.IGNORECASE)


def address(kind: str, number: int) -> str:
    return f"{kind}-{number}@example.md"


def kind_of(address: str) -> str:
    return address.partition("-")[0]


def herald_id(raw: bytes) -> str | None:
    """The Herald message id an email carries in ``X-Herald-Message-Id``."""
    found = _MESSAGE_ID.search(raw.split(b"\r\n\r\n", 1)[0].replace(b"\r\n", b"\n"))
    return found.group(1).decode() if found else None


class AddressScriptedMailServer(ScriptedMailServer):
    """``ok`` accepts; ``flaky`` answers DATA 451 the first FLAKY_REFUSALS times for each Herald
    message, then accepts; ``reject`` refuses RCPT with 550 (an invalid destination);
    ``refuse`` answers DATA 554 (rejected by the provider); ``down`` answers RCPT 451 always
    (retries run out). :meth:`stall_next` holds the next DATA open until :meth:`release`."""

    def __init__(self) -> None:
        super().__init__()
        self.refusals: Counter[str] = Counter()
        self.stalling = threading.Event()
        self.stalled = threading.Event()
        self.released = threading.Event()

    def reset(self) -> None:
        self.received.clear()
        self.refusals.clear()
        self.release()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        kind = kind_of(address)
        if kind == "reject":
            return "550 5.1.1 No such user here"
        if kind == "down":
            return "451 4.2.1 Mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.stalling.is_set() and not self.stalled.is_set():
            self.stalled.set()
            for _ in range(STALL_SECONDS * 20):
                if self.released.is_set():
                    break
                await asyncio.sleep(0.05)
            return "451 4.3.0 Timed out"
        kinds = {kind_of(rcpt) for rcpt in envelope.rcpt_tos}
        if "refuse" in kinds:
            return "554 5.7.1 Message refused"
        message_id = herald_id(envelope.original_content or b"")
        if "flaky" in kinds and message_id and self.refusals[message_id] < FLAKY_REFUSALS:
            self.refusals[message_id] += 1
            return "451 4.3.2 Please try again"
        return await super().handle_DATA(server, session, envelope)

    def stall_next(self) -> None:
        self.released.clear()
        self.stalled.clear()
        self.stalling.set()

    def release(self) -> None:
        self.stalling.clear()
        self.released.set()

    def deliveries(self) -> Counter[str]:
        """How many times each Herald message id was accepted."""
        return Counter(herald_id(mail.raw) for mail in list(self.received))
