"""The driver's replay reads the recorded log, in-process against a real SQLite store."""

from __future__ import annotations

from pathlib import Path

from nascli.config import resolve
from nascli.driver.events import ASK_EVENT
from nascli.driver.step import Driver
from nascli.store import open_store


def test_an_ask_recorded_twice_by_a_retried_write_replays_once(tmp_path: Path) -> None:
    cfg = resolve(preset="synthetic-quick", project_file=None, env={})
    store = open_store(f"sqlite:///{tmp_path / 'nas.db'}", create=True)
    try:
        run = store.create_run("", cfg.run.strategy, "synthetic-quick", cfg.run.seed, cfg.model_dump(mode="json"))
        first = Driver(store, run, cfg)
        first.acquire()
        first.step()  # the initial population: one ask, queued, nothing evaluated (no workers)
        issued = sorted(p.key for p in first.strategy.outstanding)
        assert issued
        (ask,) = [e for e in store.events(run.id) if e.kind == ASK_EVENT]
        store.append_event(run.id, ASK_EVENT, ask.payload)  # what a retried, already-committed write leaves
        first.release()

        second = Driver(store, run, cfg)
        second.acquire()
        second.replay()
        assert sorted(p.key for p in second.strategy.outstanding) == issued
        assert store.queue_counts(run.id)["pending"] == len(issued)  # nothing queued twice
    finally:
        store.close()
