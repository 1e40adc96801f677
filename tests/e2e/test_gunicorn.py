"""The web process as the Procfile starts it (gunicorn with ./gunicorn.conf.py), facing
clients directly: idle and half-sent connections do not stall it, gunicorn's own error pages
are JSON in the error contract, and nothing is written under ~/.gunicorn/."""

import json
import os
import socket
import sys
import urllib.request
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from dev.embedded_redis import free_port
from dev.run import procfile
from tests.support import started_with_output, stopped_group, wait_until

ROOT = Path(__file__).resolve().parents[2]
#: More connections than the web process has threads (WEB_CONCURRENCY 2 × 8 threads).
SLOW_CLIENTS = 40


@pytest.fixture(scope="module")
def web(tmp_path_factory, database, redis_url):
    """The Procfile's web process on a free port, on the tests' database and Redis; its base
    URL, the home directory it ran with, and its output (lines)."""
    port, home = free_port(), tmp_path_factory.mktemp("home")
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    env.update(
        HOME=str(home),
        HOST="127.0.0.1",
        PORT=str(port),
        WEB_CONCURRENCY="2",
        DATABASE_URL=database.herald_url,
        REDIS_URL=redis_url,
        BROKER_URL="",
        PYTHONPATH=str(ROOT),
        PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
    )
    process, output, reader = started_with_output(
        procfile(str(ROOT / "Procfile"))["web"], shell=True, cwd=ROOT, env=env
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: health(base, timeout=2) == 200, timeout=60, interval=0.2)
        yield base, home, output
    finally:
        stopped_group(process, reader)


def health(base: str, timeout: float) -> int | None:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


@contextmanager
def slow_clients(base: str, first_bytes: bytes):
    """SLOW_CLIENTS connections that send ``first_bytes`` and then nothing more (nor read,
    nor close)."""
    port = int(base.rsplit(":", 1)[1])
    with ExitStack() as stack:
        for _ in range(SLOW_CLIENTS):
            connection = stack.enter_context(socket.create_connection(("127.0.0.1", port)))
            connection.sendall(first_bytes)
        yield


def raw_request(base: str, data: bytes) -> tuple[int, dict, dict]:
    """Send ``data`` as is; the status, headers and JSON body of the answer."""
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(data)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, body = answer.split(b"\r\n\r\n", 1)
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, json.loads(body)


@pytest.mark.e2e
@pytest.mark.parametrize(
    "first_bytes",
    [
        b"",
        b"POST /v1/noti",
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n",
        b"POST /v1/notifications HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 99\r\n\r\n{",
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    ],
    ids=[
        "idle",
        "half-sent request line",
        "half-sent head",
        "half-sent body",
        "answered, never closed",
    ],
)
def test_slow_clients_do_not_stall_the_api(web, first_bytes):
    base, _, _ = web
    with slow_clients(base, first_bytes):
        for _ in range(3):
            assert health(base, timeout=10) == 200


@pytest.mark.e2e
def test_gunicorn_error_pages_are_in_the_error_contract(web):
    base, _, _ = web
    status, headers, body = raw_request(base, b"NOT HTTP AT ALL\r\n\r\n")
    assert (status, headers["Content-Type"]) == (400, "application/json")
    assert body["code"] == 400 and body["status"] == "Bad Request" and body["message"]

    big_header = b"X-Padding: " + b"a" * 10_000 + b"\r\n"
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + big_header + b"\r\n"
    status, headers, body = raw_request(base, request)
    assert (status, headers["Content-Type"]) == (431, "application/json")
    assert (body["code"], body["status"]) == (431, "Request Header Fields Too Large")


@pytest.mark.e2e
def test_the_web_process_logs_access_and_keeps_no_control_socket(web):
    base, home, output = web
    assert health(base, timeout=10) == 200
    wait_until(lambda: any('"GET /healthz HTTP/1.1" 200' in line for line in output))
    assert not (home / ".gunicorn").exists()


@pytest.mark.e2e
def test_the_access_log_leaves_out_query_strings(web):
    """A history search names addresses in its query; the access line keeps the path only."""
    base, _, output = web

    def logged() -> int:
        return sum('"GET /healthz HTTP/1.1" 200' in line for line in output)

    before = logged()
    with urllib.request.urlopen(f"{base}/healthz?recipient=ion%40example.md", timeout=10):
        pass
    wait_until(lambda: logged() > before)
    assert not [line for line in output if "ion%40example.md" in line or "ion@example" in line]
