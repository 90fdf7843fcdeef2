"""The per-island and anytime curves are computed from rows as a researcher would read them."""

from __future__ import annotations

from nascli.report.curves import anytime_curve, island_curves


def individual(island, generation, accuracy, *, replaced=None, alive=True, operator="adjust", status="done"):
    return {"island": island, "generation": generation, "replaced_generation": replaced, "alive": alive,
            "operator": operator, "status": status, "val_accuracy": accuracy, "val_loss": None}


def test_island_curves_follow_the_population_and_mark_arrivals():
    rows = [individual(0, 0, 0.5, operator="init"), individual(0, 0, 0.7, operator="init", replaced=2, alive=False),
            individual(0, 1, 0.6, replaced=1, alive=False),  # rejected in its own generation
            individual(0, 2, 0.9), individual(0, 2, 0.95, operator="migration"),  # a migrant's copy arrives
            individual(1, 0, 0.4, operator="init"), individual(1, 1, None, status="failed")]
    first, second = island_curves(rows)
    assert first.generations == [0, 1, 2]
    assert first.best_so_far == [0.7, 0.7, 0.9]  # migrants are not the island's own finds
    assert first.median == [0.6, 0.6, 0.9]  # gen 2: 0.5, 0.9, 0.95 alive; 0.7 replaced
    assert first.arrivals == [2] and second.arrivals == []
    assert second.best_so_far == [0.4, 0.4] and second.median == [0.4, 0.4]


def test_anytime_curve_counts_trained_evaluations_and_hours_only():
    rows = [{"status": "done", "worker_id": "w1", "train_seconds": 1800.0, "val_accuracy": 0.5},
            {"status": "done", "worker_id": None, "train_seconds": 0.0, "val_accuracy": 0.5},  # cache hit
            {"status": "failed", "worker_id": "w2", "train_seconds": 900.0, "val_accuracy": None},
            {"status": "done", "worker_id": "w1", "train_seconds": 1800.0, "val_accuracy": 0.8}]
    curve = anytime_curve(rows)
    assert curve.evaluations == [1, 2, 3]
    assert curve.hours == [0.5, 0.75, 1.25]
    assert curve.best_so_far == [0.5, 0.5, 0.8]
