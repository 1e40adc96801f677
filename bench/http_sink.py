"""A webhook sink for benchmarks, run as its own process: answers every POST with 200 at once
(HTTP/1.1 keep-alive, empty body) and appends its Herald-Message-Id (or "-") to a log file, one
line per request.

It is a few lines of asyncio rather than ``http.server``: the sink shares the machine's cores
with Herald, and a thread per connection cost more CPU per request than the webhook channel
itself. It reads what Herald sends (a request line, headers, a Content-Length body) and nothing
more.

    python -m bench.http_sink PORT LOGFILE
"""

from __future__ import annotations

import asyncio
import signal
import sys

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


def handler(log):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length, message_id = 0, b"-"
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"herald-message-id":
                        message_id = value.strip() or b"-"
                await reader.readexactly(length)
                writer.write(OK)
                log.write(message_id + b"\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return handle


async def serve(port: int, path: str) -> None:
    with open(path, "ab", buffering=0) as log:
        server = await asyncio.start_server(handler(log), "127.0.0.1", port, backlog=512)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        async with server:
            await stop.wait()


def main() -> None:
    asyncio.run(serve(int(sys.argv[1]), sys.argv[2]))


if __name__ == "__main__":
    main()
