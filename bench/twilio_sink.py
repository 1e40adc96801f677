"""An SMS gateway sink for benchmarks, run as its own process, speaking Twilio's Messages API:
every ``POST /2010-04-01/Accounts/<sid>/Messages.json`` is answered 201 with a Message resource
(its ``sid``). When the send names a ``StatusCallback``, the sink posts a "delivered" status
callback there, form-encoded and signed with ``X-Twilio-Signature`` as Twilio does, from a few
keep-alive connections; a callback Herald answers ``unmatched`` (the worker had not recorded
the send yet) is posted again a moment later. Each callback answered 200 adds a line to the log.

    python -m bench.twilio_sink PORT AUTH_TOKEN LOGFILE
"""

from __future__ import annotations

import http.client
import json
import queue
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

from channels.sms import twilio_signature

CALLBACK_THREADS = 4
RETRY_SECONDS = 0.2


class Gateway(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    callbacks: queue.Queue

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        form = dict(parse_qsl(body.decode()))
        sid = "SM" + secrets.token_hex(16)
        answer = json.dumps(
            {"sid": sid, "status": "queued", "num_segments": "1", "to": form.get("To")}
        ).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
        if url := form.get("StatusCallback"):
            status = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": "delivered",
                      "To": form.get("To", ""), "From": form.get("From", "")}  # fmt: skip
            self.callbacks.put((url, status))

    def log_message(self, format, *args) -> None:  # quiet
        pass


def post_callbacks(callbacks: queue.Queue, token: str, log) -> None:
    """Post each status callback over one keep-alive connection per thread."""
    connection: http.client.HTTPConnection | None = None
    while True:
        url, form = callbacks.get()
        parts = urlsplit(url)
        if connection is None:
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": twilio_signature(token, url, form.items()),
        }
        try:
            connection.request("POST", parts.path, body=urlencode(form), headers=headers)
            response = connection.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException):
            connection.close()
            connection = None
            answer, response = b"", None
        if response is not None and response.status == 200 and _matched(answer):
            log.write(form["MessageSid"].encode() + b"\n")
            continue
        time.sleep(RETRY_SECONDS)
        callbacks.put((url, form))


def _matched(answer: bytes) -> bool:
    try:
        return json.loads(answer).get("matched") == 1
    except ValueError:
        return False


def main() -> None:
    port, token, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    callbacks: queue.Queue = queue.Queue()
    Gateway.callbacks = callbacks
    with open(path, "ab", buffering=0) as log:
        for _ in range(CALLBACK_THREADS):
            threading.Thread(
                target=post_callbacks, args=(callbacks, token, log), daemon=True
            ).start()
        server = ThreadingHTTPServer(("127.0.0.1", port), Gateway)
        server.daemon_threads = True
        server.serve_forever()


if __name__ == "__main__":
    main()
