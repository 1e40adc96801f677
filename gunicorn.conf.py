"""gunicorn's settings for Herald's web process. gunicorn reads ``./gunicorn.conf.py`` by itself,
so the Procfile, ``herald run`` and anyone starting ``gunicorn`` in this directory get them;
options given on the command line win.

Threaded workers (``api.gunicorn_worker.HeraldWorker``, gunicorn's gthread made to face clients
directly): idle or half-sent connections wait in the worker's poller instead of holding a
thread, so slow clients do not stall the API, without a proxy in front.

Metrics: the workers write them to ``PROMETHEUS_MULTIPROC_DIR`` (``<VAR_DIR>/metrics/web``
unless the environment names one; set here, before any worker imports ``prometheus_client``),
emptied when the server starts, a dead worker's live gauges removed when it exits; any worker's
``/metrics`` reads them all. One server per directory.

TLS (``TLS_CERTFILE``, ``TLS_KEYFILE``): served by gunicorn itself, asking clients for a
certificate signed by ``TLS_CA_CERTS`` with ``TLS_CLIENT_CERT`` (``optional``, or ``required``:
no handshake without one); a certificate bound to a sender is that sender (see
``api.client_certificate``).
"""

import os
import ssl
import sys

from settings import EXIT_INVALID, settings

wsgi_app = "api.app:create_app()"
bind = [f"{settings.HOST}:{settings.PORT}"]
workers = int(os.environ.get("WEB_CONCURRENCY") or 2)
worker_class = "api.gunicorn_worker.HeraldWorker"
threads = 8
#: Seconds an idle kept-alive connection, or a half-sent request, is kept before it is closed.
keepalive = 5
#: A worker whose main loop has not checked in for this long is restarted.
timeout = 30
graceful_timeout = 30
accesslog = "-"
#: gunicorn's default line without the query string (``%(U)s`` is the path alone): a search's
#: query names addresses and IDNPs, which have no place in a log.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(f)s" "%(a)s"'
#: gunicorn's own lines in LOG_FORMAT (JSON objects with LOG_FORMAT=json).
logger_class = "api.gunicorn_worker.HeraldLogger"
#: No control socket under ~/.gunicorn/ (gunicorn 25+ opens one by default).
control_socket_disable = True

if settings.TLS_CLIENT_CERT != "none" and not (settings.TLS_CERTFILE and settings.TLS_CA_CERTS):
    # Without a CA of its own, OpenSSL would take certificates from any CA the system trusts.
    print(
        f"settings: TLS_CLIENT_CERT={settings.TLS_CLIENT_CERT} needs TLS_CERTFILE and TLS_CA_CERTS",
        file=sys.stderr,
    )
    sys.exit(EXIT_INVALID)
if settings.TLS_CERTFILE:
    certfile = settings.TLS_CERTFILE
    keyfile = settings.TLS_KEYFILE or None
    ca_certs = settings.TLS_CA_CERTS or None
    cert_reqs = {
        "none": ssl.CERT_NONE,
        "optional": ssl.CERT_OPTIONAL,
        "required": ssl.CERT_REQUIRED,
    }[settings.TLS_CLIENT_CERT]

if settings.METRICS:
    os.environ.setdefault(
        "PROMETHEUS_MULTIPROC_DIR",
        os.path.join(os.path.abspath(settings.VAR_DIR), "metrics", "web"),
    )


def on_starting(server) -> None:
    """Before the workers start: an empty metrics directory (no counts of an earlier run)."""
    if settings.METRICS:
        from tasks.metrics import empty_directory

        empty_directory(os.environ["PROMETHEUS_MULTIPROC_DIR"])


def child_exit(server, worker) -> None:
    """A worker exited: its live gauges leave the scrapes (its counters stay in the sums)."""
    if settings.METRICS:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
