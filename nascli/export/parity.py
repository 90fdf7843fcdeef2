"""The export-time parity check: every written form of the network computes the same function.

The reference is the in-process model (`nascli.layers.build_model` with the exported weights) in
eval mode. Each other form runs the same random batch; the largest absolute difference of the
outputs must stay within `ATOL + RTOL * max|reference|`. model.py and TorchScript run the same
torch kernels, so they normally match exactly; the ONNX reference evaluator (numpy) differs by
float rounding only.
"""

from __future__ import annotations

import contextlib
import io
import sys
import types
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nascli.errors import ExportError

ATOL = 1e-4
RTOL = 1e-4
BATCH = 8
SEED = 0


@dataclass
class ParityReport:
    batch_size: int
    seed: int
    atol: float
    rtol: float
    reference_max_abs: float = 0.0
    max_abs_diff: dict[str, float] = field(default_factory=dict)  # form -> measured difference

    @property
    def tolerance(self) -> float:
        return self.atol + self.rtol * self.reference_max_abs

    def failures(self) -> list[str]:
        return [form for form, diff in self.max_abs_diff.items() if not diff <= self.tolerance]

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size, "seed": self.seed, "atol": self.atol, "rtol": self.rtol,
            "tolerance": self.tolerance, "reference_max_abs": self.reference_max_abs,
            "max_abs_diff": dict(self.max_abs_diff), "passed": not self.failures(),
        }


def random_batch(input_shape: tuple[int, int, int], batch_size: int = BATCH, seed: int = SEED):
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.randn((batch_size, *input_shape), generator=generator)


def import_model_file(path: Path):
    """Import a generated model.py under a fresh module name (no sys.path changes, no caching).

    Compiled from its source here: the import system's loader would write a `__pycache__`
    directory into the user's export directory."""
    name = f"nascli_exported_{uuid.uuid4().hex}"
    refused = ExportError(f"cannot import {path}", hint="the generated model.py is missing or unreadable")
    if path.suffix != ".py":
        raise refused
    try:
        source = path.read_bytes()
    except OSError as error:
        raise refused from error
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module  # dataclasses/typing resolve the module by name while it executes
    try:
        exec(compile(source, str(path), "exec"), module.__dict__)  # the file this export just wrote
    finally:
        sys.modules.pop(name, None)
    return module


def outputs_of_model_file(model_py: Path, weights: Path, batch):
    import torch

    module = import_model_file(model_py)
    model = module.build_model()
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    model.eval()
    with torch.inference_mode():
        return model(batch)


def outputs_of_torchscript(path: Path, batch):
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated but still the portable format
        model = torch.jit.load(str(path), map_location="cpu")
    model.eval()
    with torch.inference_mode():
        return model(batch)


def outputs_of_onnx(path: Path, batch):
    """Run the ONNX file with onnx's own reference evaluator (no onnxruntime needed)."""
    import numpy
    import onnx
    from onnx.reference import ReferenceEvaluator

    evaluator = ReferenceEvaluator(onnx.load(str(path)))
    (output, *_) = evaluator.run(None, {evaluator.input_names[0]: batch.numpy().astype(numpy.float32)})
    import torch

    return torch.from_numpy(numpy.asarray(output))


def check_parity(reference_model, input_shape, *, model_py: Path | None, weights: Path | None,
                 torchscript: Path | None, onnx_file: Path | None) -> ParityReport:
    """Run every written form on one random batch; raise ExportError if any disagrees."""
    import torch

    batch = random_batch(tuple(input_shape))
    reference_model.eval()
    with torch.inference_mode():
        expected = reference_model(batch).float()
    report = ParityReport(batch_size=BATCH, seed=SEED, atol=ATOL, rtol=RTOL,
                          reference_max_abs=float(expected.abs().max()))
    forms: list[tuple[str, Any]] = []
    if model_py is not None and weights is not None:
        forms.append(("model.py+weights.pt", lambda: outputs_of_model_file(model_py, weights, batch)))
    if torchscript is not None:
        forms.append(("model.ts", lambda: outputs_of_torchscript(torchscript, batch)))
    if onnx_file is not None:
        forms.append(("model.onnx", lambda: outputs_of_onnx(onnx_file, batch)))
    for form, run in forms:
        with contextlib.redirect_stdout(io.StringIO()):
            actual = run().float()
        if actual.shape != expected.shape:
            raise ExportError(f"parity check failed: {form} gives shape {tuple(actual.shape)}, "
                              f"the in-process model {tuple(expected.shape)}",
                              hint="this is a bug in nascli's exporter; please report it with the genome")
        report.max_abs_diff[form] = float((actual - expected).abs().max())
    failed = report.failures()
    if failed:
        worst = max(failed, key=lambda form: report.max_abs_diff[form])
        raise ExportError(
            f"parity check failed: {worst} differs from the in-process model by {report.max_abs_diff[worst]:.3g} "
            f"(tolerance {report.tolerance:.3g})",
            hint="this is a bug in nascli's exporter; please report it with the genome")
    return report
