"""Pareto front and hypervolume: property tests against brute force."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from nascli.ga.pareto import dominates, hypervolume, non_dominated

small_int = st.integers(min_value=0, max_value=5)


def points_of(dimensions: int):
    return st.lists(st.tuples(*[small_int] * dimensions), max_size=25)


def brute_front(points):
    return [i for i, p in enumerate(points) if not any(dominates(q, p) for q in points)]


def brute_volume(points, reference):
    """Count the unit cells [c, c+1) dominated by some point (integer coordinates)."""
    cells = itertools.product(*[range(r) for r in reference])
    return sum(1 for cell in cells if any(all(p_i <= c_i for p_i, c_i in zip(p, cell)) for p in points))


@given(points_of(2))
def test_front_2d_matches_pairwise_definition(points):
    assert non_dominated(points) == brute_front(points)


@given(points_of(3))
def test_front_3d_matches_pairwise_definition(points):
    assert non_dominated(points) == brute_front(points)


@given(points_of(2))
def test_hypervolume_2d_counts_dominated_cells(points):
    assert hypervolume(points, (6, 6)) == brute_volume(points, (6, 6))


@given(points_of(3))
def test_hypervolume_3d_counts_dominated_cells(points):
    assert hypervolume(points, (6, 6, 6)) == brute_volume(points, (6, 6, 6))


@given(points_of(2), st.tuples(small_int, small_int))
def test_adding_a_point_never_shrinks_the_hypervolume(points, extra):
    assert hypervolume(points + [extra], (6, 6)) >= hypervolume(points, (6, 6))


def test_points_outside_the_reference_add_nothing():
    assert hypervolume([(7.0, 0.0), (0.0, 6.0)], (6.0, 6.0)) == 0.0
    assert hypervolume([], (1.0, 1.0)) == 0.0
    assert hypervolume([(0.5, 0.5)], (1.0, 1.0)) == 0.25
