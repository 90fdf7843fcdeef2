"""The search's own curves, as a researcher reads a run (drawing only: `nascli.report.plots` writes
the files).

- `island_curves`: per island and generation, the best validation accuracy so far and the median
  of the living population, with the generations where migrants arrived marked.
- `anytime_curve`: the best validation accuracy so far against trained evaluations and against
  training hours (cache hits cost nothing and move neither axis).

The series are computed here from plain rows (pure, testable); `draw_*` turn them into figures.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nascli.metrics import value


@dataclass
class IslandCurve:
    island: int
    generations: list[int] = field(default_factory=list)
    best_so_far: list[float | None] = field(default_factory=list)
    median: list[float | None] = field(default_factory=list)
    arrivals: list[int] = field(default_factory=list)  # generations in which migrants arrived


def island_curves(rows: Sequence[Mapping[str, Any]], metric: str = "val_accuracy") -> list[IslandCurve]:
    """From `population_rows`: an individual is in its island's population at generation g when it
    was born there at or before g, its evaluation finished, and it was not replaced by g (a child
    the island rejected is replaced in its own generation, so it never counts)."""
    by_island: dict[int, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_island.setdefault(row["island"], []).append(row)
    curves = []
    for island in sorted(by_island):
        members = by_island[island]
        last = max(row["generation"] for row in members)
        curve = IslandCurve(island, arrivals=sorted({row["generation"] for row in members
                                                     if row["operator"] == "migration"}))
        best: float | None = None
        for generation in range(last + 1):
            alive = []
            for row in members:
                score = value(row, metric) if row["status"] == "done" else None
                if score is None or row["generation"] > generation:
                    continue
                if row["generation"] == generation and row["operator"] != "migration":
                    best = score if best is None else max(best, score)
                replaced = row["replaced_generation"]
                if replaced is None or replaced > generation or (replaced == generation and row["alive"]):
                    alive.append(score)
            curve.generations.append(generation)
            curve.best_so_far.append(best)
            curve.median.append(statistics.median(alive) if alive else None)
        curves.append(curve)
    return curves


@dataclass
class AnytimeCurve:
    evaluations: list[int] = field(default_factory=list)  # trained evaluations so far
    hours: list[float] = field(default_factory=list)  # training hours so far
    best_so_far: list[float] = field(default_factory=list)


def anytime_curve(rows: Sequence[Mapping[str, Any]], metric: str = "val_accuracy") -> AnytimeCurve:
    """From `progress` rows in completion order (status, worker_id, train_seconds, the metric)."""
    curve = AnytimeCurve()
    trained = 0
    seconds = 0.0
    best: float | None = None
    for row in rows:
        if row["worker_id"] is None:  # a cache hit: no training, the same result as before
            continue
        trained += 1
        seconds += float(row.get("train_seconds") or 0.0)
        score = value(row, metric) if row["status"] == "done" else None
        if score is not None and (best is None or score > best):
            best = score
        if best is not None:
            curve.evaluations.append(trained)
            curve.hours.append(seconds / 3600.0)
            curve.best_so_far.append(best)
    return curve


def draw_islands(plt, curves: Sequence[IslandCurve], title: str, metric: str = "val_accuracy"):
    fig, ax = plt.subplots(figsize=(9, 4.8))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    drawn = False
    for index, curve in enumerate(curves):
        colour = colours[index % len(colours)]
        xs = [g for g, b in zip(curve.generations, curve.best_so_far) if b is not None]
        if not xs:
            continue
        drawn = True
        ax.step(xs, [b for b in curve.best_so_far if b is not None], where="post", color=colour,
                label=f"island {curve.island}: best so far")
        median = [(g, m) for g, m in zip(curve.generations, curve.median) if m is not None]
        ax.plot([g for g, _ in median], [m for _, m in median], "--", color=colour, linewidth=1,
                label=f"island {curve.island}: population median")
        for generation in curve.arrivals:
            ax.axvline(generation, color=colour, alpha=0.25, linewidth=1)
        if curve.arrivals:
            at = {g: b for g, b in zip(curve.generations, curve.best_so_far)}
            ax.plot(curve.arrivals, [at.get(g) for g in curve.arrivals], "v", color=colour, markersize=6,
                    linestyle="none", label=f"island {curve.island}: migrants arrive")
    if drawn:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", borderaxespad=0)
    else:
        ax.text(0.5, 0.5, "no finished evaluations yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("generation")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return fig


def draw_anytime(plt, curve: AnytimeCurve, title: str, metric: str = "val_accuracy"):
    fig, (by_count, by_time) = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    for ax, xs, label in ((by_count, curve.evaluations, "trained evaluations"),
                          (by_time, curve.hours, "training hours (sum over workers)")):
        if xs:
            ax.step(xs, curve.best_so_far, where="post", color="tab:green")
        else:
            ax.text(0.5, 0.5, "no finished evaluations yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    by_count.set_ylabel(f"best {metric.replace('_', ' ')} so far")
    fig.suptitle(title)
    return fig
