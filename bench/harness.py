"""What every benchmark starts on 127.0.0.1 and cleans up: Redis, a database, an SMTP sink,
Herald's web (gunicorn) and worker (dramatiq) processes, and a load generator."""

from __future__ import annotations

import http.client
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def wait_for(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout}s")
        time.sleep(interval)


class Stack:
    """A throwaway Herald: ``with Stack() as stack:`` gives ``base_url``, ``key``, ``env``."""

    def __init__(
        self,
        web_workers: int = 2,
        worker_processes: int = 1,
        worker_threads: int = 8,
        env: dict[str, str] | None = None,
    ):
        self.extra_env = env or {}
        self.dir = tempfile.mkdtemp(prefix="herald-bench-")
        self.web_workers, self.worker_processes = web_workers, worker_processes
        self.worker_threads = worker_threads
        self.processes: dict[str, subprocess.Popen] = {}
        self.db = None

    def __enter__(self) -> Stack:
        from dev.embedded_redis import EmbeddedRedis, free_port

        self.redis = EmbeddedRedis(directory=self.dir).start()
        self.port, self.smtp_port = free_port(), free_port()
        self.sink_log = os.path.join(self.dir, "sink.log")
        Path(self.sink_log).touch()
        self.env = dict(
            os.environ,
            REDIS_URL=self.redis.url,
            BROKER_URL="",
            DATABASE_URL=os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{self.dir}/herald.db",
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(self.smtp_port),
            VAR_DIR=self.dir,
            ALLOW_PRIVATE_URLS="true",
            LOG_LEVEL="WARNING",
            PYTHONPATH=str(ROOT),
            WORKER_METRICS_PORT=str(free_port()),
            SCHEDULER_METRICS_PORT=str(free_port()),
            **self.extra_env,
        )
        self._reset_database()
        self.key = self._run("senders", "create", f"bench-{os.getpid()}", "--admin").strip()
        self.start("sink", [sys.executable, "-m", "bench.sink", str(self.smtp_port), self.sink_log])
        self.start_web()
        self.start_workers()
        self.base_url = f"http://127.0.0.1:{self.port}"
        wait_for(self._healthy, 60, what="healthz")
        return self

    def __exit__(self, *exc) -> None:
        for name in list(self.processes):
            self.stop(name)
        self.redis.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- processes ---------------------------------------------------------------------
    def start(self, name: str, command: list[str], env: dict | None = None) -> None:
        self.processes[name] = subprocess.Popen(
            command, cwd=ROOT, env=env or self.env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.processes.pop(name, None)
        if process and process.poll() is None:
            os.killpg(process.pid, sig)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    def start_web(self, app: str = "api.app:create_app()", name: str = "web") -> None:
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        bind = f"127.0.0.1:{self.port}"
        self.start(name, [gunicorn, "--bind", bind, "--workers", str(self.web_workers), app])

    def start_workers(self, module: str = "tasks.worker", name: str = "worker") -> None:
        dramatiq = str(Path(sys.executable).with_name("dramatiq"))
        args = ["--processes", str(self.worker_processes), "--threads", str(self.worker_threads)]
        self.start(name, [dramatiq, module, *args])

    def _run(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "cli", *args], cwd=ROOT, env=self.env,
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return result.stdout

    def _reset_database(self) -> None:
        code = (
            "from models.db import open_database; from models import ALL_MODELS, MIGRATIONS_TABLE;"
            "db = open_database(); pg = not db.__class__.__name__.startswith('Sqlite');"
            "[db.execute_sql(f'DROP TABLE IF EXISTS {t}' + (' CASCADE' if pg else ''))"
            " for t in [m._meta.table_name for m in reversed(ALL_MODELS)] + [MIGRATIONS_TABLE]]"
        )
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=self.env, check=True)
        self._run("db", "upgrade")

    @property
    def backend(self) -> str:
        """The database's kind, as saved with the figures: ``sqlite`` or ``postgresql``."""
        return self.env["DATABASE_URL"].split(":", 1)[0]

    def _healthy(self) -> bool:
        try:
            return request(self.base_url, "GET", "/healthz")[0] == 200
        except OSError:
            return False

    # --- observing ---------------------------------------------------------------------
    def sql(self, query: str) -> int:
        """One integer from the database (a count), read from this process."""
        if self.db is None:
            from models.db import open_database

            self.db = open_database(self.env["DATABASE_URL"])
        return int(self.db.execute_sql(query).fetchone()[0])

    def sink_lines(self) -> list[str]:
        return Path(self.sink_log).read_text().split()


def request(
    base_url: str, method: str, path: str, body=None, key: str | None = None, connection=None
):
    """One HTTP request (keep-alive when ``connection`` is given): (status, JSON)."""
    own = connection is None
    if own:
        host, port = base_url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    connection.request(
        method, path, body=json.dumps(body) if body is not None else None, headers=headers
    )
    response = connection.getresponse()
    data = response.read()
    if own:
        connection.close()
    return response.status, (json.loads(data) if data else None)


def load(base_url: str, make_request, threads: int, seconds: float) -> dict:
    """Closed-loop load: ``threads`` clients with keep-alive connections send requests from
    ``make_request(connection)`` for ``seconds``. Returns requests/s and latency percentiles."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client():
        host, port = base_url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        mine = []
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            try:
                ok = make_request(connection)
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection(host, int(port), timeout=30)
                ok = False
            mine.append(time.perf_counter() - started)
            if not ok:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=client) for _ in range(threads)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return {
        "requests_per_second": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else 0,
        "p99_ms": pick(0.99) if latencies else 0,
        "errors": errors[0],
        "requests": len(latencies),
    }


def cpu_model() -> str:
    """This machine's processor, as /proc/cpuinfo names it (or what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def save(name: str, figures: dict) -> None:
    """Append figures to docs/bench/results.json (by benchmark name), or to the file in
    BENCH_RESULTS (a trial run that should not replace the published figures)."""
    path = Path(os.environ.get("BENCH_RESULTS") or ROOT / "docs" / "bench" / "results.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(path.read_text()) if path.exists() else {}
    results[name] = {
        **figures,
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "cpu": cpu_model(),
    }
    path.write_text(json.dumps(results, indent=2) + "\n")
