"""A webhook sink for benchmarks, run as its own process: answers every POST with 200 at once
(keep-alive, empty body) and appends its Herald-Message-Id (or "-") to a log file, one line per
request.

    python -m bench.http_sink PORT LOGFILE
"""

from __future__ import annotations

import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class CountingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a provider's endpoint would
    log_lock = threading.Lock()
    log = None  # set by main()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        line = (self.headers.get("Herald-Message-Id") or "-").encode() + b"\n"
        with self.log_lock:
            self.log.write(line)

    def log_message(self, format: str, *args) -> None:  # noqa: A002  (the base class's name)
        pass


def main() -> None:
    port, path = int(sys.argv[1]), sys.argv[2]
    CountingHandler.log = open(path, "ab", buffering=0)  # noqa: SIM115  (open for the process's life)
    server = ThreadingHTTPServer(("127.0.0.1", port), CountingHandler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()


if __name__ == "__main__":
    main()
