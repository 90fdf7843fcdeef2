"""Pure cost model: hand-computed shapes, parameters and FLOPs, and its invariants."""

from __future__ import annotations

import subprocess
import sys

import pytest
from genome_strategies import genomes
from hypothesis import HealthCheck, given, settings

from nascli.errors import GenomeError
from nascli.ga.cost import ConvStep, ParallelStep, PoolSameStep, analyse, branch_plan
from nascli.ga.genome import Branch, Genome, InputLayer, LayerSpec, OutputLayer, parse_genome

OFF = "2-0-0_1-1-1-1-0.3-0-0_1-1-1-1-0.4-0-0_1-1-1-1-0"


def cost(text: str):
    return analyse(parse_genome(text))


def test_conv_and_output_by_hand():
    a = cost("In_28_28:C_3-3-1-1-32:D_10")
    conv_params, conv_macs = 1 * 32 * 9, 1 * 32 * 9 * 28 * 28
    out_params, out_macs = 32 * 28 * 28 * 10 + 10, 32 * 28 * 28 * 10
    assert a.shapes == ((1, 28, 28), (32, 28, 28), (10,))
    assert a.params == conv_params + 2 * 32 + out_params
    assert a.flops == 2 * (conv_macs + out_macs)


def test_strided_conv_rounds_up_and_pool_rounds_down():
    assert cost("In_7_5_2:C_2-2-2-2-4:D_1").shapes[1] == (4, 3, 4)
    assert cost("In_7_5_2:P_2-2-2-2-0:D_1").shapes[1] == (2, 2, 3)
    assert cost("In_7_5_2:P_3-2-1-3-0:D_1").shapes[1] == (2, 2, 5)  # kw=3 kh=2 sw=1 sh=3
    assert cost("In_7_5_2:P_2-2-2-2-0:D_1").params == 2 * 2 * 3 * 1 + 1  # pooling is free


def test_residual_identity_and_projection_by_hand():
    identity = cost("In_8_8_4:R_3-3-1-1-4:D_1")
    body = 2 * (4 * 4 * 9 + 2 * 4)
    assert identity.params == body + 4 * 64 + 1
    assert identity.flops == 2 * (2 * 4 * 4 * 9 * 64 + 4 * 64)
    projected = cost("In_8_8_4:R_3-3-2-2-8:D_1")
    body = (4 * 8 * 9 + 16) + (8 * 8 * 9 + 16)
    shortcut = 4 * 8 + 16
    assert projected.shapes[1] == (8, 4, 4)
    assert projected.params == body + shortcut + 8 * 16 + 1
    assert projected.flops == 2 * ((4 * 8 * 9 + 8 * 8 * 9 + 4 * 8) * 16 + 8 * 16)


def test_hidden_dense_flattens_then_chains():
    a = cost("In_4_4_2:D_1-1-1-1-5:D_1-1-1-1-3:D_2")
    assert a.shapes == ((2, 4, 4), (5,), (3,), (2,))
    assert a.params == (32 * 5 + 5) + (5 * 3 + 3) + (3 * 2 + 2)
    assert a.flops == 2 * (32 * 5 + 5 * 3 + 3 * 2)


def test_branch_plans_follow_the_documented_variants():
    def branch(bt, fact, kw, kh, s=1, f=4):
        return Branch(bt, True, fact, kw, kh, s, s, f)

    assert branch_plan(branch(1, 0, 3, 3), 2) == (ConvStep(2, 4, 3, 3, 1, 1),)
    assert branch_plan(branch(2, 0, 3, 3, 2), 2) == (ConvStep(2, 4, 1, 1, 1, 1), ConvStep(4, 4, 3, 3, 2, 2))
    assert branch_plan(branch(3, 2, 5, 3, 2), 2) == (
        ConvStep(2, 4, 1, 1, 1, 1),
        ConvStep(4, 4, 1, 5, 1, 1), ConvStep(4, 4, 3, 1, 1, 1),  # (kh, kw): 1 x kw, then kh x 1
        ConvStep(4, 4, 1, 5, 1, 1), ConvStep(4, 4, 3, 1, 2, 2),  # stride on the branch's last op
    )
    assert branch_plan(branch(1, 1, 7, 7, 2), 2) == (
        ConvStep(2, 4, 3, 3, 1, 1), ConvStep(4, 4, 3, 3, 1, 1), ConvStep(4, 4, 3, 3, 2, 2))
    assert branch_plan(branch(1, 1, 2, 2), 2) == (ConvStep(2, 4, 2, 2, 1, 1),)  # < 3: unchanged
    assert branch_plan(branch(3, 3, 3, 3), 2)[-1] == ParallelStep(
        (ConvStep(8, 4, 1, 3, 1, 1), ConvStep(8, 4, 3, 1, 1, 1)))  # expanded input is 2f
    assert branch_plan(branch(4, 3, 3, 2, 2), 2) == (PoolSameStep(2, 3), ConvStep(2, 4, 1, 1, 2, 2))


def test_inception_concatenates_enabled_branches():
    a = cost("In_16_16_3:I.1-1-3_3-3-2-2-4.2-1-0_3-3-2-2-5.3-0-0_1-1-1-1-0.4-1-0_3-3-2-2-6:D_2")
    assert a.shapes[1] == (8 + 5 + 6, 8, 8)
    expanded = 2 * (3 * 4 * 3 + 8)
    reduce_then_conv = (3 * 5 + 10) + (5 * 5 * 9 + 10)
    pool_then_1x1 = 3 * 6 + 12
    assert a.params == expanded + reduce_then_conv + pool_then_1x1 + 19 * 64 * 2 + 2


def test_factorisation_changes_what_fits():
    with pytest.raises(GenomeError, match="larger than"):
        cost(f"In_4_4:I.1-1-0_5-5-1-1-4.{OFF}:D_2")
    assert cost(f"In_4_4:I.1-1-1_5-5-1-1-4.{OFF}:D_2").shapes[1] == (4, 4, 4)


def test_residual_second_conv_must_fit_the_strided_size():
    with pytest.raises(GenomeError, match="position 1"):
        cost("In_6_6:R_3-3-3-3-4:D_2")  # 6 -> 2 after the first conv; the second 3x3 no longer fits


def test_analyse_rejects_directly_built_bad_genomes():
    bad = [
        Genome(InputLayer(8, 8), (LayerSpec("C", 3, 3, 1, 1, 0),), OutputLayer(2)),
        Genome(InputLayer(8, 8), (LayerSpec("D", 1, 1, 1, 1, 4), LayerSpec("C", 3, 3, 1, 1, 4)),
               OutputLayer(2)),
        Genome(InputLayer(8, 8), (LayerSpec("X", 3, 3, 1, 1, 4),), OutputLayer(2)),
        Genome(InputLayer(8, 8), (LayerSpec("P", 9, 1, 1, 1, 0),), OutputLayer(2)),
        Genome(InputLayer(8, 8), (), OutputLayer(0)),
    ]
    for genome in bad:
        with pytest.raises(GenomeError):
            analyse(genome)


@given(genomes())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_invariants_on_random_genomes(genome):
    a = analyse(genome)
    assert len(a.shapes) == len(genome.hidden) + 2
    assert a.shapes[-1] == (genome.output.units,)
    assert all(d >= 1 for shape in a.shapes for d in shape)
    assert a.params > 0 and a.flops > 0 and a.flops % 2 == 0
    assert analyse(genome) == a  # deterministic
    inp = genome.input
    assert a.shapes[0] == (inp.channels, inp.height, inp.width)


def test_genome_and_cost_import_no_third_party_modules():
    code = ("import sys; import nascli.ga.genome, nascli.ga.cost, nascli.ga.modules; "
            "bad = [m for m in ('torch', 'numpy', 'pydantic') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
