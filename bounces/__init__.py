"""The bounce receiver process (``python -m bounces``, ``herald bounces``): an inbound SMTP
server for the delivery reports that come back to emails' return paths
(``bounces+<token>@BOUNCE_DOMAIN``), applied to their messages as receipts.

With BOUNCE_DOMAIN empty, emails carry no return path of Herald's and nothing can come back:
the process then says so and waits until it is stopped, so that a Procfile (``herald run``)
may start it everywhere."""

from __future__ import annotations

import logging
import signal
import sys
import time
from typing import NoReturn

from bounces.metrics import serve_metrics
from bounces.receiver import BounceReceiver
from models.db import open_database
from settings import settings
from tasks import bind_broker
from tasks.logs import setup_logging

logger = logging.getLogger(__name__)


def main() -> None:
    stopping = _stop_on_signals()  # first: a signal during start-up stops it, not a traceback
    setup_logging()
    if settings.LOG_LEVEL != "DEBUG":
        # aiosmtpd logs every SMTP command, addresses included; the receiver logs each report.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
    if not settings.BOUNCE_DOMAIN:
        logger.info("BOUNCE_DOMAIN is empty: emails carry no return path; receiving nothing")
        _wait_for(stopping)
        return
    open_database()
    bind_broker()  # the sender's callbacks a bounce owes are enqueued
    host, port = settings.BOUNCE_SMTP_HOST, settings.BOUNCE_SMTP_PORT
    receiver = BounceReceiver(host, port)
    metrics = None
    try:
        receiver.start()
    except OSError as error:
        _cannot_listen(host, port, error)
    if settings.BOUNCES_METRICS_PORT:
        try:
            metrics = serve_metrics(settings.BOUNCES_METRICS_PORT)
        except OSError as error:
            receiver.stop()
            _cannot_listen(
                settings.METRICS_HOST or settings.HOST, settings.BOUNCES_METRICS_PORT, error
            )
    logger.info(
        "receiving delivery reports for bounces+…@%s on %s:%d (SMTP)%s",
        settings.BOUNCE_DOMAIN,
        host,
        port,
        f", metrics on {_metrics_host()}:{settings.BOUNCES_METRICS_PORT}" if metrics else "",
    )
    try:
        _wait_for(stopping)
    finally:
        receiver.stop()
        if metrics:
            metrics.shutdown()
        logger.info("bounce receiver stopped")


def _metrics_host() -> str:
    return settings.METRICS_HOST or settings.HOST


def _cannot_listen(host: str, port: int, error: OSError) -> NoReturn:
    logger.error("cannot listen on %s:%d (%s)", host, port, error.strerror or error)
    sys.exit(1)


def _stop_on_signals() -> list[int]:
    """From now on SIGTERM and SIGINT are recorded in the list returned, instead of raised."""
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.append(signum))
    return stopping


def _wait_for(stopping: list[int]) -> None:
    """Return once a signal recorded in ``stopping`` arrived."""
    while not stopping:
        time.sleep(0.2)
