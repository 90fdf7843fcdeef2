"""Search quality on digits: best validation and test accuracy vs evaluations, per strategy.

    python benchmarks/search_quality.py                 # the issue's setting: 200 evaluations, 5 seeds
    python benchmarks/search_quality.py --quick         # 48 evaluations, 3 seeds (minutes, not an hour)
    python benchmarks/search_quality.py --budget 112 --seeds 5 --workers 2 --strategies island-ga random

Each (strategy, seed) is a real run: the strategy's `digits-*` preset with its generation count set
so that the run spends exactly `--budget` evaluations, driven in-process by `nascli.driver.session.start_run`
with `--workers` local `nas worker` processes, real training, a fresh SQLite database per run (no
cache shared between runs). A cache hit (a genome already evaluated in the run) counts as an
evaluation, as a failed one does: the budget is what the strategy asked for.

The curve of a run: after k evaluations (in completion order), the best individual so far by the
report's ranking (validation accuracy, then fewer parameters) — its validation accuracy and its
test accuracy. Selection never sees the test set; the test column is the honest figure.

Prints a table (median and min-max over seeds at a few budgets), writes
`benchmarks/results/search_quality.json` (every curve, the settings, timings) and
`benchmarks/results/search_quality.png` (median with min-max band).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
PRESETS = {  # strategy -> its quick digits preset
    "island-ga": "digits-quick",
    "regularized-evolution": "digits-regevo",
    "mu-plus-lambda": "digits-mu-plus-lambda",
    "nsga2": "digits-nsga2",
    "random": "digits-random",
    # Klos' GA without the switch to fewer parameters: accuracy is its only objective, as it is the
    # benchmark's. Not in the default set (the five strategies); --strategies picks it.
    "island-ga-accuracy": "digits-quick",
}
VARIANT_SETTINGS = {"island-ga-accuracy": ["fitness.threshold=none"]}
DEFAULT_STRATEGIES = [s for s in PRESETS if s not in VARIANT_SETTINGS]


def generations_for(cfg, budget: int) -> int:
    """The `ga.generations` that makes the strategy ask for exactly `budget` evaluations."""
    ga = cfg.ga
    strategy = cfg.run.strategy
    if strategy == "regularized-evolution":  # population random children, then one per generation
        per_generation, initial = 1, ga.population
    elif strategy == "nsga2":  # N initial, then N children per generation
        per_generation, initial = ga.population, ga.population
    else:  # island GA, mu+lambda, random: islands x (population + generations x offspring)
        per_generation, initial = ga.islands * ga.offspring_per_generation, ga.islands * ga.population
    generations, rest = divmod(budget - initial, per_generation)
    if rest or generations < 1:
        raise SystemExit(f"--budget {budget} does not fit {strategy}: {initial} initial + generations x "
                         f"{per_generation}; pick a budget that does (e.g. a multiple of 8 above 16)")
    return generations


def config_for(strategy: str, budget: int, seed: int, settings: list[str]):
    """The strategy's preset with `settings` (KEY=VALUE, as `nas run --set`) applied everywhere."""
    from nascli.config import resolve

    settings = [*VARIANT_SETTINGS.get(strategy, []), *settings]
    base = resolve(preset=PRESETS[strategy], overrides=settings, project_file=None, env={})
    overrides = [*settings, f"ga.generations={generations_for(base, budget)}", f"run.seed={seed}",
                 'cache.scope="run"', f'run.name="search-quality {strategy} seed {seed}"']
    return resolve(preset=PRESETS[strategy], overrides=overrides, project_file=None, env={})


def run_once(strategy: str, budget: int, seed: int, *, settings: list[str], workers: int, directory: Path) -> dict:
    from nascli.driver.session import start_run
    from nascli.store import open_store

    cfg = config_for(strategy, budget, seed, settings)
    db_url = f"sqlite:///{directory}/{strategy}-{seed}.db"
    started = time.perf_counter()
    exit_code = start_run(cfg, db_url=db_url, workers=workers, preset=PRESETS[strategy])
    seconds = time.perf_counter() - started
    store = open_store(db_url)
    try:
        run = store.list_runs()[0]
        finished = store.results(run.id)
    finally:
        store.close()
    return {"strategy": strategy, "seed": seed, "exit_code": exit_code, "seconds": seconds,
            "evaluations": len(finished), "failed": sum(f.status != "done" for f in finished),
            **best_so_far(finished)}


def best_so_far(finished) -> dict:
    """Per evaluation count k = 1..n: the best by (val accuracy, fewer params) among the first k."""
    best_key, best = None, None
    val_curve, test_curve, params_curve = [], [], []
    for item in finished:  # completion order (seq)
        result = item.result
        if item.status == "done" and result.val_accuracy is not None:
            key = (result.val_accuracy, -(result.params or 0))
            if best_key is None or key > best_key:
                best_key, best = key, item
        val_curve.append(best.result.val_accuracy if best else None)
        test_curve.append(best.result.test_accuracy if best else None)
        params_curve.append(best.result.params if best else None)
    return {"val_curve": val_curve, "test_curve": test_curve, "params_curve": params_curve,
            "best_genome": best.genome if best else None}


def spread(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def at(curve: list, k: int):
    return curve[min(k, len(curve)) - 1] if curve else None


def print_table(runs: list[dict], strategies: list[str], budget: int) -> list[dict]:
    checkpoints = sorted({max(1, budget // 4), budget // 2, budget})
    rows = []
    print("\nBest individual so far (by validation accuracy, then fewer params): median [min-max] over seeds, "
          "accuracy in %")
    header = f"{'strategy':22} {'evals':>5} {'best val':>22} {'its test':>22} {'its params':>11} {'wins*':>5}"
    print(header)
    random_test = {r["seed"]: at(r["test_curve"], budget) for r in runs if r["strategy"] == "random"}
    for strategy in strategies:
        mine = [r for r in runs if r["strategy"] == strategy]
        for k in checkpoints:
            vals = [at(r["val_curve"], k) for r in mine if at(r["val_curve"], k) is not None]
            tests = [at(r["test_curve"], k) for r in mine if at(r["test_curve"], k) is not None]
            params = [at(r["params_curve"], k) for r in mine if at(r["params_curve"], k) is not None]
            if not vals:
                continue
            v, t = spread(vals), spread(tests)
            wins = ""
            if k == budget and strategy != "random" and random_test:
                paired = [(at(r["test_curve"], k), random_test.get(r["seed"])) for r in mine]
                wins = f"{sum(a > b for a, b in paired if b is not None)}/{len(paired)}"
            rows.append({"strategy": strategy, "evaluations": k, "val_median": v[0], "val_min": v[1],
                         "val_max": v[2], "test_median": t[0], "test_min": t[1], "test_max": t[2],
                         "params_median": statistics.median(params), "seeds": len(vals)})
            print(f"{strategy:22} {k:5d} {100 * v[0]:7.2f} [{100 * v[1]:5.2f}-{100 * v[2]:6.2f}] "
                  f"{100 * t[0]:7.2f} [{100 * t[1]:5.2f}-{100 * t[2]:6.2f}] {statistics.median(params):11.0f} "
                  f"{wins:>5}")
    print("* seeds on which the strategy's best has a higher test accuracy than random search's best "
          "(same seed, same budget)")
    return rows


@contextmanager
def accuracy_panels(path: Path, xlabel: str, *, val_title: str = "best validation accuracy so far",
                    title: str | None = None) -> Iterator[Any]:
    """Two panels side by side for the caller to draw on: the best validation accuracy so far, and
    the test accuracy of that individual (in %, against `xlabel`); labelled and saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharex=True)
    try:
        yield axes
        axes[0].set_title(val_title)
        axes[1].set_title("test accuracy of that individual")
        for axis in axes:
            axis.set_xlabel(xlabel)
            axis.set_ylabel("accuracy (%)")
            axis.grid(alpha=0.3)
        axes[1].legend(loc="lower right")
        if title:
            figure.suptitle(title)
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=120)
    finally:
        plt.close(figure)


def plot(runs: list[dict], strategies: list[str], budget: int, path: Path, title: str) -> None:
    xs = list(range(1, budget + 1))
    lowest = 100.0  # y range: from the lowest band value after the first tenth of the budget
    with accuracy_panels(path, "evaluations", title=title) as axes:
        for strategy in strategies:
            mine = [r for r in runs if r["strategy"] == strategy]
            for axis, curve in zip(axes, ("val_curve", "test_curve")):
                points = []
                for k in xs:
                    values = [at(r[curve], k) for r in mine if at(r[curve], k) is not None]
                    points.append(spread(values) if values else None)
                kept = [(x, p) for x, p in zip(xs, points) if p is not None]
                if not kept:
                    continue
                x = [k for k, _ in kept]
                lowest = min([lowest] + [100 * p[1] for k, p in kept if k >= max(1, budget // 10)])
                line, = axis.plot(x, [100 * p[0] for _, p in kept], label=strategy)
                axis.fill_between(x, [100 * p[1] for _, p in kept], [100 * p[2] for _, p in kept],
                                  color=line.get_color(), alpha=0.15)
        for axis in axes:
            axis.set_ylim(max(0.0, lowest - 2), 100.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, help="evaluations per run (default 200, --quick 48)")
    parser.add_argument("--seeds", type=int, help="seeds per strategy: 0..N-1 (default 5, --quick 3)")
    parser.add_argument("--quick", action="store_true", help="48 evaluations x 3 seeds")
    parser.add_argument("--epochs", type=int, help="override train.epochs (default: the presets' 8)")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for every run, as `nas run --set` (repeatable), e.g. "
                             "task.val_fraction=0.25 or train.kfolds=3")
    parser.add_argument("--tag", help="name the outputs search_quality-TAG.json/.png (default: search_quality)")
    parser.add_argument("--workers", type=int, default=2, help="local worker processes per run")
    parser.add_argument("--strategies", nargs="+", choices=list(PRESETS), default=DEFAULT_STRATEGIES)
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON and PNG go")
    args = parser.parse_args()
    budget = args.budget or (48 if args.quick else 200)
    seeds = args.seeds or (3 if args.quick else 5)
    strategies = args.strategies
    settings = [*args.settings, *([f"train.epochs={args.epochs}"] if args.epochs is not None else [])]
    for strategy in strategies:  # refuse a budget or a setting that does not fit before spending an hour
        config_for(strategy, budget, 0, settings)

    runs = []
    total = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nascli-search-quality-") as tmp:
        for seed in range(seeds):  # seed-major: an interrupted benchmark still covers every strategy
            for strategy in strategies:
                run = run_once(strategy, budget, seed, settings=settings, workers=args.workers, directory=Path(tmp))
                runs.append(run)
                print(f"{strategy:22} seed {seed}: {run['evaluations']} evaluations ({run['failed']} failed) in "
                      f"{run['seconds']:.0f} s, best val {100 * (at(run['val_curve'], budget) or 0):.2f} %, "
                      f"its test {100 * (at(run['test_curve'], budget) or 0):.2f} %  {run['best_genome']}",
                      flush=True)
    total = time.perf_counter() - total
    rows = print_table(runs, strategies, budget)
    epochs = config_for(strategies[0], budget, 0, settings).train.epochs
    title = (f"digits, {budget} evaluations, {seeds} seeds, {epochs} epochs, {args.workers} workers"
             f"{' ' + ' '.join(args.settings) if args.settings else ''} (median, min-max band)")
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / ("search_quality" + (f"-{args.tag}" if args.tag else ""))
    plot(runs, strategies, budget, stem.with_suffix(".png"), title)
    report = {"budget": budget, "seeds": seeds, "epochs": epochs, "settings": settings, "workers": args.workers,
              "strategies": {s: [PRESETS[s], *VARIANT_SETTINGS.get(s, [])] for s in strategies}, "total_seconds": total,
              "machine": platform.platform(), "cpus": os.cpu_count(), "table": rows, "runs": runs}
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"\n{total / 60:.1f} min in all; wrote {stem.with_suffix('.json')} and {stem.with_suffix('.png')}")


if __name__ == "__main__":
    main()
