// 4x4, stride-2 convolutions (not conv_transposes) as F(7x7, 2x2) Winograd over the input's
// phases, term by term (see native_phase_winograd.cpp for the phases and the blocked step the
// others take). The conv's one pass has four terms, each a 2x2, stride-1 convolution; with the
// 64 points xi of a 7x7 tile:
//   U[xi][c][k] = (G g[k, c] G^T)[xi]        the term's 2x2 taps, all workers;
//   V[xi][t][c] = (B^T d[t, c] B)[xi]        the term's 8x8 input patches of each tile t;
//   M[xi][t][k] (+)= sum over c of V[xi][t][c] * U[xi][c][k]   summed over the terms;
//   y[tile t, k] = A^T M[.][t][k] A          7x7 results, then bias, residual, ReLU.
// Each worker owns a contiguous share of the tiles (their V and M rows); the transformed taps
// are made anew for each term, so the scratch holds one term's. The blocked step holds every
// term's at once and was faster (dcgan's [64,14,14,64] -> 128 conv 2.44 -> 2.19 ms on the AMD
// EPYC) but took 3 MiB more at dcgan's training peak (39.1 MiB against PyTorch's 36.8; 35.3
// with this step).
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#include "runtime/cpu/native_winograd.h"
#include "runtime/cpu/phase_winograd_blocks.h"
#include "runtime/cpu/phase_winograd_kernels.h"
#include "runtime/cpu/vector_state.h"
#include "runtime/cpu/winograd_kernels.h"

namespace weft::cpu {
namespace {

using namespace winograd7;

/// U for term `term` of `pass`, eight result channels k0.. of input channel c; a point's
/// part lies pointStride floats after the previous one's.
__attribute__((target("avx2,fma"))) void transformWeights(const PhaseWinogradShape& s, const Pass& pass, int term,
                                                          const float* w, int64_t c, int64_t k0, float* u,
                                                          int64_t pointStride) {
  // conv: w[k, c, a, b] at ((k * C + c) * 4 + a) * 4 + b; conv_transpose: w[c, k, a, b] at
  // ((c * K + k) * 4 + a) * 4 + b.
  const int32_t step = static_cast<int32_t>(s.transposed ? 16 : s.channels * 16);
  const __m256i offsets = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(step));
  const float* base = s.transposed ? w + (c * s.outChannels + k0) * 16 : w + (k0 * s.channels + c) * 16;
  const Axis &rows = pass.rows[term], &cols = pass.cols[term];
  __m256 columns[2][8];  // G applied down each of the 2x2 kernel's columns
#pragma GCC unroll 2
  for (int b = 0; b < 2; ++b) {
    const __m256 g[2] = {_mm256_i32gather_ps(base + rows.tap[0] * 4 + cols.tap[b], offsets, 4),
                         _mm256_i32gather_ps(base + rows.tap[1] * 4 + cols.tap[b], offsets, 4)};
    winograd7::weightTransform(g, columns[b]);
  }
#pragma GCC unroll 8
  for (int a = 0; a < 8; ++a) {
    const __m256 g[2] = {columns[0][a], columns[1][a]};
    __m256 row[8];
    winograd7::weightTransform(g, row);
#pragma GCC unroll 8
    for (int b = 0; b < 8; ++b) _mm256_storeu_ps(u + (a * 8 + b) * pointStride + c * s.outChannels + k0, row[b]);
  }
}

/// M (+)= V U for tiles first.. last (Accumulate after a pass's first term), point by point.
void multiplyTiles(const PhaseWinogradShape& s, const ScratchLayout& layout, const float* v, const float* u,
                   int64_t first, int64_t last, bool accumulate, float* m) {
  const int64_t C = s.channels, K = s.outChannels;
  for (int64_t point = 0; point < kPoints; ++point) {
    const float* vp = v + point * layout.vPoint;
    const float* up = u + point * layout.uPoint;
    float* mp = m + point * layout.mPoint;
    for (int64_t k0 = 0, step = winograd::multiplyColumns(); k0 < K; k0 += step)
      winograd::forEachRowGroup(last - first, [&](int64_t offset, int64_t count) {
        const int64_t t = first + offset, columns = std::min(step, K - k0);
        if (accumulate)
          winograd::multiplySomeRows<true>(count, columns, vp + t * C, C, 1, up + k0, K, C, mp + t * K + k0, K);
        else
          winograd::multiplySomeRows<false>(count, columns, vp + t * C, C, 1, up + k0, K, C, mp + t * K + k0, K);
      });
  }
}

/// y for tile `tile` of the pass, every result channel (W's width at a time), with the
/// epilogue; a point's rows of M lie pointStride floats apart.
template <class W>
void transformOutputs(const PassTiling& tiling, const float* m, int64_t tile, int64_t pointStride,
                      const WinogradEpilogue& e, float* y) {
  int64_t image, top, left;
  tiling.locate(tile, image, top, left);
  for (int64_t k0 = 0; k0 < tiling.s.outChannels; k0 += W::kFloats)
    phase_blocks::transformTileOutput<phase_blocks::F7, W>(tiling.s, tiling.pass.rows[0], tiling.pass.cols[0], image,
                                                           top, left, m + tile * tiling.s.outChannels + k0,
                                                           pointStride, k0, e, y);
}
/// transformOutputs in AVX2's eights, or in AVX-512's sixteens (winograd::runsSixteens).
[[gnu::target("avx2,fma"), gnu::flatten]] void transformOutputEights(const PassTiling& tiling, const float* m,
                                                                      int64_t tile, int64_t pointStride,
                                                                      const WinogradEpilogue& e, float* y) {
  transformOutputs<winograd::Eights>(tiling, m, tile, pointStride, e, y);
}
[[gnu::target("avx512f"), gnu::flatten]] void transformOutputSixteens(const PassTiling& tiling, const float* m,
                                                                       int64_t tile, int64_t pointStride,
                                                                       const WinogradEpilogue& e, float* y) {
  transformOutputs<winograd::Sixteens>(tiling, m, tile, pointStride, e, y);
}

}  // namespace

int64_t termwisePhaseScratchBytes(const PhaseWinogradShape& s) { return ScratchLayout(s).floats() * 4; }

int64_t termwisePhaseHeldWeightBytes(const PhaseWinogradShape& s) { return 4 * kPoints * ScratchLayout(s).uPoint * 4; }

void termwisePhaseConvolution(const PhaseWinogradShape& s, const float* x, const float* w, const WinogradEpilogue& e,
                              float* y, void* scratch, float* heldWeights, bool heldReady) {
  const std::vector<Pass> passes = passesOf(s);
  const ScratchLayout layout(s);
  float* v = static_cast<float*>(scratch) + kPoints * layout.uPoint;
  float* m = v + kPoints * layout.vPoint;
  // Term i's transformed weights: the scratch's, or the i-th of the four held ones.
  auto weightsOf = [&](int64_t i) {
    return heldWeights ? heldWeights + i * kPoints * layout.uPoint : static_cast<float*>(scratch);
  };
  const bool transformsWeights = !heldWeights || !heldReady, sixteens = winograd::runsSixteens(s.outChannels);
  const auto transformInput = winograd::runsSixteens(s.channels) ? transformInputSixteens : transformInputEights;
#pragma omp parallel num_threads(std::max(1, omp_get_max_threads()))
  {
    UpperHalvesClearedOnExit cleared;
    const int64_t workers = omp_get_num_threads(), me = omp_get_thread_num();
    for (size_t p = 0; p < passes.size(); ++p) {
      const Pass& pass = passes[p];
      const PassTiling tiling(s, pass);
      const int64_t first = tiling.tiles * me / workers, last = tiling.tiles * (me + 1) / workers;
      for (int term = 0; term < pass.terms; ++term) {
        float* u = weightsOf(static_cast<int64_t>(p) * pass.terms + term);
        if (transformsWeights) {
#pragma omp for schedule(static)
          for (int64_t c = 0; c < s.channels; ++c)
            for (int64_t k0 = 0; k0 < s.outChannels; k0 += 8)
              transformWeights(s, pass, term, w, c, k0, u, layout.uPoint);
        }
        for (int64_t t = first; t < last; ++t)
          transformInput(tiling, term, x, t, v, layout.vPoint);
        multiplyTiles(s, layout, v, u, first, last, term > 0, m);
#pragma omp barrier
      }
      for (int64_t t = first; t < last; ++t)
        (sixteens ? transformOutputSixteens : transformOutputEights)(tiling, m, t, layout.mPoint, e, y);
    }
  }
}

}  // namespace weft::cpu
