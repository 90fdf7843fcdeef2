"""Island-model migration (Klos et al., seed 000, Sec. 3.1, Alg. 1 and Table 5).

Alg. 1 numbers sub-populations 1..N_p: step 1 can yield 0 (never an island), which the algorithm
maps to `p + N_d`, keeping N_p itself reachable (line 4). We therefore compute destinations on
1-based numbers and convert: island index i (0-based, as in keys) is sub-population i + 1.
`m_l` is carried from one call to the next across all islands of one migration step in island
order, and across migration steps, which yields Klos's ring 1->2->3->4->5->1 for N_d = 1.
"""

from __future__ import annotations

import math


def migration_destination(m_l: int, n_p: int, p: int, n_d: int) -> int:
    """Alg. 1 verbatim on 1-based sub-population numbers: returns m_c (the caller stores it as m_l)."""
    if n_p < 1 or n_d < 1:
        raise ValueError("N_p and N_d must be positive")
    m_c = (m_l + n_d) % n_p
    if m_c == p or m_c == 0:
        m_c = p + n_d
        if m_c != n_p:
            m_c = m_c % n_p
    return m_c


def migration_plan(n_islands: int, n_datasets: int, m_l: int) -> tuple[list[tuple[int, int]], int]:
    """(source, destination) pairs of 0-based islands for one migration step, and the new m_l.

    A source whose Alg. 1 result is not another island (0, itself, or out of range, which only
    happens in degenerate cases such as one island or N_d == N_p) sends nobody.
    """
    pairs: list[tuple[int, int]] = []
    for p in range(1, n_islands + 1):
        m_c = migration_destination(m_l, n_islands, p, n_datasets)
        m_l = m_c
        if 1 <= m_c <= n_islands and m_c != p:
            pairs.append((p - 1, m_c - 1))
    return pairs, m_l


def share_count(share: float, size: int, *, minimum: int = 1) -> int:
    """round(share * size) with halves rounded up (not banker's rounding), at least `minimum`."""
    return max(minimum, math.floor(share * size + 0.5))
