"""Draw docs/bench/results.png and write docs/bench/results.md from docs/bench/results.json:
for each benchmark there, Herald against its baseline (or its budget), the DESIGN.md target
(bench/targets.py) and whether it is met; the rows and panels come from bench/chart_rows.py.
Benchmarks missing from the JSON are left out.

    python -m bench.chart
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from bench.chart_rows import BENCHMARKS, Panel, Row
from bench.harness import ROOT, cpu_model

RESULTS = ROOT / "docs" / "bench"


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
    if panel.target is not None:
        line = ax.axhline(panel.target, color="#b10e1e", linestyle="--", linewidth=1.2)
        ax.legend([line], [panel.target_label], loc="upper right", fontsize=8, frameon=False)
    ax.set_ylim(0, max([*values, panel.target or 0]) * 1.35 or 1)
    for index, note in panel.notes.items():
        ax.annotate(
            note, (index, values[index]), xytext=(0, 14), textcoords="offset points",
            ha="center", fontsize=9, fontweight="bold",
        )  # fmt: skip
    ax.set_title(panel.title, fontsize=10)
    ax.set_ylabel(panel.unit)
    ax.tick_params(axis="x", labelsize=8, rotation=_rotation(len(labels)))


def _rotation(bars: int) -> int:
    return 90 if bars > 8 else 20 if bars > 4 else 0


def _short(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def table_lines(rows: list[Row]) -> list[str]:
    """The table's lines below its header: met "yes"/"no", "—" for a figure without target."""
    met = {True: "yes", False: "no", None: "—"}
    return [f"| {r.figure} | {r.measured} | {r.target} | {met[r.met]} |" for r in rows]


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
        *table_lines(rows),
    ]
    return "\n".join(lines) + "\n"


README = RESULTS.parents[1] / "README.md"
START, END = "<!-- bench:start (make bench writes this part) -->", "<!-- bench:end -->"


def update_readme(rows: list[Row], day: str, machine: str, png: str, readme: Path = README) -> bool:
    """Put the chart and the table between the README's bench markers; False without them."""
    text = readme.read_text()
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
        *table_lines(rows),
    ]
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    readme.write_text(head + START + "\n" + "\n".join(table) + "\n" + END + tail)
    return True


def rows_and_panels(results: dict) -> tuple[list[Row], list[Panel]]:
    """The table's rows and the chart's panels for the benchmarks in ``results``, in order."""
    rows, panels = [], []
    for name, make in BENCHMARKS.items():
        if name in results:
            more_rows, panel = make(results[name])
            rows += more_rows
            panels.append(panel)
    return rows, panels


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Chart and table of docs/bench/results.json")
    parser.add_argument(
        "--results", type=Path, default=RESULTS / "results.json",
        help="figures to draw; results.png and results.md are written beside it (the README's "
        "table is rewritten only for the default, docs/bench/results.json)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text()) if args.results.exists() else {}
    present = {name: results[name] for name in BENCHMARKS if name in results}
    if not present:
        raise SystemExit(f"no benchmark figures in {args.results}: run make bench first")
    rows, panels = rows_and_panels(present)
    day, machine = when_and_where(present)
    png = args.results.with_suffix(".png")
    table = markdown(rows, day, machine, png.name)
    draw(panels, f"Herald benchmarks, {day}\n{machine}", png)
    args.results.with_suffix(".md").write_text(table)
    print(table)
    print(f"drew {png} ({', '.join(present)})")
    published = args.results.resolve() == (RESULTS / "results.json").resolve()
    if published and update_readme(rows, day, machine, str(png.relative_to(README.parent))):
        print(f"updated the table in {README.name}")


if __name__ == "__main__":
    main()
