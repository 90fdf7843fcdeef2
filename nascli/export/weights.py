"""Where an exported network's weights come from: a kept checkpoint, or training it now.

Checkpoint convention (train.keep_checkpoints): the evaluator saves the best-validation
`state_dict` with `torch.save` and records its path in `Result.extra["checkpoint"]`; a file at
`checkpoint_path(artifact_dir, run_id, evaluation_id)` is found too. Otherwise `--train-epochs N`
trains the genome with the evaluation's own task/train configuration and seed on the standard
train/validation split (early stopping restores the best-validation weights, as in a search).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nascli.errors import ExportError


def checkpoint_path(artifact_dir: str | Path, run_id: str, evaluation_id: int) -> Path:
    return Path(artifact_dir) / run_id / f"evaluation-{evaluation_id}.pt"


def default_artifact_dir(task: dict[str, Any]) -> Path:
    """"Beside the data, per run": <data dir>/../artifacts when train.artifact_dir is not set."""
    from nascli.config import data_dir_of

    return data_dir_of(task).parent / "artifacts"


@dataclass
class Weights:
    state_dict: dict | None
    source: dict[str, Any] = field(default_factory=dict)
    normalisation: dict[str, Any] | None = None  # per-channel mean/std of the training split


def find_checkpoint(extra: dict[str, Any], train: dict[str, Any], task: dict[str, Any], run_id: str,
                    evaluation_id: int) -> Path | None:
    recorded = extra.get("checkpoint") if isinstance(extra, dict) else None
    if recorded and Path(recorded).is_file():
        return Path(recorded)
    artifact_dir = train.get("artifact_dir") or default_artifact_dir(task)
    conventional = checkpoint_path(artifact_dir, run_id, evaluation_id)
    return conventional if conventional.is_file() else None


def load_checkpoint(path: Path) -> dict:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file: say which and what to do
        raise ExportError(f"cannot read checkpoint {path}: {str(error).splitlines()[0]}",
                          hint="re-train it with --train-epochs N") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


def training_statistics(task: dict[str, Any]) -> dict[str, Any] | None:
    """Per-channel mean and std of the training split: what model inputs are standardised with."""
    from nascli.config import TaskSection

    cfg = TaskSection.model_validate(task)
    if cfg.kind != "classification":
        return None
    from nascli.train.data import DatasetSpec, raw_of, split_indices

    spec = DatasetSpec.from_task(cfg.model_dump(mode="json"))
    raw = raw_of(spec, download=False)
    train_idx, _ = split_indices(len(raw.train_x), spec.val_fraction)
    images = raw.train_x[train_idx].astype("float64")
    mean = images.mean(axis=(0, 2, 3))
    std = images.std(axis=(0, 2, 3), ddof=1).clip(min=1e-6)
    return {"mean": [float(m) for m in mean], "std": [float(s) for s in std],
            "note": "subtract mean and divide by std per channel (training-split statistics)"}


def train_now(genome: str, task: dict[str, Any], train: dict[str, Any], seed: int, epochs: int,
              device: str = "cpu") -> tuple[dict, dict[str, Any]]:
    """Train like the search did (same config and seed) for `epochs`; returns weights and metrics."""
    import torch

    from nascli.config import TaskSection, TrainSection
    from nascli.train.data import DatasetSpec, load_dataset
    from nascli.train.engine import plan_model
    from nascli.train.trainer import TrainSettings, fit, score

    task_cfg = TaskSection.model_validate(task)
    if task_cfg.kind == "synthetic":
        raise ExportError("this run used the synthetic evaluator: there is no data to train the network on",
                          hint="export the source only: --format code,json")
    from nascli.stop_rule import train_settings

    train_cfg = TrainSection.model_validate({**train_settings(train), "epochs": int(epochs)})
    plan = plan_model(genome, task_cfg, train_cfg)
    spec = DatasetSpec.from_task(task_cfg.model_dump(mode="json"), scaling=plan.scaling)
    settings = TrainSettings.from_train(train_cfg.model_dump())
    data = load_dataset(spec, device)
    torch.manual_seed(seed)  # the same initialisation and dropout as the evaluation that was recorded
    model = plan.build().to(device)
    outcome = fit(model, data.train_x, data.train_y, data.val_x, data.val_y, plan.objective, settings, seed=seed)
    loss_sum, correct = score(model, data.test_x, data.test_y, plan.objective, settings, split=2)
    test_loss, test_correct = torch.stack([loss_sum, correct]).tolist()
    metrics = {
        "epochs": int(epochs), "epochs_run": outcome.epochs_run, "best_epoch": outcome.best_epoch,
        "train_accuracy": outcome.train_accuracy, "train_loss": outcome.train_loss,
        "val_accuracy": outcome.val_accuracy, "val_loss": outcome.val_loss,
        "test_accuracy": test_correct / len(data.test_x) if plan.objective.has_accuracy else None,
        "test_loss": test_loss / len(data.test_x), "train_seconds": round(outcome.train_seconds, 3),
        "seed": seed, "device": device,
    }
    state = {name: value.detach().cpu() for name, value in model.state_dict().items()}
    return state, metrics


def obtain_weights(*, genome: str, task: dict[str, Any], train: dict[str, Any], seed: int, extra: dict[str, Any],
                   run_id: str, evaluation_id: int, train_epochs: int | None, needed: bool,
                   stored: tuple[int, bytes] | None = None) -> Weights:
    """Checkpoint first; else the weights repository's (`stored`: (evaluation id, bytes)); else train for
    `train_epochs` (default: the run's own `train.epochs`, with its early stopping, so `nas export` of
    any run gives runnable weights); else no weights when none are needed."""
    normalisation = _statistics_or_none(task)
    checkpoint = find_checkpoint(extra, train, task, run_id, evaluation_id)
    if checkpoint is not None and train_epochs is None:
        return Weights(load_checkpoint(checkpoint), {"kind": "checkpoint", "path": str(checkpoint)}, normalisation)
    if stored is not None and train_epochs is None:
        from nascli.train.transfer import load_state

        try:
            state = load_state(stored[1])
        except ValueError as error:
            raise ExportError(f"the stored weights of evaluation {stored[0]} are unreadable: {error}",
                              hint="re-train it with --train-epochs N") from None
        return Weights(state, {"kind": "repository", "evaluation_id": stored[0]}, normalisation)
    if train_epochs is None and needed:
        train_epochs = int(train.get("epochs") or 1)
    if train_epochs is not None:
        state, metrics = train_now(genome, task, train, seed, train_epochs)
        why = "asked for" if checkpoint is not None else ("its checkpoint file is gone" if train.get("keep_checkpoints")
                                                        else "the run kept no checkpoints")
        return Weights(state, {"kind": "trained_at_export", "why": why, "epochs": train_epochs, "metrics": metrics},
                       normalisation)
    return Weights(None, {"kind": "none"}, normalisation)


def _statistics_or_none(task: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return training_statistics(task)
    except Exception:  # noqa: BLE001 - data not on this host: the export still works, minus this note
        return None
