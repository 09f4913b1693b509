#pragma once
/// What the blocked phase Winograd steps (native_phase_winograd.cpp, the convolutions, and
/// native_phase_winograd_blocked_grad.cpp, a 3x3 kernel's weight gradient) share: the
/// transforms of F(4x4, 2x2) and F(7x7, 2x2) as types (F4, F7), a shape's plan of passes and
/// blocks of tiles, and the input patches' transform, every term's patch side by side.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "runtime/cpu/native_winograd.h"
#include "runtime/cpu/phase_winograd_kernels.h"
#include "runtime/cpu/winograd_kernels.h"

namespace weft::cpu::phase_blocks {

using winograd7::Axis;
using winograd7::Pass;
using winograd7::PassTiles;

inline constexpr int64_t kBlockBytes = 640 * 1024;   ///< a block's V and M (as native_winograd.cpp's)
inline constexpr int64_t kFewestBlockTiles = 16;

#define WEFT_PHASE_INLINE __attribute__((target("avx2,fma"), always_inline)) static inline

/// F(4x4, 2x2)'s transforms (input and output over Lanes<W>, the others on AVX2's eight
/// channels at a time). Its points are 0, 1, -1, 2 and
/// infinity; B^T's rows and G's are scaled to small integers in B^T (Toom-Cook in exact
/// rationals, the scales moved from B^T into G):
///   B^T = [2 -1 -2 1 0; 0 2 1 -1 0; 0 -2 3 -1 0; 0 -1 0 1 0; 0 2 -1 -2 1]
///   G = [1/2 0; 1/2 1/2; 1/6 -1/6; 1/6 1/3; 0 1]    A^T = [1 1 1 1 0; 0 1 -1 2 0; 0 1 1 4 0; 0 1 -1 8 1]
struct F4 {
  static constexpr int kSide = 5;  ///< transformed points along each axis (the first and the last read one tap each)
  static constexpr int kTile = 4;  ///< results per tile along each axis
  /// r = B^T d for five vectors d (one row or column of a patch), any width.
  template <class W>
  static void input(const winograd::Lanes<W> (&d)[5], winograd::Lanes<W> (&r)[5]) {
    using winograd::operator+, winograd::operator-;
    const winograd::Lanes<W> two = W::splat(2.0f);
    r[0] = W::fmadd(two, d[0] - d[2], d[3] - d[1]);
    r[1] = W::fmadd(two, d[1], d[2] - d[3]);
    r[2] = W::fmsub(W::splat(3.0f), d[2], W::fmadd(two, d[1], d[3]));
    r[3] = d[3] - d[1];
    r[4] = W::fmadd(two, d[1] - d[3], d[4] - d[2]);
  }
  /// r = A^T m for five vectors m (one row or column of a tile's products), any width.
  template <class W>
  static void output(const winograd::Lanes<W> (&m)[5], winograd::Lanes<W> (&r)[4]) {
    using winograd::operator+, winograd::operator-;
    const winograd::Lanes<W> sum = m[1] + m[2], diff = m[1] - m[2];
    r[0] = (m[0] + sum) + m[3];
    r[1] = W::fmadd(W::splat(2.0f), m[3], diff);
    r[2] = W::fmadd(W::splat(4.0f), m[3], sum);
    r[3] = W::fmadd(W::splat(8.0f), m[3], diff) + m[4];
  }
  /// r = G g for two vectors g (one row or column of a 2x2 kernel).
  WEFT_PHASE_INLINE void weight(const __m256 (&g)[2], __m256 (&r)[5]) {
    const __m256 sixth = _mm256_set1_ps(1.0f / 6);
    r[0] = _mm256_mul_ps(_mm256_set1_ps(0.5f), g[0]);
    r[1] = _mm256_mul_ps(_mm256_set1_ps(0.5f), _mm256_add_ps(g[0], g[1]));
    r[2] = _mm256_mul_ps(sixth, _mm256_sub_ps(g[0], g[1]));
    r[3] = _mm256_mul_ps(sixth, _mm256_fmadd_ps(_mm256_set1_ps(2.0f), g[1], g[0]));
    r[4] = g[1];
  }
  /// r = A e for four vectors e (one row or column of a tile's result gradients).
  WEFT_PHASE_INLINE void gradient(const __m256 (&e)[4], __m256 (&r)[5]) {
    const __m256 even = _mm256_add_ps(e[0], e[2]), odd = _mm256_add_ps(e[1], e[3]);
    r[0] = e[0];
    r[1] = _mm256_add_ps(even, odd);
    r[2] = _mm256_sub_ps(even, odd);
    r[3] = _mm256_fmadd_ps(_mm256_set1_ps(8.0f), e[3],
                           _mm256_fmadd_ps(_mm256_set1_ps(4.0f), e[2],
                                           _mm256_fmadd_ps(_mm256_set1_ps(2.0f), e[1], e[0])));
    r[4] = e[3];
  }
  /// r = G^T w for five vectors w (one row or column of a kernel's transformed gradient).
  WEFT_PHASE_INLINE void kernel(const __m256 (&w)[5], __m256 (&r)[2]) {
    const __m256 half = _mm256_set1_ps(0.5f), sixth = _mm256_set1_ps(1.0f / 6);
    // z0 = (w0 + w1) / 2 + (w2 + w3) / 6;  z1 = w1 / 2 + (2 w3 - w2) / 6 + w4
    r[0] = _mm256_fmadd_ps(half, _mm256_add_ps(w[0], w[1]), _mm256_mul_ps(sixth, _mm256_add_ps(w[2], w[3])));
    r[1] = _mm256_fmadd_ps(half, w[1], _mm256_fmadd_ps(sixth, _mm256_sub_ps(_mm256_add_ps(w[3], w[3]), w[2]), w[4]));
  }
};

/// F(7x7, 2x2)'s transforms (phase_winograd_kernels.h).
struct F7 {
  static constexpr int kSide = 8;  ///< as F4's: G's first row reads the first tap alone, its last the second
  static constexpr int kTile = 7;
  template <class W>
  static void input(const winograd::Lanes<W> (&d)[8], winograd::Lanes<W> (&r)[8]) {
    winograd7::inputTransform<W>(d, r);
  }
  template <class W>
  static void output(const winograd::Lanes<W> (&m)[8], winograd::Lanes<W> (&r)[7]) {
    winograd7::outputTransform<W>(m, r);
  }
  WEFT_PHASE_INLINE void weight(const __m256 (&g)[2], __m256 (&r)[8]) { winograd7::weightTransform(g, r); }
  WEFT_PHASE_INLINE void gradient(const __m256 (&e)[7], __m256 (&r)[8]) { winograd7::gradientTransform(e, r); }
  WEFT_PHASE_INLINE void kernel(const __m256 (&w)[8], __m256 (&r)[2]) { winograd7::kernelTransform(w, r); }
};

/// Whether shape `s`'s result planes (a conv_transpose's four phases, each half its size) are
/// whole tiles of `tile` x `tile`.
inline bool wholeTiles(const PhaseWinogradShape& s, int64_t tile) {
  const int64_t whole = s.transposed ? 2 * tile : tile;
  return s.outHeight % whole == 0 && s.outWidth % whole == 0;
}

/// Whether shape `s` runs F7: a 4x4 kernel's always (dcgan's and ddpm's planes are 7, 14 and 28
/// wide), a 3x3 kernel's where 7x7 tiles cover its planes whole and 4x4 ones do not (ddpm's
/// 28 -> 14 downsampling conv).
inline bool sevenTiles(const PhaseWinogradShape& s) {
  return s.kernel == 4 || (!wholeTiles(s, F4::kTile) && wholeTiles(s, F7::kTile));
}

/// y for one tile (its first result row `top` and column `left` of pass plane `rows` x `cols`,
/// image `image`) and one vector of result channels k0.. (W's width): A^T M A of the products at
/// `at` (a point's rows pointStride floats apart), then the epilogue. The blocked and the
/// termwise steps'; run inside a step with W's target and gnu::flatten (winograd::Lanes).
template <class F, class W>
void transformTileOutput(const PhaseWinogradShape& s, const Axis& rows, const Axis& cols, int64_t image, int64_t top,
                         int64_t left, const float* at, int64_t pointStride, int64_t k0, const WinogradEpilogue& e,
                         float* y) {
  using L = winograd::Lanes<W>;
  constexpr int S = F::kSide, T = F::kTile;
  L columns[S][T];  // A^T applied down each column of the products
#pragma GCC unroll 8
  for (int b = 0; b < S; ++b) {
    L column[S];
#pragma GCC unroll 8
    for (int a = 0; a < S; ++a) column[a] = W::load(at + (a * S + b) * pointStride);
    F::template output<W>(column, columns[b]);
  }
  const L bias = winograd::epilogueBiasOf<W>(e, k0);
  const ImageLayout out = s.yLayout();
  const int64_t offset = image * s.outHeight * s.outWidth * s.outChannels + out.at(0, k0);
#pragma GCC unroll 7
  for (int a = 0; a < T; ++a) {
    if (top + a >= rows.outCount) break;
    L d[S], r[T];
#pragma GCC unroll 8
    for (int b = 0; b < S; ++b) d[b] = columns[b][a];
    F::template output<W>(d, r);
    const int64_t outRow = rows.outFirst + rows.outStep * (top + a);
#pragma GCC unroll 7
    for (int b = 0; b < T; ++b) {
      if (left + b >= cols.outCount) break;
      const int64_t position = outRow * s.outWidth + cols.outFirst + cols.outStep * (left + b);
      winograd::storeResultOf<W>(e, r[b], bias, offset + position * out.positionStride, y);
    }
  }
}

/// One block of work: tiles first.. first + count of pass `pass`.
struct Block {
  int pass = 0;
  int64_t first = 0, count = 0;
};

/// The terms [first, end) of a pass whose transformed weights may be nonzero at one point.
struct TermRange {
  int first = 0, end = 0;
};

/// The point along one axis where a term's transformed weights are zero, or -1: G's first row
/// reads the first tap alone and its last row the second, so a 3x3 kernel's missing tap (tap 3,
/// past the kernel) zeroes the axis's first or last point.
template <class F>
int zeroPointOf(const Axis& axis, int64_t kernel) {
  if (axis.tap[0] >= kernel) return 0;
  if (axis.tap[1] >= kernel) return F::kSide - 1;
  return -1;
}

/// Puts pass `pass`'s terms in the order where the terms with nonzero weights at each point lie
/// closest together, and returns each point's range of them: where a 3x3 kernel's stride-2
/// phases lack a tap (a conv's four terms: one has all four taps, two have two, one has one),
/// a point on the first or last row or column of the transform multiplies two terms or one
/// instead of four (F(4x4, 2x2): 81 term products a tile instead of 100).
template <class F>
std::vector<TermRange> orderTerms(Pass& pass, int64_t kernel) {
  constexpr int S = F::kSide;
  std::vector<int> order(static_cast<size_t>(pass.terms)), best;
  for (int t = 0; t < pass.terms; ++t) order[static_cast<size_t>(t)] = t;
  std::vector<TermRange> bestRanges;
  int64_t bestDepth = -1;
  do {
    std::vector<TermRange> ranges;
    int64_t depth = 0;
    for (int point = 0; point < S * S; ++point) {
      TermRange r{pass.terms, 0};
      for (int i = 0; i < pass.terms; ++i) {
        const int t = order[static_cast<size_t>(i)];
        if (zeroPointOf<F>(pass.rows[t], kernel) == point / S || zeroPointOf<F>(pass.cols[t], kernel) == point % S)
          continue;
        r.first = std::min(r.first, i), r.end = i + 1;
      }
      if (r.end == 0) r.first = 0;
      depth += r.end - r.first;
      ranges.push_back(r);
    }
    if (bestDepth < 0 || depth < bestDepth) bestDepth = depth, best = order, bestRanges = std::move(ranges);
  } while (std::next_permutation(order.begin(), order.end()));
  const Pass given = pass;
  for (int i = 0; i < pass.terms; ++i) {
    pass.rows[i] = given.rows[best[static_cast<size_t>(i)]];
    pass.cols[i] = given.cols[best[static_cast<size_t>(i)]];
  }
  return bestRanges;
}

/// The geometry of shape `s` with transforms F on `workers` workers: its passes, each pass's
/// products `depth` deep (its terms' channels side by side; at each point only the terms of
/// pointTerms), blocks of at most blockTiles tiles (as many for each worker where the passes
/// allow), and the floats from one point's part of U, V or M to the next (a cache line more
/// than they fill: winograd::tilePointStride).
template <class F>
struct Plan {
  static constexpr int64_t kPoints = F::kSide * F::kSide;  ///< a tile's transformed points
  const PhaseWinogradShape& s;
  std::vector<Pass> passes;
  std::vector<std::vector<TermRange>> pointTerms;  ///< pass p's terms that point xi multiplies
  std::vector<PassTiles> tiling;
  std::vector<Block> blocks;       ///< pass by pass
  std::vector<int64_t> passBlocks;  ///< pass p's blocks: passBlocks[p] .. passBlocks[p + 1]
  int64_t depth = 0, blockTiles = 0, uPoint = 0, vPoint = 0, mPoint = 0;

  Plan(const PhaseWinogradShape& shape, int workers, int64_t blockBytes = kBlockBytes)
      : s(shape), passes(winograd7::passesOf(shape)) {
    depth = passes.front().terms * s.channels;
    for (Pass& pass : passes) pointTerms.push_back(orderTerms<F>(pass, s.kernel));
    for (const Pass& pass : passes) tiling.emplace_back(s, pass, F::kTile);
    const int64_t most = std::max(kFewestBlockTiles, blockBytes / (kPoints * 4 * (depth + s.outChannels)));
    int64_t perPass = 0;  // blocks of each pass, a multiple of the workers
    for (const PassTiles& t : tiling) perPass = std::max(perPass, (t.tiles + most - 1) / most);
    while (perPass % workers != 0) ++perPass;
    for (const PassTiles& t : tiling) blockTiles = std::max(blockTiles, (t.tiles + perPass - 1) / perPass);
    for (size_t p = 0; p < passes.size(); ++p) {
      passBlocks.push_back(static_cast<int64_t>(blocks.size()));
      for (int64_t first = 0; first < tiling[p].tiles; first += blockTiles)
        blocks.push_back({static_cast<int>(p), first, std::min(blockTiles, tiling[p].tiles - first)});
    }
    passBlocks.push_back(static_cast<int64_t>(blocks.size()));
    uPoint = winograd::tilePointStride(depth, s.outChannels);
    vPoint = winograd::tilePointStride(blockTiles, depth);
    mPoint = winograd::tilePointStride(blockTiles, s.outChannels);
  }
  /// One pass's transformed weights (the scratch holds one at a time), and every pass's.
  int64_t weightFloats() const { return kPoints * uPoint; }
  int64_t heldWeightFloats() const { return static_cast<int64_t>(passes.size()) * weightFloats(); }
  int64_t blockFloats() const { return kPoints * (vPoint + mPoint); }
};

/// V[xi][row][term, c] for every term's input patch of tile `tile` of pass `pass`, all
/// channels (W's width at a time: a multiple of it). Runs inside a step with W's target and
/// gnu::flatten (winograd::Lanes).
template <class F, class W>
void transformInputOf(const Plan<F>& p, int pass, const float* x, int64_t tile, float* v, int64_t row) {
  constexpr int S = F::kSide;
  const PhaseWinogradShape& s = p.s;
  int64_t image, top, left;
  p.tiling[static_cast<size_t>(pass)].locate(tile, image, top, left);
  const Pass& terms = p.passes[static_cast<size_t>(pass)];
  const float* plane = x + image * s.height * s.width * s.channels;
  const ImageLayout in = s.xLayout();
  const int64_t position = in.positionStride;
  for (int term = 0; term < terms.terms; ++term) {
    const Axis &rows = terms.rows[term], &cols = terms.cols[term];
    const int64_t pTop = top + rows.start, pLeft = left + cols.start;  // the patch's first row and column in the phase
    // The patch's rows aFirst..aEnd and columns bFirst..bEnd lie in the phase; the rest are zeros.
    const int64_t aFirst = std::max<int64_t>(0, -pTop), aEnd = std::min<int64_t>(S, rows.inCount - pTop);
    const int64_t bFirst = std::max<int64_t>(0, -pLeft), bEnd = std::min<int64_t>(S, cols.inCount - pLeft);
    const int64_t rowStride = rows.inStep * s.width * position, columnStride = cols.inStep * position;
    // The patch's first element, perhaps outside the plane (only read inside it).
    const float* patch = plane + ((rows.inFirst + rows.inStep * pTop) * s.width + cols.inFirst + cols.inStep * pLeft) *
                                     position;
    float* out = v + row * p.depth + term * s.channels;
    if (aFirst == 0 && aEnd == S && bFirst == 0 && bEnd == S) {
      for (int64_t c0 = 0; c0 < s.channels; c0 += W::kFloats)
        winograd::transformPatch<W, S, F>(winograd::InteriorLoad<W>{patch + in.at(0, c0), rowStride, columnStride},
                                          out + c0, p.vPoint);
      continue;
    }
    for (int64_t c0 = 0; c0 < s.channels; c0 += W::kFloats)
      winograd::transformPatch<W, S, F>(
          winograd::BorderLoad<W>{{patch + in.at(0, c0), rowStride, columnStride}, aFirst, aEnd, bFirst, bEnd},
          out + c0, p.vPoint);
  }
}

/// transformInputOf in AVX2's eights, or in AVX-512's sixteens (the channels a multiple of 16).
template <class F>
[[gnu::target("avx2,fma"), gnu::flatten]] void transformInputEights(const Plan<F>& p, int pass, const float* x,
                                                                     int64_t tile, float* v, int64_t row) {
  transformInputOf<F, winograd::Eights>(p, pass, x, tile, v, row);
}
template <class F>
[[gnu::target("avx512f"), gnu::flatten]] void transformInputSixteens(const Plan<F>& p, int pass, const float* x,
                                                                      int64_t tile, float* v, int64_t row) {
  transformInputOf<F, winograd::Sixteens>(p, pass, x, tile, v, row);
}

}  // namespace weft::cpu::phase_blocks
