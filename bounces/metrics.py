"""The bounce receiver's Prometheus metrics, served on BOUNCES_METRICS_PORT (as the other
processes serve theirs: ``METRICS_HOST``, ``METRICS_TOKEN``; see ``tasks.metrics``).

``herald_bounces_total{outcome}`` counts the delivery reports taken (after DATA), by what came
of each: ``failed`` (a message failed by it), ``transient`` (a delay report for a known
message: its last error, while it is still sent or delivered), ``delivered`` (a success report
moved it to delivered), ``unchanged`` (a report for a known message that changed nothing: a
repeat, or one after the message failed), ``ignored`` (a DSN that says nothing to apply:
relayed, expanded), ``dropped_not_dsn`` (not a delivery status report) and
``dropped_unknown_token`` (a forged or altered token, or a message gone: purged after
retention). ``herald_unsubscribes_total{outcome}`` counts the mails taken at unsubscribe
addresses: ``unsubscribed`` (email turned off), ``unchanged`` (it was off already) and
``dropped_unknown_token`` (forged, altered, or its message purged).
``herald_bounces_refused_total{reason}`` counts what the SMTP dialogue refused: ``recipient``
(neither a return path nor an unsubscribe address at BOUNCE_DOMAIN) and
``too_many_recipients``.
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

import prometheus_client
from prometheus_client import Counter

from tasks.metrics import metrics_server

OUTCOMES = (
    "failed",
    "transient",
    "delivered",
    "unchanged",
    "ignored",
    "dropped_not_dsn",
    "dropped_unknown_token",
)
REFUSALS = ("recipient", "too_many_recipients")
UNSUBSCRIBE_OUTCOMES = ("unsubscribed", "unchanged", "dropped_unknown_token")

BOUNCES = Counter(
    "herald_bounces", "Delivery reports the bounce receiver took, by outcome", ["outcome"]
)
UNSUBSCRIBES = Counter(
    "herald_unsubscribes",
    "Mails to unsubscribe addresses the receiver took, by outcome",
    ["outcome"],
)
REFUSED = Counter(
    "herald_bounces_refused", "SMTP commands the bounce receiver refused, by reason", ["reason"]
)
for _outcome in OUTCOMES:
    BOUNCES.labels(_outcome)
for _reason in REFUSALS:
    REFUSED.labels(_reason)
for _outcome in UNSUBSCRIBE_OUTCOMES:
    UNSUBSCRIBES.labels(_outcome)


def serve_metrics(port: int) -> WSGIServer:
    """Serve the metrics on ``port`` in a background thread; ``.shutdown()`` stops it."""
    server = metrics_server(port, lambda: prometheus_client.REGISTRY)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
