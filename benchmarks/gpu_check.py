"""GPU check: does nascli's GPU path work on this machine, and how fast is it?

Run it on a machine with a GPU (no dataset download: the data are synthetic, CIFAR-10-shaped):

    python benchmarks/gpu_check.py [--out gpu_check.json] [--train-samples 20000]

Steps, each recorded as passed / failed with what was seen:
1. `worker_gpus_all`: a real `nas worker --gpus all` on a fresh SQLite database trains two tasks per
   GPU (3x32x32 images, 10 classes); every task must end `done`, trained on `cuda:0` of its own
   CUDA_VISIBLE_DEVICES, with a recorded precision.
2. `bf16`: one evaluation with `train.amp = "bf16"` (fp16 where the GPU has no bf16) ends `done`
   with finite losses and `extra.precision` saying so.
3. `device_fault`: a real `nas worker` on GPU 0 with NASCLI_INJECT_DEVICE_FAULT=all (a real
   device-side assert in its first evaluation) must exit 71 and leave the task `pending` with no
   attempt spent.
4. `oom_retry`: a wide genome's peak memory is measured, the allocator is then capped below it
   (`torch.cuda.set_per_process_memory_fraction`), and the same evaluation must hit a real
   out-of-memory and succeed on the retry with half the micro-batch (`extra.oom_retry`).
5. `throughput`: a fixed set of CIFAR-10 genomes in Klos' grammar (benchmarks/report_speed.py's four
   and a VGG-like one after cifar10-config9's seed), trained with the cifar10-island5 preset's settings for 2 epochs on
   `--train-samples` synthetic images, fp32 (`amp = "off"`) then `amp = "auto"`. Printed: seconds
   per epoch, evaluations per GPU-hour if every evaluation ran the preset's full 100 epochs on
   CIFAR-10's 45,455 training images (an upper bound on time: early stopping ends most sooner),
   and the share of time the GPU was busy (NVML utilisation sampled every 0.2 s).
Finishes within 5 minutes on one GPU; writes JSON; exits 1 if any step failed. Without a GPU it
says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nascli.devices import EXIT_DEVICE_FAULT, INJECT_FAULT_ENV, visible_gpu_count

CIFAR_SHAPE = [3, 32, 32]
GENOMES = (
    "In_32_32_3:C_3-3-1-1-32:P_2-2-2-2-0:R_3-3-1-1-64:D_1-1-1-1-128:D_10",
    "In_32_32_3:C_3-3-1-1-16:C_3-3-2-2-32:R_3-3-1-1-32:P_2-2-2-2-0:D_10",
    "In_32_32_3:I.1-1-1_5-5-1-1-16.2-1-2_3-3-1-1-16.3-0-0_1-1-1-1-0.4-1-0_3-3-1-1-8:P_2-2-2-2-0:D_10",
    "In_32_32_3:R_3-3-1-1-32:R_3-3-2-2-64:R_3-3-2-2-128:D_1-1-1-1-256:D_10",
    # cifar10-config9's VGG-like seed, its pools written P_2-2-2-2-0 (the preset's P_2-2-2-2-32 does not parse)
    "In_32_32_3:C_3-3-1-1-32:C_3-3-1-1-32:P_2-2-2-2-0:C_3-3-1-1-64:C_3-3-1-1-64:P_2-2-2-2-0:D_10",
)
WIDE_GENOME = "In_32_32_3:C_3-3-1-1-128:C_3-3-1-1-128:P_2-2-2-2-0:D_10"
CIFAR10_TRAIN_IMAGES = 50_000 - round(50_000 / 11)  # the preset's 10/1 training/validation split
SMALL_TRAIN = {"epochs": 2, "patience": 2, "batch_size": 128, "loss": "mse", "dropout": 0.25}


def synthetic_task(genome: str, seed: int = 0, **train: Any):
    from nascli.task import Task

    return Task(genome=genome, task={"kind": "classification", "dataset": "synthetic", "synthetic_shape": CIFAR_SHAPE,
                                     "synthetic_classes": 10},
                train={**SMALL_TRAIN, **train}, search_space={"max_params": 50_000_000}, seed=seed)


def fresh_run(url: str, tasks: list) -> str:
    from nascli.store import EvaluationRequest, open_store

    store = open_store(url, create=True)
    try:
        run = store.create_run("gpu-check", "random", None, 0, {"worker": {}})
        store.enqueue(run.id, [EvaluationRequest(None, task) for task in tasks])
        return run.id
    finally:
        store.close()


def rows_of(url: str, run_id: str) -> list:
    from nascli.store import open_store

    store = open_store(url)
    try:
        return store.evaluations(run_id)
    finally:
        store.close()


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **extra}
    env.pop("NAS_DB_URL", None)
    return env


# ---------------------------------------------------------------- steps


def worker_gpus_all(workdir: Path, gpus: int) -> dict[str, Any]:
    url = f"sqlite:///{workdir / 'gpus-all.db'}"
    run_id = fresh_run(url, [synthetic_task(GENOMES[i % len(GENOMES)], seed=i) for i in range(2 * gpus)])
    done = subprocess.run([sys.executable, "-m", "nascli", "worker", "--db", url, "--gpus", "all", "--idle-timeout",
                           "5"], capture_output=True, text=True, env=_env(), timeout=150)
    rows = rows_of(url, run_id)
    devices = sorted({(row.result.extra or {}).get("device") for row in rows if row.result})
    precisions = sorted({(row.result.extra or {}).get("precision") for row in rows if row.result})
    statuses = [row.status for row in rows]
    children = sorted({line.split(":", 1)[0] for line in done.stderr.splitlines() if line.startswith("gpu")})
    ok = done.returncode == 0 and statuses == ["done"] * len(rows) and devices == ["cuda:0"] and len(children) == gpus
    return {"passed": ok, "exit_code": done.returncode, "statuses": statuses, "devices": devices,
            "precisions": precisions, "children": children, "log_tail": done.stderr.splitlines()[-5:]}


def bf16(_: Path, __: int) -> dict[str, Any]:
    import torch

    from nascli.worker import evaluate_task

    wanted = "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"
    result = evaluate_task(synthetic_task(GENOMES[0], amp=wanted), device="cuda:0")
    history = (result.extra or {}).get("history") or []
    finite = all(math.isfinite(epoch["train_loss"]) and math.isfinite(epoch["val_loss"]) for epoch in history)
    precision = (result.extra or {}).get("precision")
    return {"passed": result.status == "done" and finite and precision == wanted, "asked": wanted,
            "precision": precision, "status": result.status, "error": result.error_message,
            "val_accuracy": result.val_accuracy, "train_seconds": result.train_seconds}


def device_fault(workdir: Path, _: int) -> dict[str, Any]:
    url = f"sqlite:///{workdir / 'fault.db'}"
    run_id = fresh_run(url, [synthetic_task(GENOMES[0])])
    first = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0]
    done = subprocess.run([sys.executable, "-m", "nascli", "worker", "--db", url, "--device", "cuda:0",
                           "--idle-timeout", "5"], capture_output=True, text=True, timeout=120,
                          env=_env(**{INJECT_FAULT_ENV: "all", "CUDA_VISIBLE_DEVICES": first}))
    rows = rows_of(url, run_id)
    state = [(row.status, row.failures) for row in rows]
    error_lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    return {"passed": done.returncode == EXIT_DEVICE_FAULT and state == [("pending", 0)] and len(error_lines) == 1,
            "exit_code": done.returncode, "rows": state, "error_line": error_lines[-1] if error_lines else None}


def oom_retry(_: Path, __: int) -> dict[str, Any]:
    import torch

    from nascli.train import data
    from nascli.worker import evaluate_task

    task = synthetic_task(WIDE_GENOME, epochs=1, patience=1, batch_size=1024, amp="off")
    free = evaluate_task(task, device="cuda:0")
    if free.status != "done":
        return {"passed": False, "why": f"the uncapped evaluation failed: {free.error_kind}: {free.error_message}"}
    peak = int(free.peak_memory_bytes or 0)
    total = torch.cuda.get_device_properties(0).total_memory
    data.clear_cache()
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(0.8 * peak / total, 0)
    try:
        capped = evaluate_task(task, device="cuda:0")
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, 0)
        data.clear_cache()
        torch.cuda.empty_cache()
    retry = (capped.extra or {}).get("oom_retry")
    return {"passed": capped.status == "done" and retry is not None, "peak_bytes_uncapped": peak,
            "cap_bytes": int(0.8 * peak), "status": capped.status, "error": capped.error_message, "oom_retry": retry}


class BusySampler:
    """NVML's utilisation of GPU 0 (share of time a kernel was running) every `period` seconds."""

    def __init__(self, period: float = 0.2) -> None:
        self.period, self.samples, self._stop = period, [], threading.Event()
        self._read = self._reader()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    @staticmethod
    def _reader() -> Callable[[], float] | None:
        import torch

        try:
            torch.cuda.utilization(0)
            return lambda: float(torch.cuda.utilization(0))
        except Exception:  # noqa: BLE001 - pynvml missing: try nvidia-smi
            pass
        smi = shutil.which("nvidia-smi")
        if smi is None:
            return None
        index = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0]

        def read() -> float:
            out = subprocess.run([smi, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i", index],
                                 capture_output=True, text=True, timeout=5).stdout
            return float(out.strip().splitlines()[0])

        return read

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.samples.append(self._read())
            except Exception:  # noqa: BLE001 - a missed sample is not a failure
                pass

    def __enter__(self) -> BusySampler:
        if self._read is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    @property
    def busy_share(self) -> float | None:
        return round(sum(self.samples) / len(self.samples) / 100, 3) if self.samples else None


def throughput(train_samples: int) -> dict[str, Any]:
    import torch

    from nascli.config import resolve
    from nascli.ga.genome import parse_genome
    from nascli.layers import build_model
    from nascli.train.objectives import Classification
    from nascli.train.trainer import TrainSettings, fit, precision_of

    preset = resolve("cifar10-island5", project_file=None, env={})
    device = torch.device("cuda:0")
    generator = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(train_samples, *CIFAR_SHAPE, device=device, generator=generator)
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (train_samples,), device=device, generator=generator)
    val = max(1, train_samples // 10)
    results: dict[str, Any] = {"train_samples": train_samples, "preset": "cifar10-island5",
                               "preset_epochs": preset.train.epochs, "batch_size": preset.train.batch_size}
    for amp in ("off", "auto"):
        settings = TrainSettings.from_train({**preset.train.model_dump(), "amp": amp, "epochs": 2, "patience": 2})
        per_genome = []
        with BusySampler() as busy:
            for genome in GENOMES:
                torch.manual_seed(0)
                model = build_model(parse_genome(genome), activation=preset.train.activation,
                                    bn_momentum=preset.train.bn_momentum, dropout=preset.train.dropout).to(device)
                outcome = fit(model, x, y, x[:val], y[:val], Classification(preset.train.loss, 10), settings, seed=0)
                first, second = outcome.history[0]["seconds"], outcome.history[-1]["seconds"]
                epoch_seconds = second - first  # the second epoch: cudnn.benchmark and warm-up are behind
                per_genome.append(epoch_seconds / train_samples)
        seconds_per_image_epoch = sum(per_genome) / len(per_genome)
        evaluation_seconds = seconds_per_image_epoch * CIFAR10_TRAIN_IMAGES * preset.train.epochs
        results[amp] = {
            "precision": precision_of(settings, device).name,
            "seconds_per_epoch_at_45455_images": round(seconds_per_image_epoch * CIFAR10_TRAIN_IMAGES, 2),
            "evaluations_per_gpu_hour": round(3600 / evaluation_seconds, 2), "gpu_busy_share": busy.busy_share}
    return results


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    parser.add_argument("--train-samples", type=int, default=20_000)
    args = parser.parse_args()
    import torch

    report: dict[str, Any] = {"host": platform.node(), "torch": torch.__version__, "cuda_build": torch.version.cuda,
                              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    gpus = visible_gpu_count()
    if gpus == 0:
        line = (f"gpu_check: no CUDA GPU is visible (torch {torch.__version__}, CUDA build {torch.version.cuda}, "
                f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}): nothing to check; "
                "run it on a machine with a GPU")
        print(line)
        report.update(gpus=0, skipped=line, passed=None)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")
        return 0

    from nascli.devices import start_device

    start_device("cuda:0")
    report.update(gpus=gpus, device_name=torch.cuda.get_device_name(0),
                  bf16_supported=torch.cuda.is_bf16_supported(including_emulation=False), steps={})
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nascli-gpu-check-") as tmp:
        for name, step in (("worker_gpus_all", worker_gpus_all), ("bf16", bf16), ("device_fault", device_fault),
                           ("oom_retry", oom_retry)):
            began = time.monotonic()
            try:
                outcome = step(Path(tmp), gpus)
            except Exception as error:  # noqa: BLE001 - a step that raises has failed; the others still run
                outcome = {"passed": False, "error": f"{type(error).__name__}: {error}"}
            outcome["seconds"] = round(time.monotonic() - began, 1)
            report["steps"][name] = outcome
            print(f"{name:16} {'passed' if outcome['passed'] else 'FAILED'}  ({outcome['seconds']} s)  "
                  f"{ {k: v for k, v in outcome.items() if k not in ('passed', 'seconds', 'log_tail')} }")
    began = time.monotonic()
    try:
        speed = throughput(args.train_samples)
        speed["passed"] = True
    except Exception as error:  # noqa: BLE001
        speed = {"passed": False, "error": f"{type(error).__name__}: {error}"}
    speed["seconds"] = round(time.monotonic() - began, 1)
    report["steps"]["throughput"] = speed
    if speed["passed"]:
        print(f"\nevaluations per GPU-hour, {len(GENOMES)} CIFAR-10 genomes, cifar10-island5 settings, "
              f"{speed['preset_epochs']} epochs on {CIFAR10_TRAIN_IMAGES:,} images (upper bound on time):")
        for amp in ("off", "auto"):
            entry = speed[amp]
            busy = "n/a" if entry["gpu_busy_share"] is None else f"{entry['gpu_busy_share']:.0%}"
            print(f"  amp={amp:4} ({entry['precision']}) {entry['evaluations_per_gpu_hour']:8.2f} /GPU-h   "
                  f"{entry['seconds_per_epoch_at_45455_images']:7.2f} s/epoch   GPU busy {busy}")
    else:
        print(f"throughput       FAILED  {speed['error']}")
    report["seconds"] = round(time.monotonic() - started, 1)
    report["passed"] = all(step["passed"] for step in report["steps"].values())
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'all steps passed' if report['passed'] else 'SOME STEPS FAILED'} in {report['seconds']} s; "
          f"wrote {args.out}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
