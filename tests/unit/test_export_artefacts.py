"""write_export without a database: files, hashes, weights_only loading, TorchScript/ONNX parity, refusals."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from nascli.errors import ExportError
from nascli.export import artefacts
from nascli.export.artefacts import ExportSpec, parse_formats, write_export
from nascli.export.parity import check_parity, import_model_file
from nascli.layers import build_model

torch.set_num_threads(1)

GENOME = ("In_8_8:C_2-2-1-1-4:R_3-3-2-2-8:I.1-1-2_3-3-1-1-4.4-1-0_2-2-1-1-4.2-0-0_1-1-1-1-0.3-1-3_3-3-1-1-2"
          ":D_1-1-1-1-16:D_10")
TASK = {"kind": "classification", "dataset": "digits"}
TRAIN = {"activation": "relu", "bn_momentum": 0.1, "dropout": 0.2}


def trained_like_state(seed: int = 0) -> dict:
    """A state_dict with non-trivial BN statistics (as after training)."""
    torch.manual_seed(seed)
    model = build_model(GENOME, **TRAIN)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, 1, 8, 8))
    return model.state_dict()


def spec() -> ExportSpec:
    return ExportSpec(genome=GENOME, training=dict(TRAIN), task=dict(TASK), metrics={"val_accuracy": 0.9},
                      identity={"run_id": "r-test00", "individual_id": 7, "evaluation_id": 9},
                      lineage=[{"individual_id": 7, "generation": 3}], config={"run": {"seed": 1}},
                      normalisation={"mean": [4.9], "std": [6.0]})


def test_default_formats_write_files_with_hashes_and_parity(tmp_path):
    state = trained_like_state()
    document = write_export(spec(), state, tmp_path / "out", parse_formats(None), force=False)
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["genome.txt", "metrics.json", "model.py", "model.ts",
                                                      "weights.pt"]
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(document, default=str))
    for name, info in on_disk["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == info["sha256"]
        assert (out / name).stat().st_size == info["bytes"]
    assert set(on_disk["parity"]["max_abs_diff"]) == {"model.py+weights.pt", "model.ts"}
    assert on_disk["parity"]["passed"] and on_disk["parity"]["max_abs_diff"]["model.py+weights.pt"] == 0.0
    assert on_disk["lineage"] == [{"individual_id": 7, "generation": 3}] and on_disk["genome"] == GENOME
    assert (out / "genome.txt").read_text().strip() == GENOME


def test_weights_load_with_weights_only_into_both_builders(tmp_path):
    state = trained_like_state()
    write_export(spec(), state, tmp_path, ("code", "state_dict", "torchscript"), force=False)
    loaded = torch.load(tmp_path / "weights.pt", weights_only=True)
    reference = build_model(GENOME, **TRAIN)
    reference.load_state_dict(loaded, strict=True)
    generated = import_model_file(tmp_path / "model.py").load_model(tmp_path / "weights.pt")
    scripted = torch.jit.load(str(tmp_path / "model.ts"))
    reference.eval()
    batch = torch.randn(5, 1, 8, 8)
    with torch.inference_mode():
        expected = reference(batch)
        assert torch.equal(generated(batch), expected)
        assert torch.equal(scripted(batch), expected)


def test_model_py_standardises_like_training(tmp_path):
    write_export(spec(), trained_like_state(), tmp_path, ("code", "state_dict"), force=False)
    module = import_model_file(tmp_path / "model.py")
    assert module.INPUT_MEAN == (4.9,) and module.INPUT_STD == (6.0,)
    assert torch.allclose(module.standardise(torch.full((1, 1, 8, 8), 10.9)), torch.ones(1, 1, 8, 8))


def test_code_only_needs_no_weights_and_still_checks_parity(tmp_path):
    document = write_export(spec(), None, tmp_path, ("code", "json"), force=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["genome.txt", "metrics.json", "model.py"]
    assert document["parity"]["max_abs_diff"] == {"model.py+weights.pt": 0.0}


def test_refuses_to_overwrite_without_force(tmp_path):
    write_export(spec(), None, tmp_path, ("code",), force=False)
    before = (tmp_path / "model.py").read_bytes()
    with pytest.raises(ExportError, match="already holds .*model.py") as caught:
        write_export(spec(), trained_like_state(), tmp_path, ("code", "state_dict"), force=False)
    assert "--force" in caught.value.hint
    assert not (tmp_path / "weights.pt").exists() and (tmp_path / "model.py").read_bytes() == before
    write_export(spec(), trained_like_state(), tmp_path, ("code", "state_dict"), force=True)
    assert (tmp_path / "weights.pt").exists()


def test_out_must_be_a_directory(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportError, match="not a directory"):
        write_export(spec(), None, tmp_path / "file", ("code",), force=False)


@pytest.mark.parametrize("text", ["pdf", "code,bogus", " , "])
def test_bad_format_names_are_errors(text):
    with pytest.raises(ExportError):
        parse_formats(text)


def test_format_names_normalise():
    assert parse_formats("Code, state-dict,code") == ("code", "state_dict")


def test_weights_are_required_for_weight_formats(tmp_path):
    with pytest.raises(ExportError, match="no weights"):
        write_export(spec(), None, tmp_path, ("torchscript",), force=False)


def test_wrong_weights_are_a_clear_error(tmp_path):
    other = build_model("In_8_8:D_10").state_dict()
    with pytest.raises(ExportError, match="do not fit"):
        write_export(spec(), other, tmp_path, ("state_dict",), force=False)


def test_onnx_missing_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(artefacts, "onnx_available", lambda: False)
    with pytest.raises(ExportError, match="onnx") as caught:
        write_export(spec(), trained_like_state(), tmp_path, ("onnx",), force=False)
    assert "nascli[onnx]" in caught.value.hint
    assert not any(tmp_path.iterdir())


def test_parity_failure_is_an_error(tmp_path):
    write_export(spec(), trained_like_state(), tmp_path, ("code", "state_dict"), force=False)
    other = build_model(GENOME, **TRAIN)
    other.load_state_dict(trained_like_state(seed=1))
    with pytest.raises(ExportError, match="parity check failed: model.py"):
        check_parity(other, (1, 8, 8), model_py=tmp_path / "model.py", weights=tmp_path / "weights.pt",
                     torchscript=None, onnx_file=None)


@pytest.mark.slow
def test_onnx_export_matches_when_available(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    document = write_export(spec(), trained_like_state(), tmp_path, ("onnx", "json"), force=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["genome.txt", "metrics.json", "model.onnx"]
    assert document["parity"]["max_abs_diff"]["model.onnx"] <= document["parity"]["tolerance"]
    import onnx

    onnx.checker.check_model(onnx.load(str(tmp_path / "model.onnx")))  # self-contained: weights inside
