"""What bench/chart.py draws for each benchmark in docs/bench/results.json: its rows of the
results table and its panel, against the targets in bench/targets.py.

Each function takes the figures a script saved (``bench.harness.save``) under its name:

- ``fanout`` (SQLite), ``fanout_postgresql``: contacts, backend, total, and the phases timed
  (FANOUT_PHASES), workers
- ``email``: smtplib_per_s, herald_per_s, ratio (connections, worker_processes)
- ``engine``: noop_per_s, inapp_per_s, webhook_per_s and their _ratio (processes, threads)
- ``api``: hello and herald (requests_per_second, p99_ms), ratio (clients, web_workers)
- ``statements``: small, large (page sizes) and ``listings``: {path: [small, large]}
- ``crash``: messages, kills, in_flight (per kill), lost, duplicates
- ``search``: messages, p95_ms {"KIND as WHO": ms}
- ``scaling``: channel, messages, threads, runs {"N": {noop_per_s, herald_per_s, ratio}}
- ``receipts``: channel, messages, runs {"plain"|"metrics"|"receipts": {per_s,
  cpu_us_per_message}} and for "metrics" and "receipts" their ratio to "plain"
- ``scaleout``: one_host_per_s, two_hosts_per_s, kill {messages, lost, duplicates, in_flight},
  schedulers {both_acted}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bench import targets
from bench.targets import Target

BASELINE, MET, MISSED, PART = "#9aa5b1", "#2e8540", "#d4651c", "#c9d7e3"
#: The target column of a figure measured without a target of its own.
NO_TARGET = "—"


@dataclass
class Row:
    """One line of the results table (``met`` None: a figure without a target)."""

    figure: str
    measured: str
    target: str
    met: bool | None


@dataclass
class Panel:
    """One chart: bars (label, value, colour), the target as a horizontal line (None: no
    line), and a note above any bar (by index)."""

    title: str
    unit: str
    bars: list[tuple[str, float, str]]
    target: float | None
    target_label: str
    notes: dict[int, str] = field(default_factory=dict)


def _db(figures: dict) -> str:
    return {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(figures.get("backend", ""), "")


def _with(*parts) -> str:
    """The parts that are known, in brackets after a space ("" when none is)."""
    known = [str(part) for part in parts if part]
    return f" ({', '.join(known)})" if known else ""


def _colour(met: bool) -> str:
    return MET if met else MISSED


def _ratio_row(target: Target, detail: str, herald: float, baseline: float, unit: str) -> Row:
    ratio = herald / baseline if baseline else 0.0
    measured = f"{herald:,.0f} / {baseline:,.0f} {unit} = {ratio:.2f}×"
    return Row(f"{target.figure}{detail}", measured, target.text, target.met(ratio))


#: The phases of a fan-out bench/fanout.py may time, in order (those present are drawn).
FANOUT_PHASES = ("plan", "resolve", "insert", "insert+cursor", "enqueue")


def fanout(f: dict) -> tuple[list[Row], Panel]:
    backend = f.get("backend", "sqlite")
    target = targets.FANOUT_SQLITE if backend == "sqlite" else targets.FANOUT_POSTGRESQL
    budget = targets.fanout_budget(f["contacts"], backend)
    met = f["total"] <= budget
    workers = f.get("workers") and f"{f['workers']} worker processes"
    figure = f"broadcast fan-out, {f['contacts']:,} contacts{_with(_db(f), workers)}"
    shown = (
        target.text
        if budget == target.limit
        else f"≤ {budget:g} s ({target.text} for the target's count)"
    )
    row = Row(figure, f"{f['total']:.1f} s", shown, met)
    phases = [(name, f[name], PART) for name in FANOUT_PHASES if name in f]
    panel = Panel(
        f"Broadcast fan-out, {f['contacts']:,} contacts{_with(_db(f))}",
        "seconds",
        [*phases, ("total", f["total"], _colour(met))],
        budget,
        f"budget {budget:g} s",
        {len(phases): f"{f['total'] / budget:.2f}× budget"},
    )
    return [row], panel


def email(f: dict) -> tuple[list[Row], Panel]:
    connections = f.get("connections") and f"{f['connections']} connections"
    processes = f.get("worker_processes") and f"{f['worker_processes']} worker processes"
    detail = _with(connections, _db(f), processes)
    row = _ratio_row(targets.EMAIL, detail, f["herald_per_s"], f["smtplib_per_s"], "msg/s")
    panel = Panel(
        f"Email, {f['messages']:,} messages",
        "messages/s",
        [
            ("raw smtplib", f["smtplib_per_s"], BASELINE),
            ("Herald", f["herald_per_s"], _colour(bool(row.met))),
        ],
        targets.EMAIL.limit * f["smtplib_per_s"],
        f"target {targets.EMAIL.text}",
        {1: f"{f['ratio']:.2f}×"},
    )
    return [row], panel


def engine(f: dict) -> tuple[list[Row], Panel]:
    detail = _with(f"{f['processes']} worker processes × {f['threads']} threads", _db(f))
    rows, bars, notes = [], [("no-op actor", f["noop_per_s"], BASELINE)], {}
    for channel, label, target in (
        ("inapp", "in-app", targets.INAPP),
        ("webhook", "webhook", targets.WEBHOOK),
    ):
        row = _ratio_row(target, detail, f[f"{channel}_per_s"], f["noop_per_s"], "msg/s")
        rows.append(row)
        notes[len(bars)] = f"{f[f'{channel}_ratio']:.2f}×"
        bars.append((f"Herald {label}", f[f"{channel}_per_s"], _colour(bool(row.met))))
    limit = min(targets.INAPP.limit, targets.WEBHOOK.limit)
    title = f"Engine, {f['messages']:,} messages each"
    line = f"target ≥ {limit:.2f}×"
    panel = Panel(title, "messages/s", bars, limit * f["noop_per_s"], line, notes)
    return rows, panel


def api(f: dict) -> tuple[list[Row], Panel]:
    hello, herald = f["hello"], f["herald"]
    clients = f.get("clients") and f"{f['clients']} clients"
    workers = f.get("web_workers") and f"{f['web_workers']} gunicorn workers"
    detail = _with(clients, workers)
    ratio_row = _ratio_row(
        targets.API_RATIO, detail, herald["requests_per_second"],
        hello["requests_per_second"], "req/s",
    )  # fmt: skip
    p99 = herald["p99_ms"]
    p99_row = Row(
        f"{targets.API_P99_MS.figure}{detail}",
        f"{p99:.1f} ms (hello world {hello['p99_ms']:.1f} ms)",
        targets.API_P99_MS.text, targets.API_P99_MS.met(p99),
    )  # fmt: skip
    met = bool(ratio_row.met and p99_row.met)
    panel = Panel(
        "API accept, single-recipient POST",
        "requests/s",
        [
            ("hello world", hello["requests_per_second"], BASELINE),
            ("POST /v1/notifications", herald["requests_per_second"], _colour(met)),
        ],
        targets.API_RATIO.limit * hello["requests_per_second"],
        f"target {targets.API_RATIO.text}",
        {1: f"{f['ratio']:.2f}×, p99 {p99:.0f} ms"},
    )
    return [ratio_row, p99_row], panel


def statements(f: dict) -> tuple[list[Row], Panel]:
    small, large, listings = f["small"], f["large"], f["listings"]
    growing = {name: counts for name, counts in listings.items() if counts[1] > counts[0]}
    ratio = max(large_count / max(small_count, 1) for small_count, large_count in listings.values())
    counts = sorted(count for pair in listings.values() for count in pair)
    measured = f"{len(listings) - len(growing)} of {len(listings)} listings constant"
    measured += "; " + (
        ", ".join(f"{name} {a} → {b}" for name, (a, b) in growing.items())
        if growing
        else f"{counts[0]}–{counts[-1]} statements a page"
    )
    target = targets.LISTING_STATEMENTS
    row = Row(f"SQL statements per listing page (page of {small} → {large})", measured,
              target.text, target.met(ratio))  # fmt: skip
    bars = [(name, counts[1], _colour(counts[1] <= counts[0])) for name, counts in listings.items()]
    title = f"SQL statements per page of {large} (green: as many as for {small})"
    panel = Panel(title, "statements", bars, None, "")
    return [row], panel


def crash(f: dict) -> tuple[list[Row], Panel]:
    in_flight = sum(f["in_flight"])
    met = targets.CRASH_LOST.met(f["lost"]) and f["duplicates"] <= in_flight
    processes = f.get("worker_processes") and f"of {f['worker_processes']} worker processes"
    kills = f"{f['kills']} kills {processes or ''}".strip()
    row = Row(
        f"crash safety ({f['messages']:,} emails, {kills})",
        f"{f['lost']} lost; {f['duplicates']} duplicates vs {in_flight} in flight",
        f"{targets.CRASH_LOST.text}; duplicates ≤ in flight",
        met,
    )
    panel = Panel(
        f"Crash safety, {f['messages']:,} emails, {f['kills']} kills",
        "messages",
        [
            ("in flight at kills", in_flight, BASELINE),
            ("duplicates", f["duplicates"], _colour(f["duplicates"] <= in_flight)),
            ("lost", f["lost"], _colour(f["lost"] == 0)),
        ],
        in_flight,
        "duplicates ≤ in flight; 0 lost",
        {2: f"{f['lost']} lost"},
    )
    return [row], panel


def search(f: dict) -> tuple[list[Row], Panel]:
    p95, target = f["p95_ms"], targets.SEARCH_P95_MS
    worst = max(p95.values())
    row = Row(
        f"history search p95, {f['messages']:,} messages{_with(_db(f))}",
        f"{min(p95.values()):.1f}–{worst:.0f} ms",
        target.text if f["messages"] >= targets.SEARCH_MESSAGES
        else f"{target.text} (over {targets.SEARCH_MESSAGES:,})",
        target.met(worst),
    )  # fmt: skip
    bars = [
        (name.replace(" as ", "\nas "), value, _colour(target.met(value)))
        for name, value in p95.items()
    ]
    title = f"History search p95, {f['messages']:,} messages"
    return [row], Panel(title, "ms", bars, target.limit, f"target {target.text}")


def scaling(f: dict) -> tuple[list[Row], Panel]:
    channel = {"inapp": "in-app", "email": "email"}.get(f["channel"], f["channel"])
    target = targets.INAPP if f["channel"] == "inapp" else targets.EMAIL
    runs = sorted(f["runs"].items(), key=lambda item: int(item[0]))
    first = runs[0][1]["herald_per_s"]
    rows, bars, notes = [], [], {}
    for processes, run in runs:
        plural = "es" if processes != "1" else ""
        detail = f" ({processes} worker process{plural} × {f['threads']} threads, both)"
        row = _ratio_row(target, detail, run["herald_per_s"], run["noop_per_s"], "msg/s")
        row.figure = f"scaling: {channel} end to end / no-op Dramatiq actor{detail}"
        row.measured += f"; {run['herald_per_s'] / first:.2f}× the 1-process rate"
        rows.append(row)
        bars.append((f"no-op ×{processes}", run["noop_per_s"], BASELINE))
        notes[len(bars)] = f"{run['ratio']:.2f}×"
        bars.append((f"Herald ×{processes}", run["herald_per_s"], _colour(bool(row.met))))
    title = f"Scaling, {channel}, {f['messages']:,} messages per run"
    return rows, Panel(title, "messages/s", bars, None, "", notes)


def receipts(f: dict) -> tuple[list[Row], Panel]:
    plain, runs = f["runs"]["plain"], f["runs"]
    rows, bars = [], [("plain", plain["per_s"], BASELINE)]
    notes = {}
    for name, label in (("metrics", "METRICS on / off"), ("receipts", "delivery receipts / none")):
        if name not in runs:
            continue
        run = runs[name]
        extra = run["cpu_us_per_message"] - plain["cpu_us_per_message"]
        rows.append(
            Row(
                f"cost of {label} ({f['channel']} end to end, {f['messages']:,} messages)",
                f"{run['per_s']:,.0f} / {plain['per_s']:,.0f} msg/s = {run['ratio']:.2f}×; "
                f"{extra:+,.0f} µs CPU per message",
                NO_TARGET,
                None,
            )
        )
        notes[len(bars)] = f"{run['ratio']:.2f}×, {extra:+,.0f} µs"
        bars.append((name, run["per_s"], PART))
    title = f"Cost of metrics and receipts, {f['channel']}"
    return rows, Panel(title, "messages/s", bars, None, "", notes)


def scaleout(f: dict) -> tuple[list[Row], Panel]:
    one, two, kill = f["one_host_per_s"], f["two_hosts_per_s"], f["kill"]
    lost, duplicates, in_flight = kill["lost"], kill["duplicates"], kill["in_flight"]
    both_acted = f["schedulers"]["both_acted"]
    lost_met = targets.SCALEOUT_LOST.met(lost) and duplicates <= in_flight
    rows = [
        Row(
            "scale-out: throughput, 2 hosts (network namespaces) / 1 host",
            f"{two:,.0f} / {one:,.0f} msg/s = {two / one:.2f}× (one machine's cores shared)",
            NO_TARGET,
            None,
        ),
        Row(
            f"scale-out: one host killed during {kill['messages']:,} emails",
            f"{lost} lost; {duplicates} duplicates vs {in_flight} in flight",
            f"{targets.SCALEOUT_LOST.text}; duplicates ≤ in flight",
            lost_met,
        ),
        Row(
            "scale-out: schedulers acting at once",
            f"{'both' if both_acted else 'one'} (in {both_acted} samples both acted)",
            "one",
            not both_acted,
        ),
    ]
    bars = [("1 host", one, BASELINE), ("2 hosts", two, _colour(lost_met and not both_acted))]
    panel = Panel("Scale-out, 2 hosts", "messages/s", bars, None, "",
                  {1: f"{two / one:.2f}×, {lost} lost"})  # fmt: skip
    return rows, panel


#: Benchmarks in the order they are shown, each turned into table rows and a panel.
BENCHMARKS: dict[str, Callable[[dict], tuple[list[Row], Panel]]] = {
    "fanout": fanout,
    "fanout_postgresql": fanout,
    "email": email,
    "engine": engine,
    "scaling": scaling,
    "receipts": receipts,
    "api": api,
    "statements": statements,
    "crash": crash,
    "search": search,
    "scaleout": scaleout,
}
