"""A TCP forwarder for benchmarks, run as its own process: relays every connection accepted on
each LISTEN address to its TARGET, byte for byte, both ways, until the sides close.

    python -m bench.forward LISTEN_HOST:PORT=TARGET_HOST:PORT [...]

``bench.scaleout`` uses it to let processes in a network namespace reach PostgreSQL, RabbitMQ,
Redis and the SMTP sink, which listen on 127.0.0.1 of the root namespace only: the services see
a loopback peer, so their loopback-only trust (``pg_hba.conf``, RabbitMQ's ``guest``) holds.
What ``socat TCP-LISTEN:…,fork,reuseaddr TCP:…`` does, without the dependency: a thread per
direction, moving the bytes in the kernel (``os.splice`` through a pipe; Linux only, as network
namespaces are).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading

CHUNK = 1 << 16


def address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def _nodelay(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Relay:
    """One forwarded connection: two pumps; the second to end closes both sockets."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.sockets = (client, upstream)
        self.running = 2
        self.lock = threading.Lock()
        for source, target in ((client, upstream), (upstream, client)):
            threading.Thread(target=self.pump, args=(source, target), daemon=True).start()

    def pump(self, source: socket.socket, target: socket.socket) -> None:
        read_end, write_end = os.pipe()
        try:
            while True:
                moved = os.splice(source.fileno(), write_end, CHUNK)
                if not moved:  # the source closed its side: pass the close on
                    target.shutdown(socket.SHUT_WR)
                    break
                while moved:
                    moved -= os.splice(read_end, target.fileno(), moved)
        except OSError:  # a reset or a dead peer: end the whole connection
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        finally:
            os.close(read_end)
            os.close(write_end)
            with self.lock:
                self.running -= 1
                last = self.running == 0
            if last:
                for sock in self.sockets:
                    sock.close()


def serve(server: socket.socket, target: tuple[str, int]) -> None:
    while True:
        client, _ = server.accept()
        try:
            upstream = socket.create_connection(target, timeout=10)
        except OSError:
            client.close()
            continue
        upstream.settimeout(None)
        _nodelay(client)
        _nodelay(upstream)
        Relay(client, upstream)


def main(argv: list[str]) -> None:
    if not argv or not all("=" in pair for pair in argv):
        sys.exit("usage: python -m bench.forward LISTEN_HOST:PORT=TARGET_HOST:PORT [...]")
    for pair in argv:
        listen, target = pair.split("=", 1)
        # Bound before "ready" is printed: the caller may connect from then on.
        server = socket.create_server(address(listen), backlog=512)
        threading.Thread(target=serve, args=(server, address(target)), daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()


if __name__ == "__main__":
    main(sys.argv[1:])
