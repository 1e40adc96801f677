"""Logging for every process: :func:`setup_logging` (``LOG_LEVEL``, ``LOG_FORMAT``) and the
fields a log line carries about the work in hand (:func:`log_context`).

With ``LOG_FORMAT=json`` each line is one JSON object (python-json-logger): ``time``,
``level``, ``logger``, ``message``, and ``message_id``, ``notification_id``, ``channel``,
``attempt``, ``sender`` while a job or request is about them. The fields are a context
variable, so they follow the thread (a Dramatiq worker thread, a web request) and end with the
block that set them. They are identifiers only: a destination or body is never a field.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from settings import settings

#: The fields :func:`log_context` may set.
LOG_FIELDS = ("message_id", "notification_id", "channel", "attempt", "sender")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_fields: ContextVar[dict[str, Any]] = ContextVar("herald_log_fields", default={})  # noqa: B039 (never mutated: each block sets a new dict)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Within the block, log lines carry ``fields`` (from :data:`LOG_FIELDS`; None ones are
    left out) on top of those already set."""
    unknown = set(fields) - set(LOG_FIELDS)
    if unknown:
        raise TypeError(f"not log fields: {sorted(unknown)}")
    given = {name: _plain(value) for name, value in fields.items() if value is not None}
    token = _fields.set({**_fields.get(), **given})
    try:
        yield
    finally:
        _fields.reset(token)


def _plain(value: Any) -> Any:
    return value if isinstance(value, int | str) else str(value)


class ContextFields(logging.Filter):
    """Adds the fields of the current :func:`log_context` to each record it passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _fields.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


def json_formatter() -> logging.Formatter:
    """One JSON object per record: time, level, logger, message, then the record's extra
    fields (the :func:`log_context` ones among them) and ``exc_info`` when there is one."""
    return JsonFormatter(
        "{asctime}{levelname}{name}{message}",
        style="{",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    )


def formatter(text_format: str = TEXT_FORMAT) -> logging.Formatter:
    """The formatter ``LOG_FORMAT`` asks for (``text_format`` for text)."""
    return json_formatter() if settings.LOG_FORMAT == "json" else logging.Formatter(text_format)


def setup_logging(logger: logging.Logger | None = None) -> None:
    """What every process entry point calls once: the root logger (or ``logger``) at
    ``LOG_LEVEL``, its handlers adding the context fields. A logger without handlers gets one
    writing to stderr. With ``LOG_FORMAT=json`` every handler formats JSON; with ``text`` the
    handlers a host set up (Dramatiq's, gunicorn's) keep their own format."""
    logger = logger or logging.getLogger()
    if logger is logging.getLogger():
        logger.setLevel(settings.LOG_LEVEL)
    if not logger.handlers:
        stderr = logging.StreamHandler()
        stderr.setFormatter(logging.Formatter(TEXT_FORMAT))
        logger.addHandler(stderr)
    for handler in logger.handlers:
        if settings.LOG_FORMAT == "json":
            handler.setFormatter(json_formatter())
        if not any(isinstance(each, ContextFields) for each in handler.filters):
            handler.addFilter(ContextFields())
