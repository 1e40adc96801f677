"""The parts one invariant run uses, built once per broker × database and reset between
examples: the app, the broker under test, the in-process worker, the SMTP server, the clock."""

from __future__ import annotations

import logging
from contextlib import suppress
from dataclasses import dataclass, field

from flask import Flask

from api.auth import forget_checked_keys
from models import ALL_MODELS
from models.db import database, write_transaction
from models.message import forget_notifications
from tests.factories import SenderWithKey, make_sender
from tests.invariants.clock import Clock
from tests.invariants.mail import AddressScriptedMailServer
from tests.invariants.system import BrokerUnderTest, WorkerUnderTest, settle

#: What sender ``b`` may do beyond sending.
GRANTS = ("resend_failed", "contacts:write", "contacts:read")


@dataclass
class Harness:
    app: Flask
    broker: BrokerUnderTest
    worker: WorkerUnderTest
    smtp: AddressScriptedMailServer
    clock: Clock
    #: environment of a ``dramatiq tasks.worker`` subprocess on the same database, Redis and SMTP
    process_env: dict[str, str]
    #: jobs that ended in an unhandled exception, as the worker logged them
    job_errors: list[str] = field(default_factory=list)

    def reset(self) -> dict[str, SenderWithKey]:
        """A fresh start for an example: what the last one left drained, every table emptied,
        the clock back to real time; returns the two senders."""
        self.recover()
        with suppress(AssertionError):  # what is left finds nothing once the tables are empty
            settle(self.broker, self.worker)
        self.broker.flush()
        database.close()  # a failure kept by hypothesis may hold a statement open
        with write_transaction():
            for model in reversed(ALL_MODELS):
                model.delete().execute()
        self.smtp.reset()
        self.clock.reset()
        forget_checked_keys()
        forget_notifications()
        self.job_errors.clear()
        return {"a": make_sender("acme"), "b": make_sender("globex", permissions=GRANTS)}

    def recover(self) -> None:
        """After a failed example: no SMTP transaction held open, a worker running."""
        self.smtp.release()
        if self.worker.worker is None:
            self.worker.start()


class JobErrors(logging.Handler):
    """Collects the worker's "Failed to process message … with unhandled exception"."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.errors = errors

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if "unhandled exception" in text:
            error = record.exc_info[1] if record.exc_info else None
            self.errors.append(f"{text} {error!r}")
