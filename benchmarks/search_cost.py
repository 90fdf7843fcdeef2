"""Search cost on digits: the island GA plain vs with `train.stop_rule`, measured in training seconds.

    python benchmarks/search_cost.py                          # 2 seeds, 40 evaluations per run
    python benchmarks/search_cost.py --seeds 5 --budget 112   # the issue's setting (digits-quick's budget)

Each (variant, seed) is a real run of the `digits-quick` preset (island GA, 2 islands x 6) with its
generations set so the run asks for `--budget` evaluations, driven in-process by
`nascli.driver.session.start_run` with `--workers` local `nas worker` processes, real training, a fresh
SQLite database per run. Variants: `plain` (train.stop_rule = off, the papers' setting) and
`stop-rule` (below-worst, `--margin`, `--min-epochs`).

Wall time on a shared machine is not the measure: the sum of the evaluations' own training seconds
(`train_seconds`, cache hits counted once, at the evaluation that trained) is. The curve of a run:
after each finished evaluation, the cumulative training seconds and the best validation accuracy so
far among the children trained to the end (a stopped child is never a best), with its test accuracy.

Prints per variant the median over seeds of: training seconds, best validation / test accuracy,
children stopped, and the training seconds at which the variant first reaches the plain GA's final
median best validation accuracy. Writes `benchmarks/results/search_cost.json` and `.png`.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import tempfile
from pathlib import Path

from search_quality import accuracy_panels, config_for

RESULTS = Path(__file__).resolve().parent / "results"


def variant_settings(variant: str, margin: float, min_epochs: int) -> list[str]:
    if variant == "plain":
        return []
    return ["train.stop_rule=below-worst", f"train.stop_margin={margin}", f"train.stop_min_epochs={min_epochs}"]


def run_once(variant: str, seed: int, budget: int, settings: list[str], workers: int, directory: Path) -> dict:
    from nascli.driver.session import start_run
    from nascli.store import open_store

    cfg = config_for("island-ga", budget, seed, settings)
    db_url = f"sqlite:///{directory}/{variant}-{seed}.db"
    exit_code = start_run(cfg, db_url=db_url, workers=workers, preset="digits-quick")
    store = open_store(db_url)
    try:
        finished = store.results(store.list_runs()[0].id)
    finally:
        store.close()
    return {"variant": variant, "seed": seed, "exit_code": exit_code, **curve_of(finished)}


def curve_of(finished) -> dict:
    """Cumulative training seconds and the best (trained to the end) so far, per finished evaluation."""
    spent, best = 0.0, None
    seconds, val, test = [], [], []
    stopped = trained = 0
    for item in finished:  # completion order
        result = item.result
        if "cached_from" not in result.extra:
            spent += result.train_seconds or 0.0
            trained += 1
            stopped += "stopped_at_epoch" in result.extra
        to_the_end = item.status == "done" and "stopped_at_epoch" not in result.extra
        if to_the_end and result.val_accuracy is not None:
            key = (result.val_accuracy, -(result.params or 0))
            if best is None or key > best[0]:
                best = (key, result)
        seconds.append(round(spent, 3))
        val.append(best[1].val_accuracy if best else None)
        test.append(best[1].test_accuracy if best else None)
    return {"train_seconds": round(spent, 3), "evaluations": len(finished), "trained": trained, "stopped": stopped,
            "seconds_curve": seconds, "val_curve": val, "test_curve": test}


def seconds_to_reach(run: dict, target: float) -> float | None:
    return next((s for s, v in zip(run["seconds_curve"], run["val_curve"]) if v is not None and v >= target), None)


def summarise(runs: list[dict], variants: list[str]) -> list[dict]:
    plain_final = statistics.median(r["val_curve"][-1] for r in runs if r["variant"] == "plain")
    rows = []
    print(f"\nmedian over seeds; target = the plain GA's final median best validation accuracy "
          f"({100 * plain_final:.2f} %)")
    print(f"{'variant':10} {'train s':>8} {'best val %':>10} {'its test %':>10} {'stopped':>9} {'s to target':>12}")
    for variant in variants:
        mine = [r for r in runs if r["variant"] == variant]
        reach = [seconds_to_reach(r, plain_final) for r in mine]
        reached = [s for s in reach if s is not None]
        row = {"variant": variant, "seeds": len(mine),
               "train_seconds": statistics.median(r["train_seconds"] for r in mine),
               "best_val": statistics.median(r["val_curve"][-1] for r in mine),
               "best_test": statistics.median(r["test_curve"][-1] for r in mine),
               "stopped_fraction": sum(r["stopped"] for r in mine) / max(1, sum(r["trained"] for r in mine)),
               "seconds_to_target": statistics.median(reached) if len(reached) == len(mine) else None,
               "seeds_reaching_target": len(reached)}
        rows.append(row)
        to_target = f"{row['seconds_to_target']:.1f}" if row["seconds_to_target"] is not None else (
            f"{len(reached)}/{len(mine)} seeds")
        print(f"{variant:10} {row['train_seconds']:8.1f} {100 * row['best_val']:10.2f} {100 * row['best_test']:10.2f} "
              f"{100 * row['stopped_fraction']:8.0f}% {to_target:>12}")
    return rows


def plot(runs: list[dict], variants: list[str], path: Path) -> None:
    with accuracy_panels(path, "cumulative training seconds",
                         val_title="best validation accuracy so far (trained to the end)") as axes:
        for variant, colour in zip(variants, ("tab:blue", "tab:orange")):
            for index, run in enumerate(r for r in runs if r["variant"] == variant):
                points = [(s, v, t) for s, v, t in zip(run["seconds_curve"], run["val_curve"], run["test_curve"])
                          if v is not None]
                label = variant if index == 0 else None
                for axis, column in zip(axes, (1, 2)):
                    axis.step([p[0] for p in points], [100 * p[column] for p in points], where="post",
                              color=colour, label=label)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=40, help="evaluations per run (2 x 6 initial + 2 per generation)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per variant: 0..N-1")
    parser.add_argument("--workers", type=int, default=2, help="local nas worker processes per run")
    parser.add_argument("--margin", type=float, default=0.0, help="train.stop_margin of the stop-rule variant")
    parser.add_argument("--min-epochs", type=int, default=2, help="train.stop_min_epochs of the stop-rule variant")
    parser.add_argument("--out", type=Path, default=RESULTS / "search_cost.json")
    args = parser.parse_args()
    variants = ["plain", "stop-rule"]
    runs = []
    with tempfile.TemporaryDirectory(prefix="nascli-search-cost-") as directory:
        for seed in range(args.seeds):
            for variant in variants:
                run = run_once(variant, seed, args.budget, variant_settings(variant, args.margin, args.min_epochs),
                               args.workers, Path(directory))
                print(f"{variant} seed {seed}: {run['evaluations']} evaluations, "
                      f"{run['train_seconds']:.1f} training s, "
                      f"{run['stopped']} stopped, best val {run['val_curve'][-1]}", flush=True)
                runs.append(run)
    rows = summarise(runs, variants)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"settings": {k: str(v) for k, v in vars(args).items()}, "commit": commit,
                                    "python": platform.python_version(), "summary": rows, "runs": runs}, indent=1))
    plot(runs, variants, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
