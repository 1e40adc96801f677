"""gunicorn's settings for Herald's web process. gunicorn reads ``./gunicorn.conf.py`` by itself,
so the Procfile, ``herald run`` and anyone starting ``gunicorn`` in this directory get them;
options given on the command line win.

Threaded workers (``api.gunicorn_worker.HeraldWorker``, gunicorn's gthread made to face clients
directly): idle or half-sent connections wait in the worker's poller instead of holding a
thread, so slow clients do not stall the API, without a proxy in front.
"""

import os

from settings import settings

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
#: No control socket under ~/.gunicorn/ (gunicorn 25+ opens one by default).
control_socket_disable = True
