"""Klos Alg. 1 migration destinations, computed by hand for several (N_p, p, N_d, m_l)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nascli.ga.islands import migration_destination, migration_plan, share_count


@pytest.mark.parametrize("m_l, n_p, p, n_d, expected", [
    (0, 5, 1, 1, 2),   # (0+1)%5 = 1 == p -> p+1 = 2
    (2, 5, 2, 1, 3),   # (2+1)%5 = 3
    (3, 5, 3, 1, 4),
    (4, 5, 4, 1, 5),   # (4+1)%5 = 0 -> p+1 = 5 == N_p, kept
    (5, 5, 5, 1, 1),   # (5+1)%5 = 1
    (0, 5, 3, 1, 1),   # (0+1)%5 = 1, neither p nor 0
    (1, 5, 5, 1, 2),   # (1+1)%5 = 2
    (4, 5, 2, 1, 3),   # (4+1)%5 = 0 -> 2+1 = 3 != 5 -> 3%5 = 3
    (0, 4, 1, 2, 2),   # N_d = 2: (0+2)%4 = 2
    (2, 4, 2, 2, 4),   # (2+2)%4 = 0 -> 2+2 = 4 == N_p
    (4, 4, 3, 2, 2),   # (4+2)%4 = 2
    (2, 4, 4, 2, 2),   # (2+2)%4 = 0 -> 4+2 = 6 -> 6%4 = 2
    (1, 6, 3, 2, 5),   # (1+2)%6 = 3 == p -> 3+2 = 5
    (3, 6, 6, 3, 3),   # (3+3)%6 = 0 -> 6+3 = 9 -> 9%6 = 3
])
def test_alg1_by_hand(m_l, n_p, p, n_d, expected):
    assert migration_destination(m_l, n_p, p, n_d) == expected


def test_plan_for_five_islands_is_klos_ring():
    pairs, m_l = migration_plan(5, 1, 0)
    assert pairs == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0)] and m_l == 1
    assert migration_plan(5, 1, m_l)[0] == pairs  # the same ring every migration


def test_plan_with_two_datasets_follows_alg1():
    assert migration_plan(4, 2, 0) == ([(0, 1), (1, 3), (2, 1), (3, 1)], 2)


def test_single_island_sends_nobody():
    assert migration_plan(1, 1, 0)[0] == []


@given(st.integers(1, 12), st.data())
def test_plan_never_sends_to_itself_or_outside(n_p, data):
    n_d = data.draw(st.integers(1, n_p))
    m_l = data.draw(st.integers(0, n_p))
    pairs, new_m_l = migration_plan(n_p, n_d, m_l)
    for source, destination in pairs:
        assert 0 <= destination < n_p and destination != source
    assert 0 <= new_m_l <= n_p + n_d


def test_share_counts():
    assert share_count(0.05, 20) == 1 and share_count(0.05, 5) == 1 and share_count(0.30, 20) == 6
    assert share_count(0.30, 5) == 2  # 1.5 rounds up, not to even


@pytest.mark.parametrize("n_p, n_d", [(0, 1), (1, 0), (-2, 3), (3, -1)])
def test_a_non_positive_island_or_dataset_count_is_refused(n_p, n_d):
    with pytest.raises(ValueError, match="^N_p and N_d must be positive$"):
        migration_destination(1, n_p, 1, n_d)
