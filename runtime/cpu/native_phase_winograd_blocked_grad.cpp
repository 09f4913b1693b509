// The weight gradient of a 3x3, stride-2 conv by phases as F(4x4, 2x2) (or F(7x7, 2x2): see
// sevenTiles) Winograd (see
// native_phase_winograd.cpp and phase_winograd_blocks.h), the transpose of the forward step,
// in blocks of tiles the workers share; with the 25 points xi of a 4x4 tile t of dy's plane:
//   P[xi][t][k] = (A e[t, k] A^T)[xi]            the result gradients of tile t;
//   V[xi][t][term, c] = (B^T d[t, term, c] B)[xi]   each term's input patch;
//   W[xi][k][term, c] = sum over t of P[xi][t][k] * V[xi][t][term, c];
//   dw[k, c, taps of the term] = G^T W[.][k][term, c] G   (taps past the 3x3 kernel dropped).
// (A 4x4 kernel's runs term by term: native_phase_winograd_weight_grad.cpp.)
#include <omp.h>

#include <algorithm>

#include "runtime/cpu/native_winograd.h"
#include "runtime/cpu/phase_winograd_blocks.h"
#include "runtime/cpu/vector_state.h"

namespace weft::cpu {
namespace {

using namespace phase_blocks;

/// P[xi][row][k0..k0+8] = A e A^T for the result gradients of tile `tile` (of the conv's one
/// pass), channels k0..; zeros past the result plane.
template <class F>
[[gnu::target("avx2,fma"), gnu::flatten]] void transformGradient(const Plan<F>& p, const float* dy, int64_t tile,
                                                           int64_t k0, float* out, int64_t row) {
  constexpr int S = F::kSide, T = F::kTile;
  const PhaseWinogradShape& s = p.s;
  int64_t image, top, left;
  p.tiling.front().locate(tile, image, top, left);
  const float* base = dy + image * s.outHeight * s.outWidth * s.outChannels + k0;
  __m256 columns[T][S];  // A applied down each column of the tile
#pragma GCC unroll 7
  for (int b = 0; b < T; ++b) {
    __m256 e[T];
#pragma GCC unroll 7
    for (int a = 0; a < T; ++a)
      e[a] = top + a < s.outHeight && left + b < s.outWidth
                 ? _mm256_loadu_ps(base + ((top + a) * s.outWidth + left + b) * s.outChannels)
                 : _mm256_setzero_ps();
    F::gradient(e, columns[b]);
  }
  float* at = out + row * s.outChannels + k0;
#pragma GCC unroll 8
  for (int a = 0; a < S; ++a) {
    __m256 e[T], r[S];
#pragma GCC unroll 7
    for (int b = 0; b < T; ++b) e[b] = columns[b][a];
    F::gradient(e, r);
#pragma GCC unroll 8
    for (int b = 0; b < S; ++b) _mm256_storeu_ps(at + (a * S + b) * p.mPoint, r[b]);
  }
}

/// dw[k, c0..c0+8, the taps of term `term`] = G^T W[.][k][term, c] G; W's points lie
/// pointStride floats apart. A tap past the kernel (a 3x3 one's row or column 3) is dropped.
template <class F>
__attribute__((target("avx2,fma"))) void transformKernel(const Plan<F>& p, int term, const float* sums, int64_t k,
                                                         int64_t c0, int64_t pointStride, float* dw) {
  constexpr int S = F::kSide;
  const PhaseWinogradShape& s = p.s;
  const float* at = sums + k * p.depth + term * s.channels + c0;
  __m256 columns[S][2];  // G^T applied down each column of the points
  winograd::transformPointColumns<S, 2, F::kernel>(at, pointStride, columns);
  alignas(32) float taps[2][2][8];
#pragma GCC unroll 2
  for (int a = 0; a < 2; ++a) {
    __m256 row[S], r[2];
#pragma GCC unroll 8
    for (int b = 0; b < S; ++b) row[b] = columns[b][a];
    F::kernel(row, r);
#pragma GCC unroll 2
    for (int b = 0; b < 2; ++b) _mm256_store_ps(taps[a][b], r[b]);
  }
  const Axis &rows = p.passes.front().rows[term], &cols = p.passes.front().cols[term];
  const int64_t R = s.kernel;
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 2; ++b) {
      if (rows.tap[a] >= R || cols.tap[b] >= R) continue;
      for (int64_t j = 0; j < 8; ++j)
        dw[((k * s.channels + c0 + j) * R + rows.tap[a]) * R + cols.tap[b]] = taps[a][b][j];
    }
}

/// The floats of the weight gradient's sums W [points][K][terms, C] (a point's part a cache
/// line longer than it needs).
template <class F>
int64_t gradientSumFloats(const PhaseWinogradShape& s) {
  return Plan<F>::kPoints * winograd::tilePointStride(s.outChannels, 4 * s.channels);
}

/// The weight gradient's plan: blocks the workers share. (Blocks as large as W moved its sums
/// less often, [128,64,3,3] 1.70-1.79 -> 1.50-1.70 ms on the AMD EPYC, but added 6 MiB to
/// resnet's training peak.)
template <class F>
Plan<F> gradientPlan(const PhaseWinogradShape& s) {
  return Plan<F>(s, 1);
}

template <class F>
void weightGradient(const PhaseWinogradShape& s, const float* x, const float* dy, float* dw, void* scratch) {
  constexpr int64_t kPoints = Plan<F>::kPoints;
  const Plan<F> p = gradientPlan<F>(s);
  const int64_t D = p.depth, K = s.outChannels, sumPoint = winograd::tilePointStride(K, D);
  float* sums = static_cast<float*>(scratch);  // W
  float* v = sums + gradientSumFloats<F>(s);
  float* g = v + kPoints * p.vPoint;  // P, in M's room
  const int terms = p.passes.front().terms;
#pragma omp parallel
  {
    UpperHalvesClearedOnExit cleared;
#pragma omp for schedule(static)
    for (int64_t point = 0; point < kPoints; ++point) std::fill_n(sums + point * sumPoint, K * D, 0.0f);
    for (const Block& block : p.blocks) {
#pragma omp for schedule(static)
      for (int64_t t = 0; t < block.count; ++t) {
        transformInputEights(p, 0, x, block.first + t, v, t);
        for (int64_t k0 = 0; k0 < K; k0 += 8) transformGradient(p, dy, block.first + t, k0, g, t);
      }
      // Each point's sums in two halves of their columns: even shares (F(4x4)'s 25 points
      // split 13 to 12 between two workers, and one waited 8% of the products). A point's
      // columns are its terms' (the others' sums feed only taps past the kernel, and stay 0).
#pragma omp for schedule(static)
      for (int64_t share = 0; share < 2 * kPoints; ++share) {
        const int64_t point = share / 2;
        const TermRange terms = p.pointTerms.front()[static_cast<size_t>(point)];
        int64_t begin = terms.first * s.channels, end = terms.end * s.channels;
        if ((end - begin) % 16 != 0) begin = 0, end = D;  // (D / 2 is a multiple of 16)
        const int64_t middle = begin + ((end - begin) / 16 + 1) / 2 * 16;  // the first share takes the odd chunk
        const int64_t first = share % 2 ? middle : begin, last = share % 2 ? end : middle;
        const float* vp = v + point * p.vPoint;
        const float* gp = g + point * p.mPoint;
        float* wp = sums + point * sumPoint;
        winograd::forEachRowGroup(K, [&](int64_t k0, int64_t rows) {
          for (int64_t c0 = first, step = winograd::multiplyColumns(); c0 < last; c0 += step)
            winograd::multiplySomeRows<true>(rows, std::min(step, last - c0), gp + k0, 1, K, vp + c0, D, block.count,
                                             wp + k0 * D + c0, D);
        });
      }
    }
#pragma omp for schedule(static)
    for (int64_t job = 0; job < K * terms; ++job)
      for (int64_t c0 = 0; c0 < s.channels; c0 += 8)
        transformKernel(p, static_cast<int>(job % terms), sums, job / terms, c0, sumPoint, dw);
  }
}

}  // namespace

int64_t blockedPhaseWeightGradScratchBytes(const PhaseWinogradShape& s) {
  if (sevenTiles(s)) return (gradientSumFloats<F7>(s) + gradientPlan<F7>(s).blockFloats()) * 4;
  return (gradientSumFloats<F4>(s) + gradientPlan<F4>(s).blockFloats()) * 4;
}

void blockedPhaseWeightGradient(const PhaseWinogradShape& s, const float* x, const float* dy, float* dw,
                                void* scratch) {
  if (sevenTiles(s)) return weightGradient<F7>(s, x, dy, dw, scratch);
  weightGradient<F4>(s, x, dy, dw, scratch);
}

}  // namespace weft::cpu
