"""Search cost on digits: the island GA plain, with `train.stop_rule`, with `train.transfer`, with both,
and random search beside them, measured in training seconds.

    python benchmarks/search_cost.py                          # 2 seeds, 28 evaluations per run
    python benchmarks/search_cost.py --seeds 5 --budget 112   # digits-quick's budget for every variant
    python benchmarks/search_cost.py --seeds 5 --budget 112 --cheap-budget 224   # the cheaper variants
        # get twice the evaluations: compared at equal training seconds, not at equal evaluations

Each (variant, seed) is a real run of the `digits-quick` preset (island GA, 2 islands x 6; random:
`digits-random`) with its generations set so the run asks for `--budget` evaluations, driven
in-process by `nascli.driver.session.start_run` with `--workers` local `nas worker` processes, real
training, a fresh SQLite database per run. Variants: `plain` (the papers' setting), `stop-rule`
(below-worst, `--margin`, `--min-epochs`), `transfer` (train.transfer = parent, `--transfer-epochs`,
`--freeze-epochs`), `both`, and `random` (random search, no stop rule, no transfer).

Wall time on a shared machine is not the measure: the sum of the evaluations' own training seconds
is, as CPU seconds of the training (`extra.train_cpu_seconds`, one torch thread per worker; cache
hits counted once, at the evaluation that trained). Unlike wall seconds they leave out the time a
worker waits for a core; they still grow with the load where cores share caches and execution units
(hyperthreads), so variants are compared within one benchmark run, which interleaves them. Epochs
trained, a measure no load changes (blind to network size), are printed beside. The curve of a run:
after each finished evaluation, the cumulative training seconds and the best validation accuracy so
far among the children trained to the end (a stopped child is never a best), with its test accuracy.

Prints per variant the median over seeds of: training seconds, best validation / test accuracy,
children stopped, children that got weights, the training seconds at which the variant first reaches
the plain GA's final median best validation accuracy, the best test accuracy at the plain GA's
median training seconds, and the weights repository's size at the end. Writes
`benchmarks/results/search_cost.json` and `.png` after every run (`--parallel N` runs N at once; an
interrupted benchmark keeps the runs it finished).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import platform
import statistics
import subprocess
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from search_quality import PRESETS, accuracy_panels, config_for

RESULTS = Path(__file__).resolve().parent / "results"


VARIANTS = ["plain", "both", "transfer", "stop-rule", "random"]  # the target compares the first two


def variant_settings(variant: str, args: argparse.Namespace) -> list[str]:
    stop = ["train.stop_rule=below-worst", f"train.stop_margin={args.margin}",
            f"train.stop_min_epochs={args.min_epochs}"]
    transfer = ['train.transfer="parent"', f"train.transfer_epochs={args.transfer_epochs}",
                f"train.freeze_epochs={args.freeze_epochs}"]
    return {"plain": [], "random": [], "stop-rule": stop, "transfer": transfer, "both": stop + transfer}[variant]


def fitting_budget(strategy: str, budget: int, seed: int) -> int:
    """The largest budget up to `budget` that the strategy's generations can ask for exactly
    (random search asks 8 at a time, the island GA 2)."""
    for candidate in range(budget, 0, -1):
        try:
            config_for(strategy, candidate, seed, [])
        except (Exception, SystemExit):  # noqa: BLE001 - search_quality refuses a budget that does not fit
            continue
        return candidate
    raise SystemExit(f"no budget up to {budget} fits {strategy}")


def run_once(variant: str, seed: int, budget: int, settings: list[str], workers: int, directory: Path) -> dict:
    from nascli.driver.session import start_run
    from nascli.store import open_store

    strategy = "random" if variant == "random" else "island-ga"
    cfg = config_for(strategy, fitting_budget(strategy, budget, seed), seed, settings)
    db_url = f"sqlite:///{directory}/{variant}-{seed}.db"
    exit_code = start_run(cfg, db_url=db_url, workers=workers, preset=PRESETS[strategy])
    store = open_store(db_url)
    try:
        run_id = store.list_runs()[0].id
        finished = store.results(run_id)
        size = store.repository_size(run_id)
    finally:
        store.close()
    return {"variant": variant, "seed": seed, "exit_code": exit_code, "repository_models": size.models,
            "repository_bytes": size.bytes, **curve_of(finished)}


def curve_of(finished) -> dict:
    """Cumulative training seconds and the best (trained to the end) so far, per finished evaluation."""
    from nascli.stop_rule import started_from_transfer

    spent, best = 0.0, None
    seconds, val, test, epochs_curve = [], [], [], []
    stopped = trained = transferred = epochs = 0
    for item in finished:  # completion order
        result = item.result
        if "cached_from" not in result.extra:
            spent += result.extra.get("train_cpu_seconds", result.train_seconds or 0.0)
            epochs += result.epochs_run or 0  # a load-free measure beside the seconds
            trained += 1
            stopped += result.extra.get("stopped_at_epoch") is not None
            transferred += started_from_transfer(result.extra)
        to_the_end = item.status == "done" and result.extra.get("stopped_at_epoch") is None
        if to_the_end and result.val_accuracy is not None:
            key = (result.val_accuracy, -(result.params or 0))
            if best is None or key > best[0]:
                best = (key, result)
        seconds.append(round(spent, 3))
        epochs_curve.append(epochs)
        val.append(best[1].val_accuracy if best else None)
        test.append(best[1].test_accuracy if best else None)
    return {"train_seconds": round(spent, 3), "evaluations": len(finished), "trained": trained, "stopped": stopped,
            "transferred": transferred, "epochs": epochs,
            "seconds_curve": seconds, "epochs_curve": epochs_curve, "val_curve": val, "test_curve": test}


def seconds_to_reach(run: dict, target: float, spent: str = "seconds_curve") -> float | None:
    """Training seconds (or, with spent="epochs_curve", epochs: a measure the machine's load does not
    change) until the run's best reaches `target`; None: never."""
    return next((s for s, v in zip(run[spent], run["val_curve"]) if v is not None and v >= target), None)


def best_at(run: dict, seconds: float, curve: str) -> float | None:
    """The run's best (trained to the end) after at most `seconds` of training: its `curve` value
    (val_curve: its validation accuracy, test_curve: its test accuracy)."""
    known = [v for s, v in zip(run["seconds_curve"], run[curve]) if s <= seconds and v is not None]
    return known[-1] if known else None


def _median(values: list) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if len(present) == len(values) and present else None


def _median_reached(seconds: list[float | None]) -> float | None:
    """The median over seeds of the seconds to reach the target, a seed that never reached it
    counting as never (None when the median seed never reached it)."""
    median = statistics.median(math.inf if s is None else s for s in seconds)
    return None if math.isinf(median) else median


def summarise(runs: list[dict], variants: list[str]) -> tuple[list[dict], dict]:
    plain = [r for r in runs if r["variant"] == "plain"]
    plain_final = statistics.median(r["val_curve"][-1] for r in plain)
    plain_seconds = statistics.median(r["train_seconds"] for r in plain)
    plain_epochs = statistics.median(r["epochs"] for r in plain)
    rows = []
    print(f"\nmedian over seeds; target = the plain GA's final median best validation accuracy "
          f"({100 * plain_final:.2f} %), reached at the plain GA's median {plain_seconds:.0f} training s")
    print(f"{'variant':10} {'seeds':>5} {'train s':>8} {'epochs':>6} {'best val %':>10} {'its test %':>10} "
          f"{'stopped':>8} "
          f"{'transfer':>8} {'s to target':>14} {'share':>6} {'epoch share':>11} {'val@plain s':>11} "
          f"{'test@plain s':>12} {'repo kB':>8}")
    for variant in variants:
        mine = [r for r in runs if r["variant"] == variant]
        if not mine:
            continue
        reach = [seconds_to_reach(r, plain_final) for r in mine]
        reached = [s for s in reach if s is not None]
        row = {"variant": variant, "seeds": len(mine),
               "train_seconds": statistics.median(r["train_seconds"] for r in mine),
               "epochs": _median([r.get("epochs") for r in mine]),
               "best_val": statistics.median(r["val_curve"][-1] for r in mine),
               "best_test": statistics.median(r["test_curve"][-1] for r in mine),
               "stopped_fraction": sum(r["stopped"] for r in mine) / max(1, sum(r["trained"] for r in mine)),
               "transferred_fraction": sum(r["transferred"] for r in mine) / max(1, sum(r["trained"] for r in mine)),
               "seconds_to_target": _median_reached(reach),
               "epochs_to_target": (_median_reached([seconds_to_reach(r, plain_final, "epochs_curve") for r in mine])
                                    if all("epochs_curve" in r for r in mine) else None),
               "seeds_reaching_target": len(reached),
               "val_at_plain_seconds": _median([best_at(r, plain_seconds, "val_curve") for r in mine]),
               "test_at_plain_seconds": _median([best_at(r, plain_seconds, "test_curve") for r in mine]),
               "repository_kb": statistics.median(r["repository_bytes"] for r in mine) / 1024}
        row["share_of_plain_seconds"] = (row["seconds_to_target"] / plain_seconds
                                         if row["seconds_to_target"] is not None else None)
        row["share_of_plain_epochs"] = (row["epochs_to_target"] / plain_epochs
                                        if row["epochs_to_target"] is not None else None)
        rows.append(row)
        to_target = (f"{row['seconds_to_target']:.1f}" if row["seconds_to_target"] is not None else "never") + (
            f" {len(reached)}/{len(mine)}")
        share = f"{100 * row['share_of_plain_seconds']:.0f}%" if row["share_of_plain_seconds"] is not None else "-"
        test_then = (f"{100 * row['test_at_plain_seconds']:.2f}" if row["test_at_plain_seconds"] is not None else "-")
        val_then = (f"{100 * row['val_at_plain_seconds']:.2f}" if row["val_at_plain_seconds"] is not None else "-")
        epochs = f"{row['epochs']:.0f}" if row["epochs"] is not None else "-"
        epoch_share = (f"{100 * row['share_of_plain_epochs']:.0f}%" if row["share_of_plain_epochs"] is not None
                       else "-")
        print(f"{variant:10} {len(mine):5} {row['train_seconds']:8.1f} {epochs:>6} "
              f"{100 * row['best_val']:10.2f} "
              f"{100 * row['best_test']:10.2f} {100 * row['stopped_fraction']:7.0f}% "
              f"{100 * row['transferred_fraction']:7.0f}% {to_target:>14} {share:>6} {epoch_share:>11} "
              f"{val_then:>11} {test_then:>12} "
              f"{row['repository_kb']:8.0f}")
    return rows, {"plain_final_val": plain_final, "plain_seconds": plain_seconds, "plain_epochs": plain_epochs}


def targets(rows: list[dict], reference: dict) -> dict:
    """The issue's two targets for the combined variant."""
    by = {row["variant"]: row for row in rows}
    both, plain = by.get("both"), by.get("plain")
    if both is None or plain is None:
        return {}
    share = both["share_of_plain_seconds"]
    return {"both_reaches_plain_best_within_40_percent": share is not None and share <= 0.40,
            "both_share_of_plain_seconds": share,
            "both_test_at_equal_seconds_not_lower": (both["test_at_plain_seconds"] is not None
                                                     and both["test_at_plain_seconds"] >= plain["best_test"]),
            "both_test_at_plain_seconds": both["test_at_plain_seconds"], "plain_best_test": plain["best_test"]}


PLOT_FLOOR_PERCENT = 94
COLOURS = {"plain": "tab:blue", "stop-rule": "tab:orange", "transfer": "tab:green", "both": "tab:red",
           "random": "tab:gray"}


def plot(runs: list[dict], variants: list[str], path: Path) -> None:
    with accuracy_panels(path, "cumulative training CPU seconds",
                         val_title="best validation accuracy so far (trained to the end)") as axes:
        for axis in axes:
            axis.set_ylim(PLOT_FLOOR_PERCENT, 100)  # the runs differ in the last few percent
        for variant in variants:
            for index, run in enumerate(r for r in runs if r["variant"] == variant):
                points = [(s, v, t) for s, v, t in zip(run["seconds_curve"], run["val_curve"], run["test_curve"])
                          if v is not None]
                label = variant if index == 0 else None
                for axis, column in zip(axes, (1, 2)):
                    axis.step([p[0] for p in points], [100 * p[column] for p in points], where="post",
                              color=COLOURS[variant], label=label, alpha=0.8)


def write(args: argparse.Namespace, runs: list[dict], variants: list[str]) -> None:
    rows, reference = summarise(runs, variants)
    met = targets(rows, reference)
    print("targets:", json.dumps(met))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": "python benchmarks/search_cost.py " + " ".join(args.argv),
                                    "settings": {k: str(v) for k, v in vars(args).items() if k != "argv"},
                                    "commit": commit, "python": platform.python_version(), "reference": reference,
                                    "targets": met, "summary": rows, "runs": runs}, indent=1))
    plot(runs, variants, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}", flush=True)


def main() -> None:
    import sys

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=28, help="evaluations per run (2 x 6 initial + 2 per generation)")
    parser.add_argument("--cheap-budget", type=int, default=None,
                        help="evaluations per run of the stop-rule, transfer and both variants (default: --budget)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per variant: 0..N-1")
    parser.add_argument("--workers", type=int, default=2, help="local nas worker processes per run")
    parser.add_argument("--margin", type=float, default=0.0, help="train.stop_margin of the stop-rule variants")
    parser.add_argument("--min-epochs", type=int, default=2, help="train.stop_min_epochs of the stop-rule variants")
    parser.add_argument("--transfer-epochs", type=int, default=3, help="train.transfer_epochs of the transfer variants")
    parser.add_argument("--freeze-epochs", type=int, default=1, help="train.freeze_epochs of the transfer variants")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, from " + ",".join(VARIANTS))
    parser.add_argument("--out", type=Path, default=RESULTS / "search_cost.json")
    parser.add_argument("--parallel", type=int, default=1,
                        help="runs at once (the measure, CPU seconds of training, leaves out waiting for a core)")
    args = parser.parse_args()
    args.argv = sys.argv[1:]
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown or "plain" not in variants:
        parser.error(f"--variants: from {', '.join(VARIANTS)}, plain included (the reference)")
    runs: list[dict] = []
    jobs = [(variant, seed, args.budget if variant in ("plain", "random") else (args.cheap_budget or args.budget),
             variant_settings(variant, args), args.workers) for seed in range(args.seeds) for variant in variants]
    with (tempfile.TemporaryDirectory(prefix="nascli-search-cost-") as directory,
          ProcessPoolExecutor(args.parallel, mp_context=multiprocessing.get_context("spawn")) as pool):
        pending = [pool.submit(run_once, *job, Path(directory)) for job in jobs]
        for finished in as_completed(pending):
            run = finished.result()
            print(f"{run['variant']} seed {run['seed']}: {run['evaluations']} evaluations, "
                  f"{run['train_seconds']:.1f} training s, {run['epochs']} epochs, "
                  f"{run['stopped']} stopped, {run['transferred']} transferred, "
                  f"best val {run['val_curve'][-1]}", flush=True)
            runs.append(run)
            runs.sort(key=lambda r: (r["seed"], variants.index(r["variant"])))
            if any(r["variant"] == "plain" for r in runs):
                write(args, runs, variants)  # after every run: an interrupted benchmark keeps what it measured

if __name__ == "__main__":
    main()
