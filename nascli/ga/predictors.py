"""Cheap objective predictors for LINAS (Cummings et al., seed 003): ridge and an RBF-kernel
epsilon-SVR, in pure Python (no numpy: nascli.ga is standard library only).

Both standardise features on the training set. Training sets are small (tens to a few hundred
evaluations), so O(n^2)-O(n^3) pure-Python linear algebra is fast enough.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from nascli.errors import GenomeError

Vector = list[float]


class Predictor(Protocol):
    def fit(self, rows: Sequence[Sequence[float]], targets: Sequence[float]) -> Predictor: ...

    def predict(self, row: Sequence[float]) -> float: ...


def genome_features(genome: Any) -> dict[str, float]:
    """Architecture features of a Klos genome: layer-type counts, depth, filters, kernel area,
    downsampling layers, log parameters and log FLOPs (exact, from nascli.ga.cost), params, flops."""
    from nascli.ga.cost import analyse

    counts = {t: 0.0 for t in ("C", "P", "R", "D", "I")}
    filters = kernel_area = strided = 0.0
    for layer in genome.hidden:
        counts[layer.type] += 1
        if layer.type == "I":
            for branch in layer.enabled_branches:
                filters += branch.filters
                kernel_area += branch.kernel_w * branch.kernel_h
            strided += layer.stride != (1, 1)
        else:
            filters += layer.filters
            kernel_area += layer.kernel_w * layer.kernel_h
            strided += (layer.stride_w, layer.stride_h) != (1, 1)
    try:
        analysis = analyse(genome)
        params, flops = float(analysis.params), float(analysis.flops)
    except GenomeError:
        params = flops = 0.0
    features = {f"count_{t}": c for t, c in counts.items()}
    features.update(depth=float(len(genome.hidden)), filters=filters, kernel_area=kernel_area,
                    strided=float(strided), log_params=math.log1p(params), log_flops=math.log1p(flops),
                    params=params, flops=flops)
    return features


class _Standardiser:
    def __init__(self, rows: Sequence[Sequence[float]]) -> None:
        columns = list(zip(*rows)) if rows else []
        self.mean = [sum(c) / len(c) for c in columns]
        self.scale = []
        for c, m in zip(columns, self.mean):
            sd = math.sqrt(sum((v - m) ** 2 for v in c) / len(c))
            self.scale.append(sd if sd > 1e-12 else 1.0)

    def __call__(self, row: Sequence[float]) -> Vector:
        return [(v - m) / s for v, m, s in zip(row, self.mean, self.scale)]


def solve(matrix: list[Vector], rhs: Vector) -> Vector:
    """Solve A x = b by Gaussian elimination with partial pivoting (A square, non-singular)."""
    n = len(rhs)
    a = [row[:] + [b] for row, b in zip(matrix, rhs)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        if abs(a[pivot][col]) < 1e-15:
            raise ValueError("singular system")
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(col + 1, n):
            factor = a[r][col] / a[col][col]
            if factor:
                for c in range(col, n + 1):
                    a[r][c] -= factor * a[col][c]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (a[r][n] - sum(a[r][c] * x[c] for c in range(r + 1, n))) / a[r][r]
    return x


class Ridge:
    """Ridge regression on standardised features: w = (X'X + alpha I)^-1 X'(y - mean y)."""

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha
        self.weights: Vector = []
        self.intercept = 0.0
        self._standardise: _Standardiser | None = None

    def fit(self, rows: Sequence[Sequence[float]], targets: Sequence[float]) -> Ridge:
        if not rows:
            raise ValueError("ridge needs at least one training row")
        self._standardise = _Standardiser(rows)
        x = [self._standardise(r) for r in rows]
        self.intercept = sum(targets) / len(targets)
        y = [t - self.intercept for t in targets]
        d = len(x[0])
        gram = [[sum(row[i] * row[j] for row in x) + (self.alpha if i == j else 0.0) for j in range(d)]
                for i in range(d)]
        moment = [sum(row[i] * t for row, t in zip(x, y)) for i in range(d)]
        self.weights = solve(gram, moment) if d else []
        return self

    def predict(self, row: Sequence[float]) -> float:
        if self._standardise is None:
            raise ValueError("predict before fit")
        return self.intercept + sum(w * v for w, v in zip(self.weights, self._standardise(row)))


class KernelSVR:
    """epsilon-insensitive support vector regression with an RBF kernel, solved in the dual by
    coordinate descent: min 1/2 b'Kb - y'b + eps |b|_1, -C <= b_i <= C, with K + 1 absorbing the
    bias. Each coordinate step is a closed-form soft threshold, so it converges monotonically."""

    def __init__(self, c: float = 10.0, epsilon: float = 0.01, gamma: float | None = None,
                 sweeps: int = 200, tolerance: float = 1e-6) -> None:
        self.c, self.epsilon, self.gamma, self.sweeps, self.tolerance = c, epsilon, gamma, sweeps, tolerance
        self._standardise: _Standardiser | None = None
        self._support: list[Vector] = []
        self._beta: Vector = []
        self._offset = 0.0
        self._spread = 1.0

    def _kernel(self, a: Sequence[float], b: Sequence[float]) -> float:
        return math.exp(-self._gamma * sum((u - v) ** 2 for u, v in zip(a, b))) + 1.0

    def fit(self, rows: Sequence[Sequence[float]], targets: Sequence[float]) -> KernelSVR:
        if not rows:
            raise ValueError("SVR needs at least one training row")
        self._standardise = _Standardiser(rows)
        x = [self._standardise(r) for r in rows]
        self._gamma = self.gamma if self.gamma is not None else 1.0 / max(1, len(x[0]))
        # Targets centred and scaled so epsilon and C mean the same on any metric.
        self._offset = sum(targets) / len(targets)
        spread = math.sqrt(sum((t - self._offset) ** 2 for t in targets) / len(targets))
        self._spread = spread if spread > 1e-12 else 1.0
        y = [(t - self._offset) / self._spread for t in targets]
        n = len(x)
        k = [[self._kernel(x[i], x[j]) for j in range(n)] for i in range(n)]
        beta = [0.0] * n
        kbeta = [0.0] * n
        for _ in range(self.sweeps):
            largest = 0.0
            for i in range(n):
                kii = k[i][i]
                u = beta[i] - (kbeta[i] - y[i]) / kii
                new = math.copysign(max(abs(u) - self.epsilon / kii, 0.0), u)
                new = min(self.c, max(-self.c, new))
                delta = new - beta[i]
                if delta:
                    beta[i] = new
                    row = k[i]
                    for j in range(n):
                        kbeta[j] += delta * row[j]
                    largest = max(largest, abs(delta))
            if largest < self.tolerance:
                break
        keep = [i for i in range(n) if beta[i] != 0.0]
        self._support = [x[i] for i in keep]
        self._beta = [beta[i] for i in keep]
        return self

    def predict(self, row: Sequence[float]) -> float:
        if self._standardise is None:
            raise ValueError("predict before fit")
        z = self._standardise(row)
        value = sum(b * self._kernel(s, z) for b, s in zip(self._beta, self._support))
        return self._offset + self._spread * value


def make_predictor(kind: str) -> Predictor:
    if kind == "ridge":
        return Ridge()
    if kind == "svr":
        return KernelSVR()
    raise ValueError(f"unknown predictor {kind!r} (ridge|svr)")


def feature_row(features: Mapping[str, float], names: Sequence[str]) -> Vector:
    return [float(features.get(name, 0.0)) for name in names]
