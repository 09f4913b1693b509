#!/usr/bin/env python3
"""Fits the coefficients of weft's f32 exp (RangeReducedExp in backends/cpu/codegen/mlir_jit.cpp):
exp(x) = 2^(n - 1) * P(r) with n = round(x / ln 2), r = x - n ln 2 in [-ln2 / 2, ln2 / 2] and
P(r) ~ 2 e^r (the factor 2 lets 2^(n - 1) stay a normal number for every n the kernel meets),
P of degree DEGREE. Least squares of the relative error, reweighted each round by that error
(Lawson's iteration toward the smallest largest error); the best round is kept. Then checks the
kernel's arithmetic in float32 (each fused multiply-add rounded once) against math.exp.
Needs numpy (Debian: python3-numpy). Usage: python3 scripts/fit_exp.py [DEGREE]"""
import math
import sys

import numpy as np

DEGREE = int(sys.argv[1]) if len(sys.argv) > 1 else 6
HALF_LN2 = math.log(2) / 2

rs = np.linspace(-HALF_LN2 * 1.01, HALF_LN2 * 1.01, 40001)
target = 2 * np.exp(rs)


def fit(rounds=300):
    weights, best = np.ones_like(rs), None
    powers = rs[:, None] ** np.arange(DEGREE + 1)
    for _ in range(rounds):
        a = powers / target[:, None]
        solution, *_ = np.linalg.lstsq(a * weights[:, None], weights, rcond=None)
        error = np.abs(powers @ solution / target - 1)
        if best is None or error.max() < best[1]:
            best = (solution, error.max())
        weights = weights * error
        weights /= weights.sum()
    return best


coefficients, largest = fit()
print("largest relative error in double: %.3g" % largest)
print("coefficients (r^0 first):", ", ".join("%.9e" % c for c in coefficients))

f32 = np.float32
LOG2E, MAGIC = f32(1.44269504), f32(12582912.0 + 126)  # 1.5 * 2^23 + 126: t's low bits hold n + 126
LN2_HIGH, LN2_LOW = f32(0.693145752), f32(1.42860677e-06)


def fma(a, b, c):
    return (a.astype(np.float64) * b + c).astype(np.float32)


x = np.concatenate([np.linspace(-86.9, 88.72, 2000001), np.linspace(-1, 1, 200001)]).astype(np.float32)
y = np.clip(x, f32(-87.0), f32(88.7229))
t = fma(y, LOG2E, MAGIC)
n = (t - MAGIC).astype(np.float32)
r = fma(n, -LN2_HIGH, y)
r = fma(n, -LN2_LOW, r)
p = np.full_like(r, f32(coefficients[-1]))
for c in coefficients[-2::-1]:
    p = fma(p, r, f32(c))
scale = (t.view(np.int32) << 23).view(np.float32)  # 2^(n - 1): exponent bits n + 126
approx = (p * scale).astype(np.float32)
exact = np.exp(x.astype(np.float64))
relative = np.abs(approx - exact) / exact
ulp = np.abs(approx.astype(np.float64) - exact) / np.spacing(exact.astype(np.float32)).astype(np.float64)
print("float32: largest relative error %.3g, largest error %.2f ulp" % (relative.max(), ulp.max()))
