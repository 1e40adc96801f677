"""What the web process tells its operator: ``GET /metrics`` (Prometheus text, every gunicorn
worker's figures), a count and a duration of each request by method, URL rule and status, and
the sender as a log field of the request's lines.

``/metrics`` is outside ``/v1`` and its API keys: open when ``METRICS_TOKEN`` is empty (the
usual set-up, scraped over a private network), else only with ``Authorization: Bearer
<METRICS_TOKEN>`` (401 otherwise). Its labels are URL rules (``/v1/notifications/<uuid:...>``),
never a path, an id or anything of a person."""

from __future__ import annotations

from contextlib import ExitStack
from time import perf_counter

from flask import Flask, Response, g, request
from flask_smorest import abort

from settings import settings
from tasks import metrics
from tasks.logs import log_context

#: The endpoint name of ``GET /metrics``.
METRICS_ENDPOINT = "metrics"
#: The route label of a request that matched no URL rule (404, 405).
UNMATCHED = "unmatched"
_STARTED = "herald.started"


def init_app(app: Flask) -> None:
    """Time and count every request (first of the ``before_request`` hooks, so the guards'
    refusals count too) and serve ``/metrics``; nothing with ``METRICS=false``."""
    if not settings.METRICS:
        return
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_count)
    app.add_url_rule("/metrics", METRICS_ENDPOINT, scrape, methods=["GET"])


def _start() -> None:
    request.environ[_STARTED] = perf_counter()


def _count(response: Response) -> Response:
    started = request.environ.get(_STARTED)
    if started is not None:
        route = request.url_rule.rule if request.url_rule else UNMATCHED
        metrics.http_request(request.method, route, response.status_code, perf_counter() - started)
    return response


def scrape() -> Response:
    """The metrics of every gunicorn worker of this server (its multiprocess directory), or of
    this process when it runs alone."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    if not metrics.scrape_allowed(request.headers.get("Authorization")):
        abort(401, message="a valid metrics token is required")
    return Response(generate_latest(metrics.scrape_registry()), content_type=CONTENT_TYPE_LATEST)


def log_sender() -> None:
    """After authentication: the request's log lines carry its sender (``before_request``)."""
    sender = g.get("sender")
    if sender is not None:
        g.herald_log_fields = stack = ExitStack()
        stack.enter_context(log_context(sender=sender.id))


def end_log_fields(exception: BaseException | None = None) -> None:
    """``teardown_request``: the request's log fields end with it."""
    stack = g.pop("herald_log_fields", None)
    if stack is not None:
        stack.close()
