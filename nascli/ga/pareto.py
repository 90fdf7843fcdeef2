"""Multi-objective helpers for NSGA-II and LINAS (Deb et al. 2002): all objectives MINIMISED.

Callers turn "larger is better" objectives into minimised ones (e.g. 1 - accuracy, or -value)
before calling. Pure standard library; deterministic tie-breaking by index so the same points
always give the same fronts, crowding and survivors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Point = Sequence[float]


def dominates(a: Point, b: Point) -> bool:
    """a Pareto-dominates b: no worse in every objective and strictly better in at least one."""
    better = False
    for x, y in zip(a, b, strict=True):
        if x > y:
            return False
        if x < y:
            better = True
    return better


def non_dominated(points: Sequence[Point]) -> list[int]:
    """Indices of the points no other point dominates, in input order (exact duplicates all kept).

    Sort-and-sweep for two objectives (n log n: a report's run can hold 100k evaluations);
    pairwise for more.
    """
    if not points:
        return []
    if len(points[0]) == 2:
        order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
        keep: list[int] = []
        best_second = math.inf
        best_pair: tuple[float, float] | None = None
        for index in order:
            first, second = points[index]
            if second < best_second:
                keep.append(index)
                best_second, best_pair = second, (first, second)
            elif (first, second) == best_pair:  # an exact duplicate of a front point is on the front too
                keep.append(index)
        return sorted(keep)
    return [i for i, p in enumerate(points) if not any(dominates(q, p) for j, q in enumerate(points) if j != i)]


def non_dominated_sort(points: Sequence[Point]) -> list[list[int]]:
    """Fast non-dominated sort: fronts of indices, front 0 non-dominated, each front ascending."""
    n = len(points)
    dominated_by: list[list[int]] = [[] for _ in range(n)]
    domination_count = [0] * n
    for i in range(n):
        for j in range(i + 1, n):
            if dominates(points[i], points[j]):
                dominated_by[i].append(j)
                domination_count[j] += 1
            elif dominates(points[j], points[i]):
                dominated_by[j].append(i)
                domination_count[i] += 1
    fronts: list[list[int]] = []
    current = [i for i in range(n) if domination_count[i] == 0]
    while current:
        fronts.append(sorted(current))
        following: list[int] = []
        for i in current:
            for j in dominated_by[i]:
                domination_count[j] -= 1
                if domination_count[j] == 0:
                    following.append(j)
        current = following
    return fronts


def crowding_distance(points: Sequence[Point], front: Sequence[int]) -> dict[int, float]:
    """Crowding distance of each index in `front`: boundary points get infinity (Deb et al.)."""
    distance = {i: 0.0 for i in front}
    if len(front) <= 2:
        return {i: math.inf for i in front}
    for m in range(len(points[front[0]])):
        ordered = sorted(front, key=lambda i: (points[i][m], i))
        low, high = points[ordered[0]][m], points[ordered[-1]][m]
        distance[ordered[0]] = distance[ordered[-1]] = math.inf
        if high == low:
            continue
        for k in range(1, len(ordered) - 1):
            distance[ordered[k]] += (points[ordered[k + 1]][m] - points[ordered[k - 1]][m]) / (high - low)
    return distance


def rank_and_crowding(points: Sequence[Point]) -> tuple[list[int], list[float]]:
    """Per point: its front number (0 best) and its crowding distance within that front."""
    rank = [0] * len(points)
    crowd = [0.0] * len(points)
    for number, front in enumerate(non_dominated_sort(points)):
        for i, d in crowding_distance(points, front).items():
            rank[i], crowd[i] = number, d
    return rank, crowd


def crowded_better(a: tuple[int, float], b: tuple[int, float]) -> bool:
    """Crowded-comparison operator on (rank, crowding): lower rank, then larger crowding, wins."""
    return a[0] < b[0] or (a[0] == b[0] and a[1] > b[1])


def select_survivors(points: Sequence[Point], n: int) -> list[int]:
    """NSGA-II environmental selection: whole fronts while they fit, then the most crowded-apart."""
    chosen: list[int] = []
    for front in non_dominated_sort(points):
        if len(chosen) + len(front) <= n:
            chosen.extend(front)
            continue
        distance = crowding_distance(points, front)
        by_spread = sorted(front, key=lambda i: (-distance[i], i))
        chosen.extend(by_spread[: n - len(chosen)])
        break
    return chosen


def hypervolume(points: Sequence[Point], reference: Point) -> float:
    """Exact volume dominated by `points` and bounded by `reference` (minimisation).

    Points not strictly better than the reference in every objective add nothing. 2-D uses a
    sweep; more objectives slice along the last one (exact, fine for the front sizes here).
    """
    inside = [tuple(float(v) for v in p) for p in points
              if all(v < r for v, r in zip(p, reference, strict=True))]
    return _volume(inside, tuple(float(r) for r in reference))


def _volume(points: list[tuple[float, ...]], reference: tuple[float, ...]) -> float:
    if not points:
        return 0.0
    if len(reference) == 1:
        return reference[0] - min(p[0] for p in points)
    if len(reference) == 2:
        area, best_y = 0.0, reference[1]
        for x, y in sorted(points):
            if y < best_y:
                area += (reference[0] - x) * (best_y - y)
                best_y = y
        return area
    levels = sorted({p[-1] for p in points})
    volume = 0.0
    for k, level in enumerate(levels):
        top = levels[k + 1] if k + 1 < len(levels) else reference[-1]
        slab = [p[:-1] for p in points if p[-1] <= level]
        volume += _volume(slab, reference[:-1]) * (top - level)
    return volume
