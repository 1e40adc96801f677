"""An SMTP sink for benchmarks, run as its own process: accepts every message and appends its
X-Herald-Message-Id (or "-") to a log file, one line per message.

    python -m bench.sink PORT LOGFILE
"""

from __future__ import annotations

import re
import signal
import sys
import threading

from aiosmtpd.controller import Controller

_ID = re.compile(rb"^X-Herald-Message-Id: *(\S+)", re.M | re.I)


class CountingSink:
    def __init__(self, path: str) -> None:
        self.file = open(path, "ab", buffering=0)  # noqa: SIM115  (open for the process's life)
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        found = _ID.search(envelope.original_content or b"")
        with self.lock:
            self.file.write((found.group(1) if found else b"-") + b"\n")
        return "250 OK"


def main() -> None:
    port, path = int(sys.argv[1]), sys.argv[2]
    controller = Controller(CountingSink(path), hostname="127.0.0.1", port=port)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
