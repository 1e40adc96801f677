"""A real HTTP server on 127.0.0.1 for provider fakes: records every request and answers from a
script, or from the provider's own rules (``respond``) when the script is empty."""

from __future__ import annotations

import json
import ssl
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(self.body.decode()).items()}


@dataclass
class Response:
    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


class FakeProvider:
    """Subclass and override :meth:`respond` to speak a provider's API shape."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.script: list[Response] = []
        self._arrived = threading.Condition()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    self.command, self.path, dict(self.headers), self.rfile.read(length)
                )
                response = provider.script.pop(0) if provider.script else provider.respond(request)
                # Recorded before answering, so a caller that has its answer sees the request.
                with provider._arrived:
                    provider.requests.append(request)
                    provider._arrived.notify_all()
                payload = response.body
                if not isinstance(payload, bytes):
                    payload = json.dumps(payload).encode()
                self.send_response(response.status)
                self.send_header(
                    "Content-Type", response.headers.get("Content-Type", "application/json")
                )
                self.send_header("Content-Length", str(len(payload)))
                for name, value in response.headers.items():
                    if name != "Content-Type":
                        self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, *args) -> None:
                pass

        self._handler = Handler
        self.server_names: list[str | None] = []  # the SNI of each TLS connection
        self.listen()

    def listen(self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None):
        """Listen on ``host``:``port`` instead (before :meth:`start`), over TLS with ``tls``."""
        if getattr(self, "server", None) is not None:
            self.server.server_close()
        self.tls = tls
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _context: self.server_names.append(name)
        self.server = _Server((host, port), self._handler, tls)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        return self

    def respond(self, request: Request) -> Response:
        return Response()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def connections(self) -> int:
        """How many connections were accepted (whether or not a request came on them)."""
        return self.server.accepted

    def start(self) -> FakeProvider:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Request]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)


class _Server(ThreadingHTTPServer):
    """A threading HTTP server; with ``tls``, each connection's handshake runs in its own
    handler thread (a client that fails it disturbs no other)."""

    daemon_threads = True

    def __init__(self, address, handler, tls: ssl.SSLContext | None) -> None:
        self.tls = tls
        self.accepted = 0
        super().__init__(address, handler)

    def get_request(self):
        sock, address = super().get_request()
        self.accepted += 1
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ssl.SSLError | ConnectionError):
            super().handle_error(request, client_address)  # not a client refusing the cert
