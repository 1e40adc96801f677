"""What every ``herald`` command shares: the database it opens (closed when it returns), its
refusals, and finding a sender by name."""

from __future__ import annotations

import contextlib

#: What the running command opened, closed when it returns (see :func:`main`).
opened = contextlib.ExitStack()


def use_database():
    """Bind the models to ``DATABASE_URL`` until the command returns; then the database is
    closed and the previous binding restored, so that :func:`main` run in-process (the tests)
    leaves nothing behind."""
    from models.db import close_database, database, open_database

    opened.callback(database.initialize, database.obj)
    opened.callback(close_database, open_database())


class CommandError(Exception):
    """A refusal to report on stderr as ``herald: <message>``, exiting with ``code``."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def named_sender(name: str):
    from models.sender import Sender

    use_database()
    sender = Sender.get_or_none(Sender.name == name)
    if sender is None:
        raise CommandError(f"no sender named {name!r}")
    return sender
