"""The generated model.py: imports only torch, builds the genome's network, and matches nascli.layers."""

from __future__ import annotations

import ast

import pytest
import torch
from genome_strategies import genomes
from hypothesis import HealthCheck, given, settings

from nascli.export.codegen import generate_model_source
from nascli.export.parity import import_model_file
from nascli.ga.cost import analyse
from nascli.ga.genome import format_genome, parse_genome
from nascli.layers import build_model

torch.set_num_threads(1)

EVERY_LAYER = ("In_16_16:C_3-3-1-1-8:P_2-2-2-2-0:R_3-3-2-2-16:"
               "I.1-1-1_5-5-1-1-4.2-1-2_3-3-1-1-4.3-1-3_3-3-1-1-4.4-1-0_3-3-1-1-4:R_2-2-1-1-16:D_1-1-1-1-32:D_10")


def load_generated(tmp_path, genome, **options):
    path = tmp_path / "model.py"
    path.write_text(generate_model_source(genome, **options), encoding="utf-8")
    return path, import_model_file(path)


def test_generated_source_imports_only_torch(tmp_path):
    source = generate_model_source(EVERY_LAYER)
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= {"torch", "__future__", "pathlib"}, imported


def test_every_layer_type_builds_with_the_cost_model_parameter_count(tmp_path):
    _, module = load_generated(tmp_path, EVERY_LAYER)
    model = module.build_model().eval()
    assert sum(p.numel() for p in model.parameters()) == analyse(parse_genome(EVERY_LAYER)).params
    assert model(torch.randn(3, *module.INPUT_SHAPE)).shape == (3, module.NUM_OUTPUTS)
    assert module.GENOME == EVERY_LAYER


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(genomes(input_shapes=((1, 8, 8), (3, 12, 10)), max_hidden=5))
def test_random_genomes_match_the_cost_model(tmp_path_factory, genome):
    _, module = load_generated(tmp_path_factory.mktemp("g"), genome)
    model = module.build_model().eval()
    analysis = analyse(genome)
    assert sum(p.numel() for p in model.parameters()) == analysis.params
    with torch.inference_mode():
        out = model(torch.randn(2, *module.INPUT_SHAPE))
    assert out.shape == (2, genome.output.units)
    assert format_genome(genome) == module.GENOME


def assert_same_network(module, genome, **options):
    """Same state_dict keys and shapes as build_model; with its weights, the same outputs."""
    reference = build_model(genome, **options)
    with torch.no_grad():  # non-default BN statistics, so a mismatch in buffers would show
        for _name, buffer in reference.named_buffers():
            if buffer.is_floating_point():
                buffer.copy_(torch.rand_like(buffer) + 0.5)
    reference.eval()
    generated = module.build_model()
    expected = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in generated.state_dict().items()} == expected
    generated.load_state_dict(reference.state_dict(), strict=True)
    generated.eval()
    batch = torch.randn(3, *module.INPUT_SHAPE)
    with torch.inference_mode():
        assert torch.equal(generated(batch), reference(batch))


def test_every_layer_type_matches_build_model(tmp_path):
    _, module = load_generated(tmp_path, EVERY_LAYER)
    assert_same_network(module, EVERY_LAYER)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(genomes(input_shapes=((1, 8, 8), (2, 9, 7)), max_hidden=5))
def test_random_genomes_match_build_model(tmp_path_factory, genome):
    _, module = load_generated(tmp_path_factory.mktemp("g"), genome, activation="elu", bn_momentum=0.1, dropout=0.3)
    assert_same_network(module, genome, activation="elu", bn_momentum=0.1, dropout=0.3)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "elu", "gelu", "tanh"])
def test_training_hyperparameters_are_written_into_the_file(tmp_path, activation):
    _, module = load_generated(tmp_path, "In_8_8:C_3-3-1-1-4:D_10", activation=activation, bn_momentum=0.2,
                               dropout=0.25)
    model = module.build_model()
    assert activation == module.ACTIVATION
    assert any(m.__class__.__name__.lower().replace("_", "") in {"relu", "leakyrelu", "elu", "gelu", "tanh"}
               for m in model.modules())
    assert {m.momentum for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {0.2}
    assert {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)} == {0.25}


@pytest.mark.slow
def test_the_file_runs_as_a_script(tmp_path):
    import subprocess
    import sys

    path, _ = load_generated(tmp_path, EVERY_LAYER)
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "output (10,)" in result.stdout
