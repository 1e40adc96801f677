"""Draw docs/bench/results.png and write docs/bench/results.md from docs/bench/results.json:
for each benchmark there, Herald against its baseline (or its budget), the DESIGN.md target and
whether it is met. Benchmarks missing from the JSON are left out.

    python -m bench.chart
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import ROOT, cpu_model

RESULTS = ROOT / "docs" / "bench"
BASELINE, MET, MISSED, PART = "#9aa5b1", "#2e8540", "#d4651c", "#c9d7e3"


@dataclass
class Row:
    """One line of the results table."""

    figure: str
    measured: str
    target: str
    met: bool


@dataclass
class Panel:
    """One chart: bars (label, value, colour), the target as a horizontal line, and a note
    above any bar (by index)."""

    title: str
    unit: str
    bars: list[tuple[str, float, str]]
    target: float
    target_label: str
    notes: dict[int, str] = field(default_factory=dict)


def _db(figures: dict) -> str:
    return {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(figures.get("backend"), "")


def _with(*parts) -> str:
    """The parts that are known, in brackets after a space ("" when none is)."""
    known = [str(part) for part in parts if part]
    return f" ({', '.join(known)})" if known else ""


def _colour(met: bool) -> str:
    return MET if met else MISSED


def fanout(f: dict) -> tuple[list[Row], Panel]:
    from bench.fanout import budget as fanout_budget

    budget = fanout_budget(f.get("backend", "sqlite"), f["contacts"])
    met = f["total"] <= budget
    row = Row(
        f"broadcast fan-out, {f['contacts']:,} contacts{_with(_db(f))}",
        f"{f['total']:.1f} s",
        f"≤ {budget:g} s",
        met,
    )
    names = (
        ("plan", "resolve", "insert", "enqueue")
        if "insert" in f
        else ("resolve", "insert+cursor", "enqueue")
    )
    phases = [(name, f[name], PART) for name in names]
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
    met = f["ratio"] >= 0.70
    connections = f.get("connections") and f"{f['connections']} connections"
    processes = f.get("worker_processes") and f"{f['worker_processes']} worker processes"
    row = Row(
        f"email end to end / raw smtplib{_with(connections, _db(f), processes)}",
        f"{f['herald_per_s']:,.0f} / {f['smtplib_per_s']:,.0f} msg/s = {f['ratio']:.2f}×",
        "≥ 0.70×",
        met,
    )
    panel = Panel(
        f"Email, {f['messages']:,} messages",
        "messages/s",
        [
            ("raw smtplib", f["smtplib_per_s"], BASELINE),
            ("Herald", f["herald_per_s"], _colour(met)),
        ],
        0.70 * f["smtplib_per_s"],
        "target 0.70×",
        {1: f"{f['ratio']:.2f}×"},
    )
    return [row], panel


def engine(f: dict) -> tuple[list[Row], Panel]:
    workers = f"{f['processes']} worker processes × {f['threads']} threads"
    rows, bars, notes = [], [("no-op actor", f["noop_per_s"], BASELINE)], {}
    for channel, label in (("inapp", "in-app"), ("webhook", "webhook")):
        ratio = f[f"{channel}_ratio"]
        rows.append(
            Row(
                f"{label} end to end / no-op Dramatiq actor{_with(workers, _db(f))}",
                f"{f[f'{channel}_per_s']:,.0f} / {f['noop_per_s']:,.0f} msg/s = {ratio:.2f}×",
                "≥ 0.50×",
                ratio >= 0.50,
            )
        )
        notes[len(bars)] = f"{ratio:.2f}×"
        bars.append((f"Herald {label}", f[f"{channel}_per_s"], _colour(ratio >= 0.50)))
    title = f"Engine, {f['messages']:,} messages each"
    return rows, Panel(title, "messages/s", bars, 0.50 * f["noop_per_s"], "target 0.50×", notes)


def api(f: dict) -> tuple[list[Row], Panel]:
    hello, herald = f["hello"], f["herald"]
    met = f["ratio"] >= 0.40 and herald["p99_ms"] <= 50
    clients = f.get("clients") and f"{f['clients']} clients"
    workers = f.get("web_workers") and f"{f['web_workers']} gunicorn workers"
    row = Row(
        f"API accept / hello world{_with(clients, workers)}",
        f"{herald['requests_per_second']:,.0f} / {hello['requests_per_second']:,.0f} req/s"
        f" = {f['ratio']:.2f}×; p99 {herald['p99_ms']:.0f} ms",
        "≥ 0.40×; p99 ≤ 50 ms",
        met,
    )
    panel = Panel(
        "API accept, single-recipient POST",
        "requests/s",
        [
            ("hello world", hello["requests_per_second"], BASELINE),
            ("POST /v1/notifications", herald["requests_per_second"], _colour(met)),
        ],
        0.40 * hello["requests_per_second"],
        "target 0.40×",
        {1: f"{f['ratio']:.2f}×, p99 {herald['p99_ms']:.0f} ms"},
    )
    return [row], panel


def crash(f: dict) -> tuple[list[Row], Panel]:
    in_flight = sum(f["in_flight"])
    met = f["lost"] == 0 and f["duplicates"] <= in_flight
    processes = f.get("worker_processes") and f"of {f['worker_processes']} worker processes"
    kills = f"{f['kills']} kills {processes or ''}".strip()
    row = Row(
        f"crash safety ({f['messages']:,} emails, {kills})",
        f"{f['lost']} lost; {f['duplicates']} duplicates vs {in_flight} in flight",
        "0 lost; duplicates ≤ in flight",
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
    p95 = f["p95_ms"]
    met = max(p95.values()) <= 100
    row = Row(
        f"history search p95, {f['messages']:,} messages{_with(_db(f))}",
        f"{min(p95.values()):.1f}–{max(p95.values()):.0f} ms",
        "≤ 100 ms",
        met,
    )
    bars = [
        (name.replace(" as ", "\nas "), value, _colour(value <= 100)) for name, value in p95.items()
    ]
    panel = Panel(
        f"History search p95, {f['messages']:,} messages", "ms", bars, 100, "target 100 ms"
    )
    return [row], panel


#: Benchmarks in the order they are shown, each turned into table rows and a panel.
BENCHMARKS: dict[str, Callable[[dict], tuple[list[Row], Panel]]] = {
    "fanout": fanout,
    "fanout_postgresql": fanout,
    "email": email,
    "engine": engine,
    "api": api,
    "crash": crash,
    "search": search,
}


def when_and_where(results: dict) -> tuple[str, str]:
    """The days measured ("2026-11-23" or a range) and the machine ("2 CPUs, <model>")."""
    days = sorted({figures["measured"][:10] for figures in results.values()})
    cpus = sorted({str(figures.get("cpus", "?")) for figures in results.values()})
    models = sorted({figures.get("cpu") or cpu_model() for figures in results.values()})
    day = days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"
    return day, f"{'/'.join(cpus)} CPUs, {'; '.join(models)}"


def draw(panels: list[Panel], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(max(5.2 * columns, 7), 4.2 * rows + 0.4), squeeze=False
    )
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        draw_panel(ax, panel)
    figure.suptitle(title, fontsize=12)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def draw_panel(ax, panel: Panel) -> None:
    labels = [label for label, _, _ in panel.bars]
    values = [value for _, value, _ in panel.bars]
    bars = ax.bar(labels, values, color=[colour for _, _, colour in panel.bars])
    ax.bar_label(bars, labels=[_short(v) for v in values], padding=2, fontsize=8)
    line = ax.axhline(panel.target, color="#b10e1e", linestyle="--", linewidth=1.2)
    ax.legend([line], [panel.target_label], loc="upper right", fontsize=8, frameon=False)
    ax.set_ylim(0, max([*values, panel.target]) * 1.35 or 1)
    for index, note in panel.notes.items():
        ax.annotate(
            note, (index, values[index]), xytext=(0, 14), textcoords="offset points",
            ha="center", fontsize=9, fontweight="bold",
        )  # fmt: skip
    ax.set_title(panel.title, fontsize=10)
    ax.set_ylabel(panel.unit)
    ax.tick_params(axis="x", labelsize=8, rotation=20 if len(labels) > 4 else 0)


def _short(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def markdown(rows: list[Row], day: str, machine: str, png: str = "results.png") -> str:
    lines = [
        "# Benchmark results",
        "",
        f'Measured {day} on {machine}, by `make bench` (see the README, "Performance"); '
        "targets from DESIGN.md. Drawn from `results.json` by `python -m bench.chart`.",
        "",
        f"![Herald against each baseline and target]({png})",
        "",
        "| figure | measured | target | met? |",
        "|---|---|---|---|",
        *(f"| {r.figure} | {r.measured} | {r.target} | {'yes' if r.met else 'no'} |" for r in rows),
    ]
    return "\n".join(lines) + "\n"


README = RESULTS.parents[1] / "README.md"
START, END = "<!-- bench:start (make bench writes this part) -->", "<!-- bench:end -->"


def update_readme(rows: list[Row], day: str, machine: str, png: str) -> bool:
    """Put the chart and the table between the README's bench markers; False without them."""
    text = README.read_text()
    if START not in text or END not in text:
        return False
    table = [
        f"Measured {day} on {machine} by `make bench`; each ratio against its baseline in the "
        "same run.",
        "",
        f"![Herald against each baseline and target]({png})",
        "",
        "| figure | measured | target | met? |",
        "|---|---|---|---|",
        *(f"| {r.figure} | {r.measured} | {r.target} | {'yes' if r.met else 'no'} |" for r in rows),
    ]
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    README.write_text(head + START + "\n" + "\n".join(table) + "\n" + END + tail)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description="Chart and table of docs/bench/results.json")
    parser.add_argument(
        "--results", type=Path, default=RESULTS / "results.json",
        help="figures to draw; results.png and results.md are written beside it",
    )  # fmt: skip
    args = parser.parse_args()
    results = json.loads(args.results.read_text()) if args.results.exists() else {}
    present = {name: results[name] for name in BENCHMARKS if name in results}
    if not present:
        raise SystemExit(f"no benchmark figures in {args.results}: run make bench first")
    rows, panels = [], []
    for name, figures in present.items():
        more_rows, panel = BENCHMARKS[name](figures)
        rows += more_rows
        panels.append(panel)
    day, machine = when_and_where(present)
    png = args.results.with_suffix(".png")
    table = markdown(rows, day, machine, png.name)
    draw(panels, f"Herald benchmarks, {day}\n{machine}", png)
    args.results.with_suffix(".md").write_text(table)
    print(table)
    print(f"drew {png} ({', '.join(present)})")
    if update_readme(rows, day, machine, str(png.relative_to(README.parent))):
        print(f"updated the table in {README.name}")


if __name__ == "__main__":
    main()
