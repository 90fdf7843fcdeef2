"""Every operator output builds in torch and trains: forward and backward with no NaN, every parameter
gets a gradient, and the built model's parameter count equals the cost model's (timm-style)."""

from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")

from nascli.ga.cost import analyse  # noqa: E402
from nascli.ga.operators import MUTATIONS, apply, minimal_genome, random_genome  # noqa: E402
from nascli.ga.search_space import SearchSpace  # noqa: E402
from nascli.layers import build_model, count_parameters  # noqa: E402

# Small widths keep 100+ torch builds fast; kernels, strides, layer types and variants are the real ones.
SPACE = SearchSpace(filters=(4, 8), dense_units=(8, 16), inception_variants=(0, 1, 2, 3), max_layers=8,
                    max_params=2_000_000)
CASES = (((28, 28, 1), 40), ((32, 32, 3), 40), ((8, 8, 1), 40), ((96, 96, 3), 6))  # (w, h, c), genomes


def operator_outputs(shape, count: int, rng: random.Random):
    """Initial-population genomes and children of every operator applied to them."""
    seed = minimal_genome(*shape, 10)
    population = [random_genome(seed, SPACE, rng.randint(5, 60), rng) for _ in range(max(2, count // 2))]
    outputs = list(population)
    while len(outputs) < count:
        operator = rng.choice(MUTATIONS + ("crossover",))
        outputs.append(apply(operator, rng.sample(population, 2), SPACE, rng))
    return outputs[:count]


def test_operator_outputs_build_and_run_forward_and_backward():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rng = random.Random(2024)
    built, kinds = 0, set()
    for (width, height, channels), count in CASES:
        for genome in operator_outputs((width, height, channels), count, rng):
            model = build_model(genome)
            assert count_parameters(model) == analyse(genome).params, str(genome)
            model.train()
            out = model(torch.randn(2, channels, height, width))
            assert out.shape == (2, 10)
            assert torch.isfinite(out).all(), str(genome)
            out.square().mean().backward()
            for name, parameter in model.named_parameters():
                assert parameter.grad is not None, f"{name} got no gradient in {genome}"
                assert torch.isfinite(parameter.grad).all(), f"{name} gradient not finite in {genome}"
            built += 1
            kinds.update(layer.type for layer in genome.hidden)
    print(f"built and ran {built} operator outputs")  # shown with pytest -s; reported in the notes
    assert built == sum(count for _, count in CASES)
    assert len(kinds) == len(SPACE.layers), f"only {kinds} were built"
