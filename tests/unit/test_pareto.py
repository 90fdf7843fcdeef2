"""Non-dominated sorting, crowding distance and hypervolume on known point sets."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nascli.ga.pareto import (
    crowding_distance,
    dominates,
    hypervolume,
    non_dominated_sort,
    rank_and_crowding,
    select_survivors,
)


def test_fronts_of_a_known_set():
    points = [(1, 5), (2, 3), (4, 1), (3, 4), (5, 5), (2, 6), (6, 2), (6, 6)]
    assert non_dominated_sort(points) == [[0, 1, 2], [3, 5, 6], [4], [7]]


def test_duplicates_share_a_front():
    assert non_dominated_sort([(1, 1), (1, 1), (2, 2)]) == [[0, 1], [2]]


def test_crowding_distance_known_values():
    points = [(0, 4), (1, 2), (2, 1), (4, 0)]
    d = crowding_distance(points, [0, 1, 2, 3])
    assert math.isinf(d[0]) and math.isinf(d[3])
    # objective 0 range 4, objective 1 range 4: point 1 -> (2-0)/4 + (4-1)/4 = 1.25; point 2 -> (4-1)/4 + (2-0)/4
    assert d[1] == 1.25 and d[2] == 1.25


def test_survivors_take_whole_fronts_then_the_least_crowded():
    points = [(0, 4), (1, 2), (1.1, 1.9), (4, 0), (5, 5), (6, 6)]
    # crowding: point 1 -> 0.275 + 0.525 = 0.8, point 2 -> 0.75 + 0.5 = 1.25: point 2 survives
    assert sorted(select_survivors(points, 3)) == [0, 2, 3]
    assert sorted(select_survivors(points, 5)) == [0, 1, 2, 3, 4]
    rank, crowd = rank_and_crowding(points)
    assert rank == [0, 0, 0, 0, 1, 2]


def test_hypervolume_known_2d_fronts():
    assert hypervolume([(1, 3), (2, 2), (3, 1)], (4, 4)) == 6.0
    assert hypervolume([(0, 0)], (1, 1)) == 1.0
    assert hypervolume([(0.5, 0.5), (0.6, 0.6)], (1, 1)) == 0.25  # dominated point adds nothing
    assert hypervolume([(2, 0)], (1, 1)) == 0.0  # outside the reference box
    assert hypervolume([], (1, 1)) == 0.0
    assert hypervolume([(1, 1), (2, 0)], (3, 5)) == 2 * 4 + 1 * 1  # a reference that is not a square


def test_hypervolume_known_3d():
    assert hypervolume([(0, 0, 1), (1, 1, 0)], (2, 2, 2)) == 5.0
    assert hypervolume([(0, 0, 1), (1, 1, 0)], (2, 3, 4)) == 2 * 3 * 3 + 1 * 2 * 1


def _brute_force_2d(points, reference, steps=40):
    # count grid cells (cell centres) dominated by some point
    cell = reference[0] / steps, reference[1] / steps
    area = 0.0
    for i, j in itertools.product(range(steps), range(steps)):
        cx, cy = (i + 0.5) * cell[0], (j + 0.5) * cell[1]
        if any(px <= cx and py <= cy for px, py in points):
            area += cell[0] * cell[1]
    return area


@settings(max_examples=40)
@given(st.lists(st.tuples(st.integers(0, 39), st.integers(0, 39)), min_size=1, max_size=8))
def test_hypervolume_matches_grid_count_on_grid_points(raw):
    points = [(x / 10, y / 10) for x, y in raw]
    assert math.isclose(hypervolume(points, (4, 4)), _brute_force_2d(points, (4, 4)), abs_tol=1e-9)


@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9), st.integers(0, 9)), min_size=1, max_size=15))
def test_first_front_is_exactly_the_non_dominated(points):
    fronts = non_dominated_sort(points)
    assert sorted(i for f in fronts for i in f) == list(range(len(points)))
    first = set(fronts[0])
    for i, p in enumerate(points):
        assert (i in first) == (not any(dominates(q, p) for q in points))
    for earlier, later in zip(fronts, fronts[1:]):  # every later member is dominated by an earlier one
        assert all(any(dominates(points[a], points[b]) for a in earlier) for b in later)


def test_dominance_is_a_strict_boolean_over_equal_length_points():
    assert dominates((1, 2), (1, 2)) is False  # equal points: neither dominates
    assert dominates((1, 2), (1, 3)) is True and dominates((1, 3), (1, 2)) is False
    with pytest.raises(ValueError):
        dominates((1, 2), (1, 2, 3))
    with pytest.raises(ValueError):
        hypervolume([(1, 2)], (3, 3, 3))
    with pytest.raises(ValueError):
        hypervolume([(1, 5)], (3,))  # not truncated to the reference's length


def test_a_point_dominated_from_two_fronts_waits_for_both():
    # point 0 is dominated by point 1 (front 0) and by point 2 (front 1): it is in front 2
    assert non_dominated_sort([(2, 2), (0, 0), (1, 1)]) == [[1], [2], [0]]


def test_crowding_of_a_three_point_front_sorted_per_objective_with_an_offset_range():
    # listed out of objective order; objective 0 spans 10..14, objective 1 spans 1..3
    points = [(14, 1), (10, 3), (11, 2)]
    assert crowding_distance(points, [0, 1, 2]) == {0: math.inf, 1: math.inf, 2: (14 - 10) / 4 + (3 - 1) / 2}
    # objective 0 constant (its ends by index are boundaries), objective 1 still counts
    column = [(3, 20), (3, 10), (3, 12), (3, 30)]
    assert crowding_distance(column, [0, 1, 2, 3]) == {0: math.inf, 1: math.inf, 2: (20 - 10) / 20, 3: math.inf}
    assert crowding_distance(column, [1, 2]) == {1: math.inf, 2: math.inf}


def test_survivors_keep_front_order_when_a_front_fits_exactly():
    points = [(0, 4), (1, 2), (1.1, 1.9), (4, 0), (5, 5), (6, 6)]
    assert select_survivors(points, 4) == [0, 1, 2, 3]
    assert select_survivors(points, 5) == [0, 1, 2, 3, 4]


def test_crowded_comparison_prefers_the_lower_rank_then_the_larger_distance():
    from nascli.ga.pareto import crowded_better

    assert crowded_better((0, 0.1), (1, 9.0)) and not crowded_better((1, 9.0), (0, 0.1))
    assert crowded_better((1, 2.0), (1, 1.0)) and not crowded_better((1, 1.0), (1, 2.0))
    assert not crowded_better((1, 2.0), (1, 2.0))
    assert not crowded_better((2, 0.5), (1, 0.1))  # a[0] > b[1] alone must not win
    assert crowded_better((3, math.inf), (3, 0.0))


def test_hypervolume_of_one_objective_is_the_distance_to_the_reference():
    assert hypervolume([(2.0,), (1.5,), (9.0,)], (5.0,)) == 3.5
