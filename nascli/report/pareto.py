"""Pareto fronts and hypervolume for the report (pure: standard library only).

Everything here minimises. Callers turn "higher is better" objectives (accuracy) into
"lower is better" ones (error = 1 - accuracy) before calling, and normalise each objective so
the hypervolume of different runs can be compared on one plot.
"""

from __future__ import annotations

from collections.abc import Sequence

Point = tuple[float, ...]


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when `a` is no worse than `b` in every objective and better in at least one."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def non_dominated(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the points no other point dominates, in input order (duplicates all kept).

    Sort-and-sweep for two objectives (n log n: a run has up to 100k evaluations); pairwise otherwise.
    """
    if not points:
        return []
    if len(points[0]) == 2:
        order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
        keep: list[int] = []
        best_second = float("inf")
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


def hypervolume(points: Sequence[Sequence[float]], reference: Sequence[float]) -> float:
    """The volume dominated by `points` and bounded by `reference` (minimisation, exact).

    Points not strictly better than the reference in every objective add nothing. Exact by
    slicing along the first objective; fast for the front sizes a report shows (hundreds).
    """
    inside = [tuple(p) for p in points if all(x < r for x, r in zip(p, reference, strict=True))]
    if not inside:
        return 0.0
    front = [inside[i] for i in non_dominated(inside)]
    return _slice_volume(sorted(set(front)), tuple(reference))


def _slice_volume(points: list[Point], reference: Point) -> float:
    if len(reference) == 1:
        return reference[0] - min(p[0] for p in points)
    volume = 0.0
    ordered = sorted(points, key=lambda p: p[0])
    for index, point in enumerate(ordered):
        upper = ordered[index + 1][0] if index + 1 < len(ordered) else reference[0]
        width = upper - point[0]
        if width <= 0:
            continue
        # every point up to here dominates the slab [point[0], upper) in the first objective
        rest = [p[1:] for p in ordered[: index + 1]]
        volume += width * _slice_volume(rest, reference[1:])
    return volume
