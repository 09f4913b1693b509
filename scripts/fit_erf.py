#!/usr/bin/env python3
"""Fits the coefficients of weft's f32 erf (RationalErf in backends/cpu/codegen/mlir_jit.cpp):
erf(x) ~ x * P(x^2) / Q(x^2) on [0, 4] (odd, so [-4, 4]), P of degree 6 and Q of degree 5
in x^2 with Q(0) = 1. Linearized least squares (x P - erf Q = erf with Q's constant moved
right), reweighted each round by the error times |Q| (Lawson's iteration toward the smallest
largest error); the best round is kept. Then checks the fit as the kernel computes it, in
float32 with a clamp to [-4, 4] and to [-1, 1], against math.erf.
Needs numpy (Debian: python3-numpy). Usage: python3 scripts/fit_erf.py"""
import math

import numpy as np

NUMERATOR_DEGREE, DENOMINATOR_DEGREE = 6, 5

xs = np.linspace(0, 4, 40001)
erf = np.array([math.erf(x) for x in xs])
t = xs * xs / 16  # x^2 scaled to [0, 1] for a well-conditioned fit


def fit(rounds=200):
    weights, best = np.ones_like(xs), None
    for _ in range(rounds):
        a = np.concatenate([xs[:, None] * t[:, None] ** np.arange(NUMERATOR_DEGREE + 1),
                            -(erf[:, None] * t[:, None] ** np.arange(1, DENOMINATOR_DEGREE + 1))], axis=1)
        solution, *_ = np.linalg.lstsq(a * weights[:, None], erf * weights, rcond=None)
        p = solution[:NUMERATOR_DEGREE + 1]
        q = np.concatenate([[1], solution[NUMERATOR_DEGREE + 1:]])
        denominator = np.polyval(q[::-1], t)
        error = xs * np.polyval(p[::-1], t) / denominator - erf
        if best is None or np.abs(error).max() < best[2]:
            best = (p, q, np.abs(error).max())
        weights = weights * np.abs(error) * np.abs(denominator)
        weights /= weights.sum()
    return best


p, q, largest = fit()
# Coefficients of powers of z = x^2 (t = z / 16).
pz = [c / 16 ** k for k, c in enumerate(p)]
qz = [c / 16 ** k for k, c in enumerate(q)]
print("largest error in double: %.3g" % largest)
print("numerator (z^0 first):  ", ", ".join("%.9e" % c for c in pz))
print("denominator (z^0 first):", ", ".join("%.9e" % c for c in qz))

x = np.linspace(-6, 6, 600001).astype(np.float32)
clamped = np.clip(x, np.float32(-4), np.float32(4))
z = (clamped * clamped).astype(np.float32)
num = np.float32(0)
for c in pz[::-1]:
    num = (num * z + np.float32(c)).astype(np.float32)
den = np.float32(0)
for c in qz[::-1]:
    den = (den * z + np.float32(c)).astype(np.float32)
approx = np.clip((clamped * num / den).astype(np.float32), -1, 1)
exact = np.array([math.erf(float(v)) for v in x])
near = np.abs(x) < 1
print("float32: largest error %.3g, largest relative error where |x| < 1: %.3g" %
      (np.abs(approx - exact).max(), (np.abs(approx - exact) / np.maximum(np.abs(exact), 1e-30))[near].max()))
