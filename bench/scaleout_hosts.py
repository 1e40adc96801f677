"""The machine side of ``bench.scaleout``: its checks and the services it makes anew (host side),
the hosts, network namespaces of this machine with Herald's processes in them (:class:`Host`),
and a watch on their schedulers (:class:`SchedulerWatch`)."""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from bench.harness import ROOT, request

WEB_PORT, WORKER_METRICS_PORT, SCHEDULER_METRICS_PORT = 8000, 9191, 9192
BIN = Path(sys.executable).parent


class Failed(Exception):
    """A condition that ends the run with a message instead of a traceback."""


# --- the host side ---------------------------------------------------------------------------
def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def preflight() -> None:
    """What the run needs of this machine, before anything is made."""
    if sys.platform != "linux":
        raise Failed("needs Linux network namespaces")
    if os.geteuid() != 0:
        raise Failed("needs root, to make network namespaces: sudo -E python -m bench.scaleout")
    if not shutil.which("ip"):
        raise Failed("needs the `ip` command (Debian: apt-get install iproute2)")
    probe = f"herald-probe-{os.getpid()}"
    try:
        ip("netns", "add", probe)
    finally:
        ip("netns", "del", probe, check=False)
    if not shutil.which("rabbitmqctl"):
        raise Failed(
            "needs rabbitmqctl, to make the vhost (Debian: apt-get install rabbitmq-server)"
        )


def port_of(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or {"amqp": 5672, "postgresql": 5432, "postgres": 5432}[parts.scheme]


def reachable(url: str) -> None:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, port_of(url)), timeout=3).close()
    except OSError as error:
        where = f"{parts.hostname}:{port_of(url)}"
        raise Failed(f"{parts.scheme} is not reachable at {where} ({error})") from None


def fresh_database(url: str) -> None:
    """Drop the database ``url`` names and create it anew."""
    import psycopg2
    from psycopg2 import sql

    from dev.bench_database import ensure_database

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    maintenance = psycopg2.connect(parts._replace(path="/postgres").geturl())
    try:
        maintenance.autocommit = True
        with maintenance.cursor() as cursor:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            cursor.execute(drop.format(sql.Identifier(name)))
    finally:
        maintenance.close()
    reason = ensure_database(url)
    if reason:
        raise Failed(reason)


def fresh_vhost(amqp_url: str, vhost: str) -> None:
    """Delete RabbitMQ's ``vhost`` and make it anew, open to ``amqp_url``'s user."""
    user = urlsplit(amqp_url).username or "guest"
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True)
    for command in (["add_vhost", vhost], ["set_permissions", "-p", vhost, user, *[".*"] * 3]):
        result = subprocess.run(["rabbitmqctl", "-q", *command], capture_output=True, text=True)
        if result.returncode:
            raise Failed(f"rabbitmqctl {command[0]} failed: {result.stderr.strip()}")


# --- the hosts -------------------------------------------------------------------------------
def ip(*args: str, check: bool = True) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode:
        raise Failed(f"ip {' '.join(args)}: {result.stderr.strip()} (network namespaces need root)")
    return result.stdout


def relocated(url: str, host: str, port: int) -> str:
    """``url`` with its host and port replaced (user and password kept)."""
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    netloc = f"{user + '@' if user else ''}{host}:{port}"
    return parts._replace(netloc=netloc).geturl()


def metric(text: str | None, name: str, having: str = "") -> float | None:
    """The sum of the samples of ``name`` whose line contains ``having``; None without text."""
    if text is None:
        return None
    total = 0.0
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")) and having in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def cpu_seconds(pids: Iterable[int]) -> float:
    """CPU time (user and system, all threads) the processes ``pids`` have used so far."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime: stat's fields 14, 15
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time this machine's cores have been busy (not idle, not waiting on I/O), by anyone."""
    user, nice, system, idle, iowait, *rest = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + sum(rest)) / os.sysconf("SC_CLK_TCK")


def kill_all(namespace: str) -> int:
    """SIGKILL every process in ``namespace`` (none if it does not exist); how many."""
    killed: set[int] = set()
    for _ in range(5):  # until none is left (a master may fork while it is being killed)
        pids = {int(pid) for pid in ip("netns", "pids", namespace, check=False).split()}
        if not pids - killed:
            break
        for pid in pids - killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        killed |= pids
        time.sleep(0.2)
    return len(killed)


class Host:
    """Host ``number``: the namespace ``herald-hN``, 10.77.N.2 inside, reached from 10.77.N.1;
    its processes' settings point at the host side through the forwarders on 10.77.N.1."""

    def __init__(self, number: int, directory: str, env: dict, services: dict[str, int]):
        self.name, self.namespace = f"h{number}", f"herald-h{number}"
        self.outside, self.inside = f"10.77.{number}.1", f"10.77.{number}.2"
        self.veth = f"herald-h{number}o", f"herald-h{number}i"
        self.base_url = f"http://{self.inside}:{WEB_PORT}"
        self.dir = Path(directory, self.name)
        self.dir.mkdir()
        self.env = dict(
            env,
            DATABASE_URL=relocated(env["DATABASE_URL"], self.outside, services["postgresql"]),
            BROKER_URL=relocated(env["BROKER_URL"], self.outside, services["amqp"]),
            REDIS_URL=relocated(env["REDIS_URL"], self.outside, services["redis"]),
            SMTP_HOST=self.outside,
            SMTP_PORT=str(services["smtp"]),
            HOST=self.inside,
            PORT=str(WEB_PORT),
            WORKER_METRICS_PORT=str(WORKER_METRICS_PORT),
            SCHEDULER_METRICS_PORT=str(SCHEDULER_METRICS_PORT),
            VAR_DIR=str(self.dir),
        )
        self.processes: dict[str, subprocess.Popen] = {}

    # --- the namespace -------------------------------------------------------------------
    def connect(self) -> None:
        outside, inside = self.veth
        ip("netns", "add", self.namespace)
        ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        ip("link", "set", inside, "netns", self.namespace)
        ip("addr", "add", f"{self.outside}/24", "dev", outside)
        ip("link", "set", outside, "up")
        ip("-n", self.namespace, "addr", "add", f"{self.inside}/24", "dev", inside)
        ip("-n", self.namespace, "link", "set", inside, "up")
        ip("-n", self.namespace, "link", "set", "lo", "up")

    def kill(self) -> int:
        """SIGKILL every process in the namespace, as a host that loses power; how many."""
        killed = kill_all(self.namespace)
        for process in self.processes.values():
            process.wait()
        self.processes.clear()
        return killed

    def remove(self) -> None:
        """Kill what runs in the namespace and delete it (its veth pair goes with it)."""
        self.kill()
        ip("netns", "del", self.namespace, check=False)
        ip("link", "del", self.veth[0], check=False)

    @staticmethod
    def remove_leftovers() -> None:
        """The namespaces and veths an earlier run that was itself killed left behind."""
        for number in (1, 2):
            namespace = f"herald-h{number}"
            kill_all(namespace)
            ip("netns", "del", namespace, check=False)
            ip("link", "del", f"herald-h{number}o", check=False)

    # --- processes -----------------------------------------------------------------------
    def start(self, role: str, command: list[str], **env: str) -> None:
        with open(self.dir / f"{role}.log", "ab") as log:
            self.processes[role] = subprocess.Popen(
                ["ip", "netns", "exec", self.namespace, *command], cwd=ROOT,
                env={**self.env, **env}, start_new_session=True, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def start_web(self, workers: int) -> None:
        self.start("web", [str(BIN / "gunicorn"), "--workers", str(workers)])

    def start_worker(self, processes: int, threads: int) -> None:
        args = ["--processes", str(processes), "--threads", str(threads)]
        self.start("worker", [str(BIN / "dramatiq"), "tasks.worker", *args])

    def start_scheduler(self) -> None:
        self.start("scheduler", [sys.executable, "-m", "scheduler"], LOG_LEVEL="INFO")

    def stop(self, role: str) -> None:
        process = self.processes.pop(role)
        with contextlib.suppress(ProcessLookupError):  # it may have died by itself
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def print_logs(self, lines: int = 15) -> None:
        for log in sorted(self.dir.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            print(f"--- {self.name} {log.name} (last {len(tail)} lines)", file=sys.stderr)
            print("\n".join(tail), file=sys.stderr)

    # --- observing -----------------------------------------------------------------------
    def healthy(self) -> bool:
        try:
            return request(self.base_url, "GET", "/healthz")[0] == 200
        except OSError:
            return False

    def scrape(self, port: int, timeout: float = 2) -> str | None:
        connection = http.client.HTTPConnection(self.inside, port, timeout=timeout)
        try:
            connection.request("GET", "/metrics")
            return connection.getresponse().read().decode()
        except (OSError, http.client.HTTPException):
            return None
        finally:
            connection.close()

    def delivered(self) -> float:
        """Emails this host's worker has sent since it started (its metrics must answer)."""
        for _ in range(10):
            text = self.scrape(WORKER_METRICS_PORT, timeout=10)
            if text is not None:
                return metric(text, "herald_deliveries_total", 'outcome="sent"') or 0.0
            time.sleep(1)
        raise Failed(f"{self.name}'s worker metrics do not answer")

    def cpu_seconds(self) -> float:
        """CPU time of the processes now in the namespace."""
        return cpu_seconds(int(pid) for pid in ip("netns", "pids", self.namespace).split())

    def leader(self) -> float | None:
        return metric(self.scrape(SCHEDULER_METRICS_PORT), "herald_scheduler_leader")

    def job_runs(self) -> float | None:
        return metric(self.scrape(SCHEDULER_METRICS_PORT), "herald_scheduler_job_runs_total")


class SchedulerWatch(threading.Thread):
    """Every 0.5 s, each host's scheduler job runs so far (None: not answering): which hosts'
    schedulers acted in each interval, before and after the moment :meth:`mark` names."""

    def __init__(self, hosts: list[Host], every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.hosts, self.every = hosts, every
        self.samples: list[tuple[float, dict[str, float | None]]] = []
        self.marks: dict[str, float] = {}
        self.done = threading.Event()

    def __enter__(self) -> SchedulerWatch:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.join()

    def run(self) -> None:
        while not self.done.wait(self.every):
            self.samples.append((time.monotonic(), {h.name: h.job_runs() for h in self.hosts}))

    def mark(self, name: str, at: float) -> None:
        self.marks[name] = at

    def summary(self) -> dict:
        """Job runs per host before and after the kill, samples in which more than one host
        acted, and how long after the kill another host first acted."""
        kill = self.marks.get("kill", float("inf"))
        names = [host.name for host in self.hosts]
        before = dict.fromkeys(names, 0)
        after = dict.fromkeys(names, 0)
        both, takeover = 0, None
        for (_, previous), (at, current) in zip(self.samples, self.samples[1:], strict=False):
            acted = [
                name
                for name in names
                if current[name] is not None
                and previous[name] is not None
                and current[name] > previous[name]
            ]
            for name in acted:
                runs = int(current[name] - previous[name])
                (before if at < kill else after)[name] += runs
                if at >= kill and takeover is None and name != names[0]:
                    takeover = at - kill
            both += len(acted) > 1
        return {
            "runs_before_kill": before,
            "runs_after_kill": after,
            "both_acted": both,
            "takeover_s": takeover if takeover is not None else float("nan"),
        }
