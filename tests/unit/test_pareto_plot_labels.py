"""The Pareto front plot of `nas report --plot` labels every front point with the id the report's
Pareto table shows (so a point on the picture can be looked up and exported)."""

from __future__ import annotations

from pathlib import Path

from nascli.report import plots
from nascli.report.model import ParetoPoint, ParetoReport


def point(individual_id, evaluation_id, accuracy, params):
    return ParetoPoint(individual_id=individual_id, evaluation_id=evaluation_id, genome="In_8_8:D_10", island=0,
                       generation=1, objectives={"val_accuracy": accuracy, "params": params})


def test_every_front_point_is_labelled_with_its_individual_id(tmp_path: Path, monkeypatch) -> None:
    report = ParetoReport(objectives=["val_accuracy", "params"], senses=["max", "min"],
                          reference={"val_accuracy": 0.0, "params": 1e6}, hypervolume=0.5, evaluated=5,
                          front=[point(7, 70, 0.9, 5000), point(3, 30, 0.6, 800), point(None, 9, 0.95, 20000)])
    cloud = [{"val_accuracy": 0.5, "params": 3000}, *({"val_accuracy": p.objectives["val_accuracy"],
                                                       "params": p.objectives["params"]} for p in report.front)]
    drawn: list[tuple[str, tuple[float, float]]] = []
    save = plots._save

    def capture(fig, path, force):
        drawn.extend((text.get_text(), tuple(text.xy)) for text in fig.axes[0].texts)
        return save(fig, path, force)

    monkeypatch.setattr(plots, "_save", capture)
    path = plots.plot_pareto(report, cloud, tmp_path / "pareto.png", "run: Pareto front")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert drawn == [("#3", (800, 0.6)), ("#7", (5000, 0.9)), ("e9", (20000, 0.95))]  # cost order, as drawn
