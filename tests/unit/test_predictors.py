"""Ridge and kernel SVR predictors (pure Python) and genome features."""

from __future__ import annotations

import random

import pytest

from nascli.ga.predictors import KernelSVR, Ridge, genome_features, make_predictor, solve


def test_solve_small_system():
    assert solve([[2.0, 1.0], [1.0, 3.0]], [3.0, 5.0]) == pytest.approx([0.8, 1.4])


def test_ridge_recovers_a_linear_function():
    rng = random.Random(0)
    rows = [[rng.uniform(-1, 1) for _ in range(3)] for _ in range(60)]
    targets = [2 * a - 3 * b + 0.5 * c + 1 for a, b, c in rows]
    model = Ridge(alpha=1e-6).fit(rows, targets)
    assert model.predict([0.2, -0.4, 0.9]) == pytest.approx(2 * 0.2 + 1.2 + 0.45 + 1, abs=1e-4)


def test_ridge_shrinks_with_large_alpha():
    rows = [[float(i)] for i in range(10)]
    targets = [float(i) for i in range(10)]
    assert abs(Ridge(alpha=1e6).fit(rows, targets).weights[0]) < 0.01


def test_svr_fits_a_nonlinear_function_within_epsilon_band():
    xs = [i / 20 for i in range(41)]
    rows = [[x] for x in xs]
    targets = [x * x for x in xs]
    model = KernelSVR(c=100.0, epsilon=0.01, gamma=2.0, sweeps=500).fit(rows, targets)
    errors = [abs(model.predict([x]) - x * x) for x in (0.1, 0.55, 1.3, 1.9)]
    assert max(errors) < 0.08
    linear = Ridge(alpha=1e-6).fit(rows, targets)
    assert sum(abs(linear.predict([x]) - x * x) for x in (0.1, 1.0, 1.9)) > 3 * sum(
        abs(model.predict([x]) - x * x) for x in (0.1, 1.0, 1.9))


def test_constant_target_and_unknown_kind():
    model = KernelSVR().fit([[1.0], [2.0]], [5.0, 5.0])
    assert model.predict([1.5]) == pytest.approx(5.0)
    with pytest.raises(ValueError):
        make_predictor("mlp")
    with pytest.raises(ValueError):
        Ridge().predict([1.0])


def test_genome_features_of_a_klos_genome():
    from nascli.ga.cost import analyse
    from nascli.ga.genome import parse_genome

    genome = parse_genome("In_28_28:C_3-3-1-1-32:P_2-2-2-2-0:R_3-3-2-2-64:D_1-1-1-1-128:D_10")
    features = genome_features(genome)
    assert features["count_C"] == 1 and features["count_P"] == 1 and features["count_R"] == 1
    assert features["depth"] == 4 and features["filters"] == 32 + 64 + 128
    assert features["strided"] == 2  # the pool and the residual layer
    assert features["params"] == analyse(genome).params and features["flops"] == analyse(genome).flops
