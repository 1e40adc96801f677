"""The web process's gunicorn worker: gunicorn's threaded (gthread) worker, made to face
clients directly, without a buffering proxy in front.

gthread's threads wait on slow clients: a thread is given to a connection as soon as its first
bytes arrive and blocks until the request is in, and its main loop waits up to 2 s for each
client it closes on to close too. A few dozen idle, half-sent or never-closed connections
(slowloris) stalled the whole process. Here:

- A request is read without blocking, in the main loop's poller: its head, and its body up to
  :data:`BUFFERED_BODY_BYTES` (a larger body is read by the thread, which gives up on a client
  silent for :data:`BODY_IDLE_SECONDS`: a 400, never a body cut short). Until then the
  connection holds no thread; it is closed after ``keepalive`` seconds of silence, or when the
  request is not in within :data:`REQUEST_SECONDS`.
- A body the application did not read is drained only if it has already arrived; otherwise
  the connection is closed rather than kept.
- A connection being closed waits for the client's side in the poller, at most
  :data:`LINGER_SECONDS`, not in the main loop.
- gunicorn's own error pages (a bad request line, headers too large: answered before Flask
  sees the request) are JSON in Herald's error contract.

TLS served by gunicorn itself, HTTP/2 and the uWSGI protocol keep gthread's reading. With TLS,
the client's certificate (``getpeercert(binary_form=True)``, when it presented one) reaches the
application in the WSGI environ as ``herald.peer_certificate`` (DER bytes), where
``api.client_certificate`` reads it. This leans
on gthread's internals (its connection object, the poller's deferral, its hooks for finishing a
request), hence the version bound on gunicorn in setup.cfg.
"""

from __future__ import annotations

import contextlib
import json
import re
import select
import selectors
import socket
import ssl
from collections import deque
from functools import partial
from time import monotonic

from gunicorn import glogging, util
from gunicorn.workers.gthread import _DEFER, ThreadWorker
from werkzeug.exceptions import ClientDisconnected

from api.client_certificate import PEER_CERTIFICATE
from api.errors import DEFAULT_MESSAGES, ApiError
from tasks.logs import setup_logging

#: Longest a client may take to send a request (its head, and its body when buffered).
REQUEST_SECONDS = 10.0
#: Bodies up to this size are read before a thread is given the request.
BUFFERED_BODY_BYTES = 64 * 1024
#: Longest a client may stay silent while a thread reads a larger body.
BODY_IDLE_SECONDS = 10.0
#: Longest a closing connection waits for the client to close its side (gunicorn's figure).
LINGER_SECONDS = 2.0
#: How long a body the application left unread may take to be drained.
DRAIN_SECONDS = 0.05
#: A head not complete at this size is left to gunicorn's parser (and its limits).
HEAD_BUFFER_BYTES = 64 * 1024
#: The empty line after the headers (also with bare LFs, which gunicorn's parser refuses).
HEAD_END = re.compile(rb"\r?\n\r?\n")
CONTENT_LENGTH = re.compile(rb"\ncontent-length[ \t]*:[ \t]*(\d{1,12})[ \t]*\r?\n", re.I)
EXPECTS_CONTINUE = re.compile(rb"\nexpect[ \t]*:[ \t]*100-continue", re.I)


class HeraldWorker(ThreadWorker):
    """gthread, not waiting on slow clients, with JSON error pages (see the module)."""

    def init_process(self) -> None:
        util.write_error = write_json_error  # gunicorn has no hook for its error pages
        self.lingering: deque = deque()  # connections being closed, oldest first
        self.reads_requests = (
            not self.cfg.is_ssl
            and self.cfg.http2_cleartext == "off"
            and self.cfg.protocol == "http"
        )
        super().init_process()

    def load_wsgi(self) -> None:
        """The application; with TLS, given the client's certificate in its environ."""
        super().load_wsgi()
        application = getattr(self, "wsgi", None)  # unset when loading it failed
        if self.cfg.is_ssl and application is not None:
            self.wsgi = with_peer_certificate(application)

    def handle(self, conn):
        """Serve ``conn``'s next request once it has arrived; until then, give the connection
        back to the poller (or close it, if the client is gone or too slow)."""
        if not self.reads_requests or conn.is_http2:
            return super().handle(conn)
        request = _read_request(conn)
        if request is None:
            return _DEFER if self.alive else False
        if request is False:
            return False
        conn.sock.setblocking(True)
        if not conn.initialized:
            conn.init()
            _bound_body_reads(conn.parser.unreader)
        conn.parser.unreader.unread(request)
        return super().handle(conn)

    def _keepalive_after(self, conn, keepalive):
        """Keep the connection only if what is left of the body has already arrived."""
        if not keepalive:
            return False
        return bool(conn.parser.finish_body(deadline=monotonic() + DRAIN_SECONDS))

    def finish_request(self, conn, fs) -> None:
        """As gthread's, except that a connection it would close lingers in the poller."""
        if fs.cancelled() or fs.exception() is not None or fs.result() is not False:
            super().finish_request(conn, fs)
            return
        self.nr_conns -= 1
        self._linger(conn)

    def murder_pending(self) -> None:
        """As gthread's, and close the lingering connections whose time is up."""
        super().murder_pending()
        now = monotonic()
        while self.lingering and self.lingering[0].timeout <= now:
            self._close(self.lingering.popleft())

    def _linger(self, conn) -> None:
        """Half-close ``conn`` (so that the answer is not cut short by a reset); close it when
        the client does, or after LINGER_SECONDS."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
            conn.sock.setblocking(False)
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._drain, conn))
        except (OSError, ValueError):
            util.close(conn.sock)
            return
        conn.timeout = monotonic() + LINGER_SECONDS
        self.lingering.append(conn)

    def _drain(self, conn, sock) -> None:
        try:
            if sock.recv(65536):
                return
        except BlockingIOError:
            return
        except OSError:
            pass
        self.lingering.remove(conn)
        self._close(conn)

    def _close(self, conn) -> None:
        with contextlib.suppress(OSError, KeyError, ValueError):  # not registered (any more)
            self.poller.unregister(conn.sock)
        util.close(conn.sock)


def with_peer_certificate(application):
    """``application`` (WSGI), its environ given the TLS peer's certificate (DER bytes) as
    PEER_CERTIFICATE when the client presented one (gunicorn hands it the connection's
    socket as ``gunicorn.socket``)."""

    def served(environ, start_response):
        sock = environ.get("gunicorn.socket")
        environ.pop(PEER_CERTIFICATE, None)
        if isinstance(sock, ssl.SSLSocket):
            with contextlib.suppress(ValueError, OSError):  # no handshake done, or closed
                if der := sock.getpeercert(binary_form=True):
                    environ[PEER_CERTIFICATE] = der
        return application(environ, start_response)

    return served


def _read_request(conn) -> bytes | bool | None:
    """What ``conn`` has sent of its next request, once its head and buffered body are in;
    ``None`` while they are not; ``False`` when the client has gone or took longer than
    REQUEST_SECONDS."""
    pending = conn.__dict__.setdefault("herald_request", bytearray())
    if not pending:
        conn.herald_deadline = monotonic() + REQUEST_SECONDS
        if conn.parser is not None:  # a kept-alive connection: read-ahead of this request
            pending += conn.parser.unreader.take_buffered()
    while not _arrived(pending):
        try:
            chunk = conn.sock.recv(65536, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            break
        except OSError:
            return False
        if not chunk:
            return False
        pending += chunk
    if _arrived(pending):
        del conn.herald_request
        return bytes(pending)
    return None if monotonic() < conn.herald_deadline else False


def _arrived(pending: bytearray) -> bool:
    """Whether ``pending`` holds a whole head and the body to buffer (Content-Length, up to
    BUFFERED_BODY_BYTES; none for a client waiting for 100 Continue). Only that wait is
    decided here: gunicorn's parser reads the request itself."""
    end = HEAD_END.search(pending, 2 if pending.startswith(b"\r\n") else 0)  # RFC 9112 2.2
    if end is None:
        return len(pending) >= HEAD_BUFFER_BYTES
    head = b"\n" + pending[: end.start()]
    length = CONTENT_LENGTH.search(head)
    if length is None or EXPECTS_CONTINUE.search(head):
        return True
    return len(pending) >= end.end() + min(int(length.group(1)), BUFFERED_BODY_BYTES)


class ClientStalled(ApiError, ClientDisconnected, TimeoutError):
    """A client went silent mid-body: to Flask, werkzeug's ClientDisconnected (a 400, and the
    body is never seen cut short); to gunicorn, a timeout (the connection is not kept)."""


def _bound_body_reads(unreader) -> None:
    """Make ``unreader`` (gunicorn's reader of one connection) give up on a client that has
    sent nothing for BODY_IDLE_SECONDS (or gunicorn's own timeout, if shorter), instead of
    waiting for it forever."""
    read = unreader.chunk
    stalled: list[bool] = []

    def chunk(size_hint=None):
        timeout = unreader.sock.gettimeout()
        wait = BODY_IDLE_SECONDS if timeout is None else min(timeout, BODY_IDLE_SECONDS)
        poll = select.poll()
        poll.register(unreader.sock, select.POLLIN)
        if stalled or not poll.poll(wait * 1000):
            stalled.append(True)
            raise ClientStalled(f"no data from the client for {wait:g} s")
        return read(size_hint)

    unreader.chunk = chunk


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's error page (``gunicorn.util.write_error``, same arguments), as
    ``{"code", "status", "message"}``."""
    body = json.dumps(
        {
            "code": status_int,
            "status": reason,
            "message": mesg or DEFAULT_MESSAGES.get(status_int) or reason,
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


class HeraldLogger(glogging.Logger):
    """gunicorn's logger (its error and access logs), its lines in ``LOG_FORMAT`` (JSON objects
    with ``LOG_FORMAT=json``), set up again whenever gunicorn sets up its logging."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            if log.handlers:
                setup_logging(log)
