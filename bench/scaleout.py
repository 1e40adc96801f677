"""Scale-out: Herald on two hosts sharing one PostgreSQL, one RabbitMQ and one Redis.

    python -m bench.scaleout --messages 3000 --rounds 3      # as root: network namespaces

The two hosts are network namespaces of this machine, ``herald-h1`` and ``herald-h2``, each
joined to the root namespace by a veth pair: 10.77.K.1 on the root side, 10.77.K.2 inside host
K. Each host runs Herald's web (gunicorn on 10.77.K.2:8000), a worker (dramatiq, ``BROKER_URL``
amqp://…) and a scheduler, as three hosts of a deployment would. PostgreSQL (the database
``bench_scaleout``, made anew), RabbitMQ (the vhost ``herald-scaleout``, made anew with
``rabbitmqctl`` so that nothing touches the default vhost's queues), Redis (embedded: the
scheduler's leader lock and the rate limits live there, so a deployment with RabbitMQ still
has one) and an SMTP sink stay in the root namespace on
127.0.0.1, where ``bench.forward`` relays 10.77.K.1:PORT to each of them.

10.77.0.0/16 are addresses of this machine's own namespaces, on virtual links between them: no
packet leaves the machine. The project's rule that nothing contacts a host outside 127.0.0.0/8
is about other machines; it holds here.

Three figures, in one run:

1. throughput end to end (first POST until the last email is ``sent``), one host against both,
   ``--rounds`` pairs back to back, the order alternating: the medians, the median of the
   pairs' ratios (host 2's worker is stopped for the one-host runs; both hosts share this
   machine's cores, so the ratio stays below 2), the cores used by the hosts, by the host side
   and by the whole machine, and the CPU time a message costs with one host and with two (the
   same cost: the second host adds capacity, not work; it holds however busy the machine is);
2. the schedulers: both run all along; their job runs (``herald_scheduler_job_runs_total``,
   scraped every 0.5 s) show that only the lock's holder acts, and that the other takes over
   once the holder is gone;
3. a kill: ``--messages`` emails posted to both hosts, every process of host 1 (its scheduler
   the leader) SIGKILLed mid-run, then every message at the sink at least once (0 lost), at most
   as many duplicates as were in flight at the kill.

The network namespaces, veths and processes are removed at exit, on Ctrl-C and on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from bench.harness import ROOT, request, save, wait_for
from bench.scaleout_hosts import (
    Failed,
    Host,
    SchedulerWatch,
    cpu_seconds,
    fresh_database,
    fresh_vhost,
    machine_busy_seconds,
    port_of,
    preflight,
    reachable,
    stop_process,
)
from bench.targets import SCALEOUT_LOST
from models.states import FINAL

DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/bench_scaleout"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672"
VHOST = "herald-scaleout"
#: Whose CPU time :meth:`Run.cpu` reads.
CPU_USERS = ("hosts", "host side", "machine")
SUBJECT, BODY = "Programare confirmată", "Vă așteptăm luni la ora 9:00, biroul 12."
#: What every host runs with: short leases and a fast replay and take-over, so that what a
#: killed host held comes back within the run.
HOST_SETTINGS = {
    "DELIVERY_LEASE_SECONDS": "10",
    "REPLAY_INTERVAL_SECONDS": "1",
    "LEADER_LOCK_TTL_SECONDS": "5",
    "ALLOW_PRIVATE_URLS": "true",
    "LOG_LEVEL": "WARNING",
}


class Run:
    """The host side (database, vhost, Redis, sink, forwarders) and the two hosts."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.dir = tempfile.mkdtemp(prefix="herald-scaleout-")
        self.processes: list[subprocess.Popen] = []
        self.hosts: list[Host] = []
        self.db = None

    # --- setting up --------------------------------------------------------------------
    def __enter__(self) -> Run:
        try:
            self._set_up()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def _set_up(self) -> None:
        from dev.embedded_redis import EmbeddedRedis, free_port

        args = self.args
        for url in (args.database_url, args.amqp_url):
            reachable(url)
        Host.remove_leftovers()
        fresh_database(args.database_url)
        fresh_vhost(args.amqp_url, VHOST)
        self.redis = EmbeddedRedis(directory=self.dir).start()
        smtp_port = free_port()
        self.sink_log = Path(self.dir, "sink.log")
        self.sink_log.touch()
        self._start([sys.executable, "-m", "bench.sink", str(smtp_port), str(self.sink_log)])
        services = {
            "postgresql": port_of(args.database_url),
            "amqp": port_of(args.amqp_url),
            "redis": self.redis.port,
            "smtp": smtp_port,
        }
        self.env = dict(
            os.environ,
            PYTHONPATH=str(ROOT),
            DATABASE_URL=args.database_url,
            REDIS_URL=self.redis.url,
            BROKER_URL=f"{args.amqp_url.rstrip('/')}/{VHOST}",
            VAR_DIR=self.dir,
        )
        self._run("db", "upgrade")
        self.key = self._run("senders", "create", "bench-scaleout", "--admin").strip()
        for number in (1, 2):
            host = Host(number, self.dir, {**self.env, **HOST_SETTINGS}, services)
            self.hosts.append(host)
            host.connect()
            forward = [f"{host.outside}:{port}=127.0.0.1:{port}" for port in services.values()]
            forwarder = self._start([sys.executable, "-m", "bench.forward", *forward], pipe=True)
            if forwarder.stdout.readline().strip() != b"ready":
                raise Failed(f"the forwarder for {host.name} did not start")

    def __exit__(self, *exc) -> None:
        """Remove everything, each step whatever became of the others."""
        if exc[0] is not None and exc[0] is not KeyboardInterrupt:
            for host in self.hosts:
                with contextlib.suppress(Exception):
                    host.print_logs()
        steps = [host.remove for host in self.hosts]
        steps += [partial(stop_process, process) for process in self.processes]
        if getattr(self, "redis", None):
            steps.append(self.redis.stop)
        if self.db is not None:
            steps.append(self.db.close)
        steps.append(partial(subprocess.run, ["rabbitmqctl", "-q", "delete_vhost", VHOST],
                             capture_output=True))  # fmt: skip
        steps.append(partial(shutil.rmtree, self.dir, ignore_errors=True))
        for step in steps:
            try:
                step()
            except Exception as error:  # the others still run
                print(f"bench.scaleout: cleaning up: {error!r}", file=sys.stderr)

    def _start(self, command: list[str], pipe: bool = False) -> subprocess.Popen:
        with open(Path(self.dir, "host-side.log"), "ab") as log:
            process = subprocess.Popen(
                command, cwd=ROOT, start_new_session=True, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipe else log, stderr=log,
            )  # fmt: skip
        self.processes.append(process)
        return process

    def _run(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "cli", *args], cwd=ROOT, env=self.env, capture_output=True,
            text=True,
        )  # fmt: skip
        if result.returncode:
            raise Failed(f"herald {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    # --- observing ---------------------------------------------------------------------
    def sql(self, query: str, *params) -> list[tuple]:
        if self.db is None:
            import psycopg2

            self.db = psycopg2.connect(self.args.database_url)
            self.db.autocommit = True
        with self.db.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall()

    def count(self, prefix: str, states: tuple[str, ...] = ("sent",)) -> int:
        rows = self.sql(
            "SELECT count(*) FROM message WHERE destination LIKE %s AND state = ANY(%s)",
            f"{prefix}-%", list(states),
        )  # fmt: skip
        return rows[0][0]

    # --- load --------------------------------------------------------------------------
    def post(self, hosts: list[Host], prefix: str, count: int, per_request: int = 100) -> int:
        """POST ``count`` emails (to ``prefix-N@example.md``), the requests spread over
        ``hosts``' APIs in turn; the number of messages accepted."""
        bodies = [
            {
                "recipients": [
                    {"type": "email", "value": f"{prefix}-{start + n}@example.md"}
                    for n in range(per_request)
                ],
                "message": {"subject": SUBJECT, "body": BODY},
            }
            for start in range(0, count, per_request)
        ]

        def send(numbered: tuple[int, dict]) -> int:
            number, body = numbered
            url = hosts[number % len(hosts)].base_url
            return request(url, "POST", "/v1/notifications", body, self.key)[0]

        with ThreadPoolExecutor(4) as pool:
            statuses = set(pool.map(send, enumerate(bodies)))
        if statuses != {202}:
            raise Failed(f"POST /v1/notifications answered {statuses}")
        return len(bodies) * per_request

    def host_side_pids(self) -> list[int]:
        """The host side's processes: sink, forwarders, Redis, this database's PostgreSQL
        backends and the RabbitMQ server (beam.smp, whoever else uses it)."""
        backends = self.sql("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        rabbitmq = subprocess.run(["pgrep", "-x", "beam.smp"], capture_output=True, text=True)
        return [
            *(process.pid for process in self.processes),
            self.redis.process.pid,
            *(pid for (pid,) in backends),
            *map(int, rabbitmq.stdout.split()),
        ]

    def cpu(self, hosts: list[Host]) -> tuple[float, float, float]:
        """CPU seconds so far: the hosts' processes, the host side's, the whole machine's."""
        hosts_cpu = sum(host.cpu_seconds() for host in hosts)
        return hosts_cpu, cpu_seconds(self.host_side_pids()), machine_busy_seconds()

    def throughput(self, hosts: list[Host], prefix: str) -> tuple[float, dict, dict[str, float]]:
        """Messages per second from the first POST until the last is sent, after a warm-up;
        the cores used meanwhile (:meth:`cpu`); and how many each host's worker sent."""
        warm = self.post(hosts, f"{prefix}w", 100 * len(hosts))
        wait_for(lambda: self.count(f"{prefix}w") >= warm, 120, 0.2, "the warm-up sent")
        before = {host.name: host.delivered() for host in hosts}
        at_sink = self.at_sink()
        cpu = self.cpu(hosts)
        started = time.perf_counter()
        total = self.post(hosts, prefix, self.args.messages)
        # The sink's log first (its size: cheap to poll), then the database, which says sent.
        wait_for(lambda: self.at_sink() >= at_sink + total, 600, 0.02, "every message at the sink")
        wait_for(lambda: self.count(prefix) >= total, 600, 0.02, "every message sent")
        elapsed = time.perf_counter() - started
        spent = [end - start for start, end in zip(cpu, self.cpu(hosts), strict=True)]
        cores = {user: seconds / elapsed for user, seconds in zip(CPU_USERS, spent, strict=True)}
        return total / elapsed, cores, {h.name: h.delivered() - before[h.name] for h in hosts}

    # --- the run -----------------------------------------------------------------------
    def start_hosts(self) -> None:
        one, two = self.hosts
        one.start_scheduler()
        wait_for(lambda: one.leader() == 1, 60, 0.2, f"{one.name}'s scheduler leading")
        two.start_scheduler()
        for host in self.hosts:
            host.start_web(self.args.web_workers)
        for host in self.hosts:
            wait_for(host.healthy, 60, 0.2, f"{host.name}'s /healthz")
        one.start_worker(self.args.worker_processes, self.args.threads)

    def scale(self) -> dict:
        """``--rounds`` pairs of runs, one host and two, the order alternating from round to
        round (so that a drift of the machine's load favours neither)."""
        one, two = self.hosts
        rates: dict[str, list[float]] = {"1": [], "2": []}
        cores: dict[str, list[dict]] = {"1": [], "2": []}
        shares = []
        for number in range(self.args.rounds):
            for count in ("1", "2") if number % 2 == 0 else ("2", "1"):
                hosts = [one, two] if count == "2" else [one]
                if count == "2" and "worker" not in two.processes:
                    two.start_worker(self.args.worker_processes, self.args.threads)
                elif count == "1" and "worker" in two.processes:
                    two.stop("worker")
                rate, used, share = self.throughput(hosts, f"r{number}-{count}")
                rates[count].append(rate)
                cores[count].append(used)
                if count == "2":
                    shares.append(share)
            print(f"round {number + 1}: 1 host {rates['1'][-1]:,.0f} msg/s, "
                  f"2 hosts {rates['2'][-1]:,.0f} msg/s "
                  f"(sent by h1 {shares[-1]['h1']:,.0f}, h2 {shares[-1]['h2']:,.0f})",
                  flush=True)  # fmt: skip
        if "worker" not in two.processes:
            two.start_worker(self.args.worker_processes, self.args.threads)
        return {"rates": rates, "cores": cores, "shares": shares}

    def kill(self, watch: SchedulerWatch) -> dict:
        """Post ``--messages`` emails to both hosts, SIGKILL host 1 once a third is sent, and
        check that each reached the sink at least once, and more than once only if it was in
        flight (``sending``) at the kill. In flight is counted just after the kill: what host 1
        was sending then stays ``sending`` until its lease expires (host 2's count too)."""
        one, _ = self.hosts
        total = self.post(self.hosts, "kill", self.args.messages)
        wait_for(lambda: self.count("kill") >= total // 3, 600, 0.05, "a third sent")
        sent_at_kill = self.count("kill")
        killed_at = time.monotonic()
        watch.mark("kill", killed_at)
        killed = one.kill()
        in_flight = self.count("kill", ("sending",))
        final = tuple(str(state) for state in FINAL)
        wait_for(lambda: self.count("kill", final) >= total, 600, 0.2, "every message final")
        recovery = time.monotonic() - killed_at
        time.sleep(1)  # a last email the sink is still writing
        ids = [
            row[0]
            for row in self.sql("SELECT id::text FROM message WHERE destination LIKE %s", "kill-%")
        ]
        seen = Counter(self.sink_lines())
        lost = sum(1 for message_id in ids if not seen[message_id])
        duplicates = sum(seen[message_id] - 1 for message_id in ids if seen[message_id] > 1)
        return {
            "messages": total, "killed_processes": killed, "sent_at_kill": sent_at_kill,
            "in_flight": in_flight, "lost": lost, "duplicates": duplicates,
            "failed": self.count("kill", ("failed",)), "all_final_after_s": recovery,
        }  # fmt: skip

    def sink_lines(self) -> list[str]:
        return self.sink_log.read_text().split()

    def at_sink(self) -> int:
        """Emails the sink has taken (its log has a message id and a newline for each)."""
        return self.sink_log.stat().st_size // 37


def report(args, scale: dict, kill: dict, leadership: dict) -> dict:
    rates, cores = scale["rates"], scale["cores"]
    one, two = statistics.median(rates["1"]), statistics.median(rates["2"])
    ratios = [b / a for a, b in zip(rates["1"], rates["2"], strict=True)]
    ratio = statistics.median(ratios)
    print(f"\nScale-out, {args.messages:,} emails a run, each host {args.web_workers} web "
          f"worker(s), {args.worker_processes} worker process(es) × {args.threads} threads, "
          f"{os.cpu_count()} cores in all")  # fmt: skip
    print(f"{'':<10}{'median':>8}         {'each round':<22}cores used (median): "
          f"{', '.join(CPU_USERS)}")  # fmt: skip
    for label, count, median in (("1 host", "1", one), ("2 hosts", "2", two)):
        each = ", ".join(f"{r:,.0f}" for r in rates[count])
        used = [statistics.median(c[user] for c in cores[count]) for user in CPU_USERS]
        print(f"{label:<10}{median:>8,.0f} msg/s   {each:<22}{'  '.join(f'{u:.2f}' for u in used)}")
    print(f"ratio 2 hosts / 1 host {ratio:.2f} (median of the rounds' ratios "
          f"{', '.join(f'{r:.2f}' for r in ratios)})")  # fmt: skip
    # What a message costs the hosts and the host side, whatever share of the cores the rest
    # of the machine leaves: equal costs mean the second host added no work per message.
    cost = {
        count: statistics.median(
            (c["hosts"] + c["host side"]) / r * 1000
            for c, r in zip(cores[count], rates[count], strict=True)
        )
        for count in ("1", "2")
    }
    print(f"CPU a message (hosts and host side): 1 host {cost['1']:.2f} ms, "
          f"2 hosts {cost['2']:.2f} ms (ratio {cost['2'] / cost['1']:.2f})")  # fmt: skip
    print(f"\nSchedulers: job runs per host {leadership['runs_before_kill']} before the kill, "
          f"{leadership['runs_after_kill']} after")  # fmt: skip
    print(f"samples in which both acted: {leadership['both_acted']} (must be 0)")
    print(f"h2 took over {leadership['takeover_s']:.1f} s after h1 was killed "
          f"(LEADER_LOCK_TTL_SECONDS={HOST_SETTINGS['LEADER_LOCK_TTL_SECONDS']})")  # fmt: skip
    print(f"\nKill: {kill['messages']:,} emails, {kill['killed_processes']} processes of h1 "
          f"SIGKILLed with {kill['sent_at_kill']:,} sent, "
          f"{kill['in_flight']} in flight")  # fmt: skip
    print(f"lost: {kill['lost']} ({SCALEOUT_LOST.verdict(kill['lost'])})")
    print(f"duplicates at the sink: {kill['duplicates']} (must be ≤ {kill['in_flight']})")
    print(f"all final {kill['all_final_after_s']:.1f} s after the kill")
    return {
        "messages": args.messages, "rounds": args.rounds, "worker_processes": args.worker_processes,
        "threads": args.threads, "one_host_per_s": one, "two_hosts_per_s": two, "ratio": ratio,
        "ratios": ratios, "rates": rates, "cores": cores, "cpu_ms_per_message": cost,
        "two_host_shares": scale["shares"], "schedulers": leadership,
        "kill": kill, "backend": "postgresql", "broker": "rabbitmq",
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description="Two Herald hosts (network namespaces)")
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3, help="1-host/2-host pairs")
    parser.add_argument("--web-workers", type=int, default=1, help="gunicorn workers a host")
    parser.add_argument("--worker-processes", type=int, default=1, help="dramatiq processes a host")
    parser.add_argument("--threads", type=int, default=8, help="threads a worker process")
    parser.add_argument("--database-url", default=DATABASE_URL, help="a database it may wipe")
    parser.add_argument("--amqp-url", default=AMQP_URL, help="RabbitMQ, without the vhost")
    args = parser.parse_args()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # clean up, even if started
        signal.signal(signum, signal.default_int_handler)  # with SIGINT ignored (`cmd &`)
    try:
        preflight()
        with Run(args) as run:
            run.start_hosts()
            with SchedulerWatch(run.hosts) as watch:
                scale = run.scale()
                kill = run.kill(watch)
                time.sleep(3)  # h2's job runs as leader
            leadership = watch.summary()
            figures = report(args, scale, kill, leadership)
    except Failed as failure:
        sys.exit(f"bench.scaleout: {failure}")
    except KeyboardInterrupt:
        sys.exit("bench.scaleout: interrupted; namespaces and processes removed")
    save("scaleout", figures)
    bad = (
        kill["lost"]
        or kill["duplicates"] > kill["in_flight"]
        or figures["schedulers"]["both_acted"]
    )
    if bad:
        sys.exit("bench.scaleout: a promise was broken (see above)")


if __name__ == "__main__":
    main()
