"""Seed 001 modular classifiers (task.genome_family = modules, task.kind = classification): the
builder, its exact cost model, the operators' parameter count, the config rule, the generated
model.py."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from nascli.config import resolve
from nascli.errors import GenomeError
from nascli.export.modular_codegen import generate_modular_source
from nascli.export.parity import import_model_file
from nascli.ga.module_operators import ModuleSpace, classifier_params, network_params
from nascli.ga.modules import DROPOUT2D, ModuleGenome, ModuleLayer
from nascli.layers.modular import build_modular_classifier, classifier_cost
from nascli.train.engine import plan_model
from tests.helpers import one_torch_thread  # noqa: F401 - autouse

module_genomes = st.lists(st.one_of(st.builds(ModuleLayer, st.sampled_from([1, 2, 3, 5]), st.integers(1, 8)),
                                    st.just(DROPOUT2D)),
                          min_size=1, max_size=4).map(lambda layers: ModuleGenome(tuple(layers)))


@settings(max_examples=15, deadline=None)
@given(genome=module_genomes, channels=st.sampled_from([1, 3]), reductions=st.integers(0, 3),
       classes=st.integers(2, 12))
def test_builder_matches_the_cost_models(genome, channels, reductions, classes):
    shape = (channels, 16, 8)
    model = build_modular_classifier(genome, shape, reductions, classes)
    cost = classifier_cost(genome, shape, reductions, classes)
    assert sum(p.numel() for p in model.parameters()) == cost.params == classifier_params(
        genome, channels, reductions, classes)
    assert network_params(genome, ModuleSpace(channels=channels, reductions=reductions, classes=classes)) == cost.params
    x = torch.randn(2, *shape)
    with FlopCounterMode(display=False) as counter:
        out = model(x[:1])
    assert counter.get_total_flops() == cost.flops
    assert out.shape == (1, classes)


def test_the_module_repeats_after_every_reduction_without_sharing_weights():
    model = build_modular_classifier("3x3conv2d:8,dropout2d", (1, 8, 8), 2, 10)
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    # module (1->8), reduction (8->16), module (16->8), reduction (8->16), module (16->8)
    assert [(c.in_channels, c.out_channels, c.kernel_size[0]) for c in convs] == [
        (1, 8, 3), (8, 16, 1), (16, 8, 3), (8, 16, 1), (16, 8, 3)]
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in model.features) == 2
    assert sum(isinstance(m, torch.nn.Dropout2d) and m.p == 0.5 for m in model.features) == 3
    assert model.head.in_features == 8


def test_reductions_must_divide_the_input():
    with pytest.raises(GenomeError, match="divisible by 8"):
        build_modular_classifier("3x3conv2d:8", (1, 12, 12), 3, 10)


def test_classification_with_modules_validates_and_plans_a_classifier():
    cfg = resolve("digits-modules", project_file=None, env={})
    assert (cfg.task.kind, cfg.task.genome_family) == ("classification", "modules")
    plan = plan_model("3x3conv2d:16,dropout2d", cfg.task, cfg.train)
    model = plan.build()
    assert sum(p.numel() for p in model.parameters()) == plan.params
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


@settings(max_examples=10, deadline=None)
@given(genome=module_genomes, reductions=st.integers(0, 2))
def test_generated_model_py_loads_the_weights_and_computes_the_same(tmp_path_factory, genome, reductions):
    path = tmp_path_factory.mktemp("export") / "model.py"
    path.write_text(generate_modular_source(str(genome), (3, 8, 8), reductions, 7), encoding="utf-8")
    generated = import_model_file(path).build_model().eval()
    reference = build_modular_classifier(genome, (3, 8, 8), reductions, 7).eval()
    generated.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(4, 3, 8, 8)
    with torch.inference_mode():
        assert torch.equal(generated(x), reference(x))
