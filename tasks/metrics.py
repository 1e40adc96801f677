"""Herald's Prometheus metrics: every metric object, what records into them, and how a process
serves them (prometheus-client). The README's "Metrics" table lists them.

Nothing is collected until a process entry point calls :func:`setup_metrics` (the web app, the
worker with :func:`use_worker_metrics`, the scheduler); until then, and with ``METRICS=false``,
the recording functions do nothing. Labels are bounded sets (channels, outcomes, failure
reasons, URL rules, job names), never an id, address or path.

A process with several OS processes (gunicorn's workers, Dramatiq's worker processes) uses
prometheus-client's multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR`` names a directory of
per-process files, which must be set before ``prometheus_client`` is first imported (this
module imports it only inside functions) and emptied when the server starts; a scrape reads
all the files.
"""

from __future__ import annotations

import glob
import hmac
import json
import logging
import os
import shutil
import socketserver
import sys
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from models.base import utcnow
from settings import settings

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Seconds: a provider call (connect, hand over, answer).
SEND_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
#: Seconds from a message's acceptance to its send (retries and schedules make it long).
ACCEPT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)
#: Seconds: one run of a scheduler job.
JOB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
#: Request methods kept as a label; any other is ``other``.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HeraldMetrics:
    """The metric objects, created once per process (registered in ``registry``)."""

    def __init__(self, registry: CollectorRegistry, scheduler: bool = False) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        def counter(name: str, meaning: str, labels: Iterable[str]) -> Counter:
            return Counter(name, meaning, list(labels), registry=registry)

        self.http_requests = counter(
            "herald_http_requests_total",
            "HTTP requests answered, by method, URL rule and status",
            ("method", "route", "status"),
        )
        self.http_duration = Histogram(
            "herald_http_request_duration_seconds",
            "Time to answer an HTTP request, by method, URL rule and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.deliveries = counter(
            "herald_deliveries_total",
            "Delivery attempts recorded, by channel, outcome and failure reason",
            ("channel", "outcome", "reason"),
        )
        self.send_duration = Histogram(
            "herald_send_duration_seconds",
            "Time of the provider call of a send, by channel",
            ["channel"],
            buckets=SEND_BUCKETS,
            registry=registry,
        )
        self.accept_to_sent = Histogram(
            "herald_accept_to_sent_seconds",
            "Time from a message's acceptance to its provider taking it, by channel",
            ["channel"],
            buckets=ACCEPT_BUCKETS,
            registry=registry,
        )
        self.receipts = counter(
            "herald_receipts_total",
            "Provider receipts and bounces taken in, by channel, status and result",
            ("channel", "status", "result"),
        )
        self.callbacks = counter(
            "herald_callbacks_total", "Delivery callback jobs to senders, by outcome", ("outcome",)
        )
        if not scheduler:
            return
        self.job_runs = counter(
            "herald_scheduler_job_runs_total",
            "Scheduler job runs by this process as leader, by job and outcome",
            ("job", "outcome"),
        )
        self.job_duration = Histogram(
            "herald_scheduler_job_duration_seconds",
            "Time of a scheduler job run, by job",
            ["job"],
            buckets=JOB_BUCKETS,
            registry=registry,
        )
        self.job_items = counter(
            "herald_scheduler_job_items_total",
            "What scheduler job runs handled (messages, callbacks, rows), by job and item",
            ("job", "item"),
        )
        self.leader = Gauge(
            "herald_scheduler_leader",
            "1 while this scheduler is the leader, 0 standby",
            registry=registry,
        )
        self.messages = Gauge(
            "herald_messages",
            "Messages in a not-final state at the last sample, at most METRICS_COUNT_CAP each",
            ["state"],
            registry=registry,
        )
        self.sampled_at = Gauge(
            "herald_messages_sampled_timestamp_seconds",
            "When herald_messages was last sampled (Unix time)",
            registry=registry,
        )


_metrics: HeraldMetrics | None = None


def setup_metrics(scheduler: bool = False) -> HeraldMetrics | None:
    """Create this process's metrics (once; later calls return them) unless ``METRICS`` is
    off. ``scheduler``: with the scheduler's own. In multiprocess mode (the environment names
    :data:`MULTIPROC_ENV`), ``prometheus_client`` must not have been imported before."""
    global _metrics
    if not settings.METRICS:
        return None
    if _metrics is None:
        _refuse_late_multiprocess()
        from prometheus_client import REGISTRY

        _metrics = HeraldMetrics(REGISTRY, scheduler=scheduler)
    return _metrics


def _refuse_late_multiprocess() -> None:
    if MULTIPROC_ENV not in os.environ or "prometheus_client" not in sys.modules:
        return
    from prometheus_client import values

    if values.ValueClass is values.MutexValue:
        raise RuntimeError(
            f"prometheus_client was imported before {MULTIPROC_ENV} was set: this process's "
            "metrics would not reach its scrapes"
        )


def collecting() -> HeraldMetrics | None:
    """This process's metrics, or None when it collects none."""
    return _metrics


# --- recording -----------------------------------------------------------------------------
def http_request(method: str, route: str, status: int, seconds: float) -> None:
    if _metrics is None:
        return
    labels = (method if method in HTTP_METHODS else "other", route, str(status))
    _metrics.http_requests.labels(*labels).inc()
    _metrics.http_duration.labels(*labels).observe(seconds)


def delivery(channel: str, outcome: str, reason: str | None) -> None:
    """A recorded attempt (``outcome``: an ``AttemptOutcome``; ``reason`` a ``FailureReason``)."""
    if _metrics is not None:
        _metrics.deliveries.labels(channel, outcome, reason or "").inc()


def send_took(channel: str, seconds: float) -> None:
    if _metrics is not None:
        _metrics.send_duration.labels(channel).observe(seconds)


def sent_after_accept(channel: str, created_at: datetime) -> None:
    if _metrics is not None:
        elapsed = (utcnow() - created_at).total_seconds()
        _metrics.accept_to_sent.labels(channel).observe(max(0.0, elapsed))


def receipt(channel: str, status: str, result: str) -> None:
    """A receipt taken in: ``result`` is ``applied``, ``unchanged``, ``kept_early`` (no message
    known by its provider id yet; applied later) or ``unknown_message``."""
    if _metrics is not None:
        _metrics.receipts.labels(channel, status, result).inc()


def callback(outcome: str) -> None:
    """A callback job's end: ``delivered``, ``retried``, ``given_up`` or ``dropped``."""
    if _metrics is not None:
        _metrics.callbacks.labels(outcome).inc()


def job_ran(job: str, failed: bool, seconds: float, result: Any) -> None:
    """A scheduler job's run and what it handled (an int, or a dict of named counts)."""
    if _metrics is None or not hasattr(_metrics, "job_runs"):
        return
    _metrics.job_runs.labels(job, "error" if failed else "ok").inc()
    _metrics.job_duration.labels(job).observe(seconds)
    counts = result if isinstance(result, dict) else {"items": result}
    for item, count in counts.items():
        if isinstance(count, int) and count > 0:
            _metrics.job_items.labels(job, item).inc(count)


def leadership(leader: bool) -> None:
    if _metrics is not None and hasattr(_metrics, "leader"):
        _metrics.leader.set(1 if leader else 0)
        if not leader:
            _metrics.messages.clear()  # a standby reports no sample (the leader does)


def sampled(counts: dict[str, int]) -> None:
    if _metrics is not None and hasattr(_metrics, "messages"):
        for state, count in counts.items():
            _metrics.messages.labels(state).set(count)
        _metrics.sampled_at.set_to_current_time()


# --- serving -------------------------------------------------------------------------------
def scrape_registry(path: str | None = None) -> CollectorRegistry:
    """What a scrape reads: every process's files in multiprocess mode (``path``, default the
    environment's directory), else this process's registry."""
    import prometheus_client
    from prometheus_client import multiprocess

    path = path or os.environ.get(MULTIPROC_ENV)
    if not path:
        return prometheus_client.REGISTRY
    registry = prometheus_client.CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)
    return registry


def scrape_allowed(authorization: str | None) -> bool:
    """Whether a scrape with this ``Authorization`` header may read the metrics: always when
    ``METRICS_TOKEN`` is empty, else only with ``Bearer <METRICS_TOKEN>``."""
    if not settings.METRICS_TOKEN:
        return True
    expected = f"Bearer {settings.METRICS_TOKEN}".encode()
    return hmac.compare_digest((authorization or "").encode(), expected)


UNAUTHORIZED = json.dumps(
    {"code": 401, "status": "Unauthorized", "message": "a valid metrics token is required"}
).encode()


def metrics_app(registry: Callable[[], CollectorRegistry]) -> Callable:
    """A WSGI app answering every GET with the metrics of ``registry()`` (guarded by
    :func:`scrape_allowed`)."""
    from prometheus_client import make_wsgi_app

    def app(environ, start_response):
        if not scrape_allowed(environ.get("HTTP_AUTHORIZATION")):
            headers = [("Content-Type", "application/json"), ("WWW-Authenticate", "Bearer")]
            start_response("401 Unauthorized", headers)
            return [UNAUTHORIZED]
        return make_wsgi_app(registry())(environ, start_response)

    return app


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("metrics scrape: " + format, *args)


def metrics_server(port: int, registry: Callable[[], CollectorRegistry]) -> WSGIServer:
    """An HTTP server for :func:`metrics_app` on ``METRICS_HOST`` (empty: ``HOST``) and
    ``port``, not yet serving (call ``serve_forever``)."""
    host = settings.METRICS_HOST or settings.HOST
    return make_server(
        host, port, metrics_app(registry), _ThreadingServer, handler_class=_QuietHandler
    )


def empty_directory(path: str) -> None:
    """Make ``path`` an empty metrics directory (its ``*.db`` files removed): what a server
    does when it starts, so that counters of an earlier run are not added to this one's."""
    os.makedirs(path, exist_ok=True)
    for file in glob.glob(os.path.join(path, "*.db")):
        os.remove(file)


def metrics_directory(process: str) -> str:
    """``<VAR_DIR>/metrics/<process>``, absolute."""
    return os.path.abspath(os.path.join(settings.VAR_DIR, "metrics", process))


# --- the worker ----------------------------------------------------------------------------
def worker_run_directory() -> str:
    """The metrics directory of this Dramatiq run: one per supervisor process (the parent of
    its worker processes and of the process serving their metrics), so each run starts empty."""
    return os.path.join(metrics_directory("worker"), str(os.getppid()))


def forget_finished_runs() -> None:
    """Remove the metrics directories of Dramatiq runs whose supervisor is gone."""
    for entry in glob.glob(os.path.join(metrics_directory("worker"), "*")):
        name = os.path.basename(entry)
        if name.isdigit() and not _alive(int(name)):
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def serve_worker_metrics() -> int:
    """The Dramatiq fork process serving every worker process's metrics on
    ``WORKER_METRICS_PORT`` (the Prometheus middleware's exposition server, on Herald's
    directory, host and token)."""
    from tasks.logs import setup_logging

    setup_logging()
    path = worker_run_directory()
    try:
        server = metrics_server(settings.WORKER_METRICS_PORT, lambda: scrape_registry(path))
    except OSError as error:
        logger.error(
            "worker metrics: cannot listen on port %d (%s); no metrics are served",
            settings.WORKER_METRICS_PORT,
            error,
        )
        return 1
    logger.info("worker metrics on port %d", settings.WORKER_METRICS_PORT)
    server.serve_forever()
    return 0


def use_worker_metrics(broker) -> None:
    """In a Dramatiq worker process (its entry point, before the process boots): collect into
    this run's directory (:func:`worker_run_directory`), with Dramatiq's Prometheus middleware
    on ``broker`` (its ``dramatiq_*`` metrics) serving them all from a fork process
    (:func:`serve_worker_metrics`). Nothing with ``METRICS=false`` or ``WORKER_METRICS_PORT=0``."""
    if not settings.METRICS or not settings.WORKER_METRICS_PORT:
        return
    forget_finished_runs()
    path = worker_run_directory()
    os.makedirs(path, exist_ok=True)
    os.environ["dramatiq_prom_db"] = os.environ[MULTIPROC_ENV] = path  # noqa: SIM112 (Dramatiq's name)
    from dramatiq.middleware import prometheus

    prometheus.DB_PATH = path  # read from dramatiq_prom_db when first imported; this run's

    class HeraldPrometheus(prometheus.Prometheus):
        """Dramatiq's middleware, its metrics served by :func:`serve_worker_metrics`."""

        @property
        def forks(self):
            return [serve_worker_metrics]

    broker.add_middleware(HeraldPrometheus())
    setup_metrics()
