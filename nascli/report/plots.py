"""PNG plots for `nas report --plot DIR` (matplotlib, Agg backend, imported only when plotting)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from nascli.report.model import GenerationRow, ParetoReport, ProgressPoint, TracePoint
from nascli.safe_files import atomic_writer

DPI = 120


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)  # never needs a display; safe in workers and CI
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, force: bool) -> Path:
    import matplotlib.pyplot as plt

    try:
        fig.tight_layout()
        with atomic_writer(path, force=force) as handle:
            fig.savefig(handle, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    return path


def _empty(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="gray")


def plot_generations(rows: Sequence[GenerationRow], path: Path, title: str, *, force: bool = False) -> Path:
    """Klos Fig. 5: per generation the maximum train (blue dotted), validation (green dash-dotted) and test
    (black solid) accuracy, the mean validation accuracy (black dashed) and its standard deviation (gray)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    x = [row.generation for row in rows]

    def series(name: str):
        return [getattr(row, name) if getattr(row, name) is not None else float("nan") for row in rows]

    if rows:
        ax.plot(x, series("train_accuracy_max"), ":", color="tab:blue", label="max train")
        ax.plot(x, series("val_accuracy_max"), "-.", color="tab:green", label="max validation")
        ax.plot(x, series("test_accuracy_max"), "-", color="black", label="max test")
        mean, std = series("val_accuracy_mean"), series("val_accuracy_std")
        ax.plot(x, mean, "--", color="black", linewidth=0.8, label="mean validation")
        ax.fill_between(x, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                        color="gray", alpha=0.3, linewidth=0, label="± std")
        ax.legend(loc="lower right", fontsize="small")
    else:
        _empty(ax, "no finished evaluations yet")
    ax.set_xlabel("generation")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _save(fig, path, force)


def front_labels(report: ParetoReport) -> list[tuple[float, float, str]]:
    """(x, y, label) of each front point as plot_pareto draws it: cost on x, the first objective on
    y, labelled with the individual id the report's Pareto table shows and `nas export --individual`
    takes (an evaluation without an individual: e<evaluation id>)."""
    x_name, y_name = report.objectives[1], report.objectives[0]
    return [(point.objectives[x_name], point.objectives[y_name],
             f"#{point.individual_id}" if point.individual_id is not None else f"e{point.evaluation_id}")
            for point in sorted(report.front, key=lambda point: point.objectives[x_name])]


def plot_pareto(report: ParetoReport, cloud: Sequence[Mapping[str, float]], path: Path, title: str, *,
                force: bool = False) -> Path:
    """The first two objectives: every evaluation in gray, the non-dominated front in red, each front
    point labelled with its individual id."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    x_name, y_name = report.objectives[1], report.objectives[0]  # cost on x, accuracy on y (the usual picture)
    if cloud:
        ax.scatter([p[x_name] for p in cloud], [p[y_name] for p in cloud], s=8, color="lightgray", label="evaluated")
    if report.front:
        front = sorted(report.front, key=lambda point: point.objectives[x_name])
        ax.step([p.objectives[x_name] for p in front], [p.objectives[y_name] for p in front], where="post",
                color="tab:red", marker="o", markersize=4, label="Pareto front (individual ids)")
        for index, (x, y, label) in enumerate(front_labels(report)):
            # alternate above/below so neighbouring labels on a dense front do not overlap
            ax.annotate(label, (x, y), xytext=(3, 5 if index % 2 == 0 else -10), textcoords="offset points",
                        fontsize="x-small", color="tab:red")
        ax.legend(loc="lower right", fontsize="small")
    else:
        _empty(ax, "no finished evaluations yet")
    if x_name in ("params", "flops") and cloud and min(p[x_name] for p in cloud) > 0:
        ax.set_xscale("log")
    ax.set_xlabel(x_name)
    ax.set_ylabel(y_name)
    hv = "" if report.hypervolume is None else f" — hypervolume {report.hypervolume:.4f}"
    ax.set_title(title + hv)
    ax.grid(alpha=0.3)
    return _save(fig, path, force)


def plot_worker_trace(trace: Sequence[TracePoint], path: Path, title: str, *, force: bool = False) -> Path:
    """One row per worker, one bar per evaluation from start to end (seed 004's trace); failures in red."""
    plt = _pyplot()
    workers = sorted({point.worker_id for point in trace})
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.35 * len(workers) + 1.5)))
    if trace:
        origin = min(point.started_at for point in trace)
        row_of = {worker: index for index, worker in enumerate(workers)}
        for status, colour in (("done", "tab:green"), ("failed", "tab:red")):
            bars = [((p.started_at - origin).total_seconds(), max((p.finished_at - p.started_at).total_seconds(), 1e-3),
                     row_of[p.worker_id]) for p in trace if (p.status == "done") == (status == "done")]
            for start, width, row in bars:
                ax.broken_barh([(start, width)], (row - 0.4, 0.8), facecolors=colour, edgecolors="white",
                               linewidth=0.3)
            ax.plot([], [], color=colour, linewidth=6, label=status)
        ax.set_yticks(range(len(workers)))
        ax.set_yticklabels(workers, fontsize="x-small")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", borderaxespad=0)  # beside the bars
    else:
        _empty(ax, "no finished evaluations yet")
    ax.set_xlabel("seconds since the first evaluation started")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path, force)


def plot_island_curves(curves, path: Path, title: str, *, force: bool = False) -> Path:
    """Per island: best validation accuracy so far, population median, migrant arrivals (report.curves)."""
    from nascli.report.curves import draw_islands

    return _save(draw_islands(_pyplot(), curves, title), path, force)


def plot_anytime(curve, path: Path, title: str, *, force: bool = False) -> Path:
    """Best validation accuracy so far against trained evaluations and training hours (report.curves)."""
    from nascli.report.curves import draw_anytime

    return _save(draw_anytime(_pyplot(), curve, title), path, force)


def plot_compare(progress: Mapping[str, Sequence[ProgressPoint]], metric: str, path: Path, title: str, *,
                 force: bool = False) -> Path:
    """Best value so far (validation accuracy, or hypervolume) against the number of finished evaluations."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    drawn = 0
    for run_id, points in progress.items():
        xs = [p.evaluations for p in points if getattr(p, metric) is not None]
        ys = [getattr(p, metric) for p in points if getattr(p, metric) is not None]
        if xs:
            ax.step(xs, ys, where="post", label=run_id)
            drawn += 1
    if drawn:
        ax.legend(loc="lower right", fontsize="small")
    else:
        _empty(ax, "no finished evaluations yet")
    ax.set_xlabel("finished evaluations")
    ax.set_ylabel(f"best {metric.replace('best_', '').replace('_', ' ')} so far")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _save(fig, path, force)
