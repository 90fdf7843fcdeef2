"""The parity check's exact rules: its batch, tolerance, forms, eval mode, and the messages of a mismatch."""

from __future__ import annotations

import math
import pickle
import sys
import warnings

import pytest
import torch

from nascli.errors import ExportError
from nascli.export import parity
from nascli.export.parity import ParityReport, check_parity, import_model_file, random_batch

torch.set_num_threads(1)

SHAPE = (1, 2, 2)

MODEL_PY = """\
import dataclasses

import torch


@dataclasses.dataclass
class Settings:  # a dataclass resolves its module through sys.modules while the file executes
    offset: float


class Shifted(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))
        self.drop = torch.nn.Dropout(0.5)

    def forward(self, x):
        print("printed by the model")
        return self.drop(x * self.scale)[..., :{width}] + Settings({offset}).offset


def build_model():
    return Shifted()
"""


class Shifted(torch.nn.Module):
    """x * scale (+ offset), with a dropout that changes the output unless the module is in eval mode."""

    def __init__(self, offset: float = 0.0, scale: float = 1.0):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.full((1,), scale))
        self.drop = torch.nn.Dropout(0.5)
        self.offset = offset

    def forward(self, x):
        return self.drop(x * self.scale) + self.offset


class Recording(torch.nn.Module):
    """The reference model: the identity, keeping the batch it saw and whether it was in eval mode."""

    def __init__(self):
        super().__init__()
        self.seen: list[tuple[torch.Tensor, bool]] = []

    def forward(self, x):
        self.seen.append((x.clone(), self.training))
        return x


def write_model_py(tmp_path, offset: float = 0.0, width: int = 2, scale: float = 1.0):
    model_py = tmp_path / f"model_{offset}_{width}.py"
    model_py.write_text(MODEL_PY.format(offset=offset, width=width))
    weights = tmp_path / f"weights_{scale}.pt"
    torch.save({"scale": torch.full((1,), scale)}, weights)
    return model_py, weights


def write_torchscript(tmp_path, offset: float = 0.0):
    path = tmp_path / f"model_{offset}.ts"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.script is deprecated
        module = torch.jit.script(Shifted(offset))
    module.train()
    module.save(str(path))
    return path


def write_onnx(tmp_path, scale: float = 2.0):
    """A one-node ONNX graph: y = x * scale."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "scale"], ["y"])], "scaled",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [helper.make_tensor("scale", TensorProto.FLOAT, [], [scale])])
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_report_tolerance_failures_and_document_are_exact():
    report = ParityReport(batch_size=3, seed=5, atol=0.5, rtol=0.25, reference_max_abs=4.0,
                          max_abs_diff={"at": 1.5, "over": 1.5000001, "nan": math.nan, "zero": 0.0})
    assert report.tolerance == 1.5
    assert report.failures() == ["over", "nan"]  # the tolerance itself passes; NaN never does
    document = report.as_dict()
    assert document.pop("max_abs_diff") is not report.max_abs_diff
    assert document == {"batch_size": 3, "seed": 5, "atol": 0.5, "rtol": 0.25, "tolerance": 1.5,
                        "reference_max_abs": 4.0, "passed": False}
    passing = ParityReport(batch_size=3, seed=5, atol=0.5, rtol=0.25, reference_max_abs=4.0,
                           max_abs_diff={"at": 1.5})
    assert passing.as_dict()["passed"] is True and passing.as_dict()["max_abs_diff"] == {"at": 1.5}


def test_report_defaults_to_no_reference_and_no_forms():
    first, second = ParityReport(1, 2, 0.5, 0.25), ParityReport(1, 2, 0.5, 0.25)
    assert (first.reference_max_abs, first.max_abs_diff, first.tolerance) == (0.0, {}, 0.5)
    first.max_abs_diff["form"] = 1.0
    assert second.max_abs_diff == {}


def test_random_batch_is_seeded_and_sized():
    assert torch.equal(random_batch(SHAPE), torch.randn((8, *SHAPE), generator=torch.Generator().manual_seed(0)))
    assert torch.equal(random_batch(SHAPE, 3, 5), torch.randn((3, *SHAPE), generator=torch.Generator().manual_seed(5)))


def test_import_model_file_uses_a_fresh_unregistered_name(tmp_path):
    model_py, _ = write_model_py(tmp_path)
    first, second = import_model_file(model_py), import_model_file(model_py)
    assert first.__name__.startswith("nascli_exported_") and len(first.__name__) == len("nascli_exported_") + 32
    assert first.__name__ != second.__name__
    assert first.__name__ not in sys.modules and second.__name__ not in sys.modules
    assert first.Settings(1.5).offset == 1.5


def test_import_model_file_refuses_a_file_python_cannot_load(tmp_path):
    path = tmp_path / "model.txt"
    path.write_text("x = 1\n")
    with pytest.raises(ExportError) as caught:
        import_model_file(path)
    assert caught.value.args[0] == f"cannot import {path}"
    assert caught.value.hint == "the generated model.py is missing or unreadable"


def test_model_file_runs_in_eval_mode_with_its_weights(tmp_path):
    model_py, weights = write_model_py(tmp_path, offset=0.25, scale=3.0)
    batch = random_batch(SHAPE)
    output = parity.outputs_of_model_file(model_py, weights, batch)
    assert torch.equal(output, batch * 3.0 + 0.25)
    assert output.is_inference()


def test_model_file_weights_must_fit_exactly(tmp_path):
    model_py, weights = write_model_py(tmp_path)
    torch.save({"scale": torch.ones(1), "extra": torch.ones(1)}, weights)
    with pytest.raises(RuntimeError, match="Unexpected key"):
        parity.outputs_of_model_file(model_py, weights, random_batch(SHAPE))


class NotATensor:
    pass


def test_model_file_weights_load_weights_only(tmp_path):
    model_py, weights = write_model_py(tmp_path)
    torch.save({"scale": NotATensor()}, weights)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        parity.outputs_of_model_file(model_py, weights, random_batch(SHAPE))


def test_torchscript_runs_in_eval_mode_without_a_deprecation_warning(tmp_path):
    path = write_torchscript(tmp_path, offset=0.5)
    batch = random_batch(SHAPE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        output = parity.outputs_of_torchscript(path, batch)
    assert torch.equal(output, batch + 0.5)
    assert output.is_inference()
    assert not [w for w in caught if issubclass(w.category, FutureWarning)]


def test_onnx_runs_with_the_reference_evaluator_in_float32(tmp_path):
    path = write_onnx(tmp_path, scale=2.0)
    batch = random_batch(SHAPE).double()
    output = parity.outputs_of_onnx(path, batch)
    assert output.dtype == torch.float32
    assert torch.equal(output, (batch * 2.0).float())


def test_check_parity_runs_every_form_on_the_seeded_batch_in_eval_mode(tmp_path, capsys):
    model_py, weights = write_model_py(tmp_path)
    reference = Recording()
    reference.train()
    report = check_parity(reference, list(SHAPE), model_py=model_py, weights=weights,
                          torchscript=write_torchscript(tmp_path), onnx_file=None)
    ((seen, training),) = reference.seen
    assert torch.equal(seen, torch.randn((8, *SHAPE), generator=torch.Generator().manual_seed(0)))
    assert training is False
    assert (report.batch_size, report.seed, report.atol, report.rtol) == (8, 0, 1e-4, 1e-4)
    assert report.reference_max_abs == float(seen.abs().max())
    assert report.max_abs_diff == {"model.py+weights.pt": 0.0, "model.ts": 0.0}
    assert list(report.max_abs_diff) == ["model.py+weights.pt", "model.ts"]
    assert capsys.readouterr().out == ""  # the model's own print goes nowhere


def test_check_parity_includes_onnx_and_needs_both_model_py_and_weights(tmp_path):
    model_py, weights = write_model_py(tmp_path)
    onnx_file = write_onnx(tmp_path, scale=1.0)
    report = check_parity(Recording(), SHAPE, model_py=model_py, weights=None, torchscript=None, onnx_file=onnx_file)
    assert report.max_abs_diff == {"model.onnx": 0.0}
    report = check_parity(Recording(), SHAPE, model_py=None, weights=weights, torchscript=None, onnx_file=None)
    assert report.max_abs_diff == {} and report.failures() == []


def test_check_parity_refuses_a_form_of_another_shape(tmp_path):
    model_py, weights = write_model_py(tmp_path, width=1)
    with pytest.raises(ExportError) as caught:
        check_parity(Recording(), SHAPE, model_py=model_py, weights=weights, torchscript=None, onnx_file=None)
    assert caught.value.args[0] == ("parity check failed: model.py+weights.pt gives shape (8, 1, 2, 1), "
                                    "the in-process model (8, 1, 2, 2)")
    assert caught.value.hint == "this is a bug in nascli's exporter; please report it with the genome"


@pytest.mark.parametrize(("py_offset", "ts_offset", "worst"), [(0.5, 2.0, "model.ts"),
                                                                (3.0, 2.0, "model.py+weights.pt")])
def test_check_parity_names_the_worst_form_and_the_tolerance(tmp_path, py_offset, ts_offset, worst):
    model_py, weights = write_model_py(tmp_path, offset=py_offset)
    tolerance = 1e-4 + 1e-4 * float(random_batch(SHAPE).abs().max())
    with pytest.raises(ExportError) as caught:
        check_parity(Recording(), SHAPE, model_py=model_py, weights=weights,
                     torchscript=write_torchscript(tmp_path, offset=ts_offset), onnx_file=None)
    difference = max(py_offset, ts_offset)
    assert caught.value.args[0] == (f"parity check failed: {worst} differs from the in-process model by "
                                    f"{difference:.3g} (tolerance {tolerance:.3g})")
    assert caught.value.hint == "this is a bug in nascli's exporter; please report it with the genome"
