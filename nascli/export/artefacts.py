"""Write one network's artefacts: model.py, weights.pt, model.ts, model.onnx, genome.txt, metrics.json.

Order matters: the weights are loaded into the in-process model first (the parity reference),
every requested form is written, the parity check runs over them, and metrics.json — with the
parity figures and the SHA-256 of every other file — is written last, so its presence means the
export completed and checked out.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nascli.errors import ExportError
from nascli.export.files import prepare_directory, sha256_of
from nascli.safe_files import scratch_file, write_file

FORMATS = ("code", "state_dict", "torchscript", "onnx", "json")
DEFAULT_FORMATS = ("code", "state_dict", "torchscript", "json")
FILE_OF = {"code": "model.py", "state_dict": "weights.pt", "torchscript": "model.ts", "onnx": "model.onnx"}
ALWAYS = ("genome.txt", "metrics.json")  # written by every export: what it is and how it checked out
METRICS_SCHEMA = "nascli.export/1"


def parse_formats(text: str | None) -> tuple[str, ...]:
    """`code,state_dict` -> ('code', 'state_dict'); unknown names are a one-line error."""
    if text is None or not text.strip():
        return DEFAULT_FORMATS
    names = []
    for name in (part.strip().lower().replace("-", "_") for part in text.split(",")):
        if not name:
            continue
        if name not in FORMATS:
            raise ExportError(f"unknown export format {name!r}",
                              hint="choose from " + ", ".join(FORMATS) + " (comma-separated)")
        if name not in names:
            names.append(name)
    if not names:
        raise ExportError("no export format given", hint="e.g. --format code,state_dict,torchscript,json")
    return tuple(names)


def needs_weights(formats: tuple[str, ...]) -> bool:
    return any(name in formats for name in ("state_dict", "torchscript", "onnx"))


def onnx_available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401  (torch's ONNX exporter needs it)
    except ImportError:
        return False
    return True


@dataclass
class ExportSpec:
    """Everything one export needs, gathered from the store (or from a test)."""

    genome: str
    training: dict[str, Any]  # the run's [train] section (activation, bn_momentum, dropout, ...)
    task: dict[str, Any]  # the run's [task] section
    metrics: dict[str, Any]  # what the store recorded for this individual's evaluation
    identity: dict[str, Any]  # run id, individual id, evaluation id, rank, island, generation, ...
    lineage: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)  # the full run configuration
    weights_source: dict[str, Any] = field(default_factory=dict)  # where the weights came from
    normalisation: dict[str, Any] | None = None  # per-channel mean/std the inputs were standardised with


def modular_classifier_of(task: dict[str, Any]) -> tuple[tuple[int, int, int], int, int] | None:
    """(input shape, reduction modules, classes) when the run's networks are seed 001 modular
    classifiers (task.genome_family = modules); None for Klos layer genomes."""
    from nascli.config import input_shape

    if task.get("genome_family") != "modules":
        return None
    if task.get("kind") != "classification":
        raise ExportError(f"nas export writes classifiers; this run's modules genomes are {task.get('kind')} "
                          "autoencoders", hint="export a run with task.kind = classification")
    channels, height, width, classes = input_shape(task)
    return (channels, height, width), int(task.get("reduction_modules", 2)), classes


def build_reference(spec: ExportSpec, state_dict: dict | None):
    """The in-process model (nascli.layers) with the exported weights, in eval mode."""
    from torch import nn

    from nascli.layers import build_model
    from nascli.layers.modular import build_modular_classifier

    modular = modular_classifier_of(spec.task)
    model: nn.Module
    if modular is not None:
        model = build_modular_classifier(spec.genome, *modular)
    else:
        model = build_model(spec.genome, activation=spec.training.get("activation", "leaky_relu"),
                            bn_momentum=spec.training.get("bn_momentum", 0.01),
                            dropout=spec.training.get("dropout", 0.5))
    if state_dict is not None:
        try:
            model.load_state_dict(state_dict, strict=True)
        except RuntimeError as error:
            raise ExportError(f"the weights do not fit genome {spec.genome}: {str(error).splitlines()[0]}",
                              hint="the checkpoint belongs to another network; "
                              "re-train with --train-epochs N") from None
    return model.eval()


def write_export(spec: ExportSpec, state_dict: dict | None, out: Path | None, formats: tuple[str, ...], *,
                 force: bool) -> dict[str, Any]:
    """Write the artefacts of `formats` into `out`, check parity, write metrics.json; returns its content."""
    import torch

    from nascli.config import input_shape
    from nascli.export.codegen import generate_model_source
    from nascli.export.modular_codegen import generate_modular_source
    from nascli.export.parity import check_parity

    if "onnx" in formats and not onnx_available():
        raise ExportError("ONNX export needs the optional packages onnx and onnxscript",
                          hint="pip install 'nascli[onnx]', or leave onnx out of --format")
    if needs_weights(formats) and state_dict is None:
        raise ExportError("no weights to export",
                          hint="pass --train-epochs N, or --format code,json for the source only")
    names = [FILE_OF[name] for name in formats if name in FILE_OF] + list(ALWAYS)
    out = prepare_directory(out, names, force=force)
    channels, height, width, _ = input_shape(spec.task)
    shape = (channels, height, width)
    reference = build_reference(spec, state_dict)
    written: dict[str, Path] = {}

    write_file(out / "genome.txt", spec.genome + "\n", force=force)
    written["genome.txt"] = out / "genome.txt"
    if "code" in formats:
        origin = f" from run {spec.identity.get('run_id')}, individual {spec.identity.get('individual_id')}"
        title = (f"{spec.task.get('dataset', 'a')} network found by nascli "
                 f"(validation accuracy {_pct(spec.metrics.get('val_accuracy'))}, "
                 f"test accuracy {_pct(spec.metrics.get('test_accuracy'))}).")
        modular = modular_classifier_of(spec.task)
        if modular is not None:
            source = generate_modular_source(spec.genome, *modular, title=title, origin=origin,
                                             normalisation=spec.normalisation)
        else:
            source = generate_model_source(
                spec.genome, activation=spec.training.get("activation", "leaky_relu"),
                bn_momentum=spec.training.get("bn_momentum", 0.01), dropout=spec.training.get("dropout", 0.5),
                title=title, origin=origin, normalisation=spec.normalisation)
        write_file(out / "model.py", source, force=force)
        written["model.py"] = out / "model.py"
    if state_dict is not None and "state_dict" in formats:
        buffer = io.BytesIO()
        torch.save({k: v.detach().cpu().contiguous() for k, v in reference.state_dict().items()}, buffer)
        write_file(out / "weights.pt", buffer.getvalue(), force=force)
        written["weights.pt"] = out / "weights.pt"
    # A batch of 2: with a batch of 1 the ONNX exporter of torch 2.9 fixes the batch size inside Reshape.
    example = torch.zeros((2, *shape))
    if "torchscript" in formats:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit is deprecated upstream but still the portable file
            traced = torch.jit.trace(reference, example, check_trace=False)
            buffer = io.BytesIO()
            torch.jit.save(traced, buffer)
        write_file(out / "model.ts", buffer.getvalue(), force=force)
        written["model.ts"] = out / "model.ts"
    if "onnx" in formats:
        _write_onnx(reference, example, out / "model.onnx", force=force)
        written["model.onnx"] = out / "model.onnx"

    # model.py is checked against the weights it will be shipped with; without weights.pt, with a temp copy
    with contextlib.ExitStack() as scratch:
        weights_for_check = written.get("weights.pt")
        if "model.py" in written and weights_for_check is None:
            handle, weights_for_check = scratch.enter_context(scratch_file(out, "parity-weights.pt"))
            torch.save(reference.state_dict(), handle)
            handle.close()
        parity = check_parity(reference, shape, model_py=written.get("model.py"), weights=weights_for_check,
                              torchscript=written.get("model.ts"), onnx_file=written.get("model.onnx"))

    document = {
        "schema": METRICS_SCHEMA,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "nascli_version": _version(),
        "torch_version": torch.__version__,
        **spec.identity,
        "genome": spec.genome,
        "input_shape": list(shape),
        "outputs": _outputs(spec.genome, spec.task),
        "metrics": spec.metrics,
        "weights": spec.weights_source,
        "input_normalisation": spec.normalisation,
        "parity": parity.as_dict(),
        "training_config": spec.training,
        "task": spec.task,
        "config": spec.config,
        "lineage": spec.lineage,
        "files": {name: {"sha256": sha256_of(path), "bytes": path.stat().st_size} for name, path in written.items()},
    }
    write_file(out / "metrics.json", json.dumps(document, indent=2, sort_keys=False, default=str) + "\n", force=force)
    return document


def _outputs(genome: str, task: dict[str, Any]) -> int:
    from nascli.ga.genome import parse_genome

    modular = modular_classifier_of(task)
    return modular[2] if modular is not None else parse_genome(genome).output.units


def _write_onnx(model, example, path: Path, *, force: bool) -> None:
    import tempfile

    import torch

    # the exporter opens its path itself, so it writes into a private directory; the bytes then go
    # through the safe writer like every other artefact
    with tempfile.TemporaryDirectory(prefix="nascli-onnx-") as private:
        temporary = Path(private) / "model.onnx"
        try:
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(model, (example,), str(temporary), input_names=["input"], output_names=["logits"],
                                  dynamo=True, dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False,
                                  external_data=False)  # one self-contained file, weights inside
        except Exception as error:  # the exporter raises many kinds; the user needs one line
            first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ExportError(f"ONNX export failed: {first_line}",
                              hint="export without onnx (--format code,state_dict,torchscript,json), "
                              "or report the genome") from None
        write_file(path, temporary.read_bytes(), force=force)


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * float(value):.2f} %"


def _version() -> str:
    from nascli import __version__

    return __version__
