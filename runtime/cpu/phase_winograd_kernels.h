#pragma once
/// What the phase Winograd steps share: F(7x7, 2x2)'s transforms (input, output and gradient
/// over winograd::Lanes<W>, any width; weight and kernel on AVX2's eight channels at a time)
/// and the split of a 4x4 (or 3x3), stride-2 convolution into passes and terms (every phase
/// step); the term-by-term steps' tiling, scratch layout and input patches' transform
/// (native_phase_winograd_terms.cpp and the 4x4 weight gradient; the blocked steps' are in
/// phase_winograd_blocks.h). A 4x4, stride-2 convolution splits into 2x2, stride-1 ones
/// (one per phase of its input or result), each computed 7x7 results at a time from an 8x8
/// patch with 64 products per channel pair instead of 196. The points are 0, 1, -1, 2, -2,
/// 1/2, -1/2 and infinity (as NNPACK's F(6x6, 3x3)); with a 2x2 kernel g and a patch d:
///   forward   y = A^T [(G g G^T) . (B^T d B)] A      (7x7 results)
///   gradient  dg = G^T [(A e A^T) . (B^T d B)] G     (e: the tile's 7x7 result gradients).
/// The matrices (B^T 8x8, G 8x2, A^T 7x8) were derived by Toom-Cook in exact rationals.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "runtime/cpu/native_winograd.h"
#include "runtime/cpu/prefetch.h"
#include "runtime/cpu/winograd_kernels.h"

namespace weft::cpu::winograd7 {

inline constexpr int64_t kPoints = 64;  ///< the 8x8 transformed points of a tile
inline constexpr int64_t kTile = 7;     ///< results per tile along each axis

#define WEFT_WINOGRAD7_INLINE __attribute__((target("avx2,fma"), always_inline)) inline

/// Shorthand for a broadcast constant.
WEFT_WINOGRAD7_INLINE __m256 splat(float f) { return _mm256_set1_ps(f); }

/// r = B^T d for eight vectors d (one row or column of a patch), any width. Rows 1-6 pair up
/// as an even part plus and minus an odd part.
template <class W>
void inputTransform(const winograd::Lanes<W> (&d)[8], winograd::Lanes<W> (&r)[8]) {
  using winograd::operator+, winograd::operator-;
  r[0] = W::fmadd(W::splat(5.25f), d[4] - d[2], d[0] - d[6]);
  r[7] = W::fmadd(W::splat(5.25f), d[3] - d[5], d[7] - d[1]);
  // (1, 1) and (1, -1): d2 - 4.25 d4 + d6 +- (d1 - 4.25 d3 + d5)
  winograd::Lanes<W> even = W::fnmadd(W::splat(4.25f), d[4], d[2] + d[6]);
  winograd::Lanes<W> odd = W::fnmadd(W::splat(4.25f), d[3], d[1] + d[5]);
  r[1] = even + odd;
  r[2] = even - odd;
  // (2, -2) halves: 0.25 d2 - 1.25 d4 + d6 +- (0.5 d1 - 2.5 d3 + 2 d5)
  even = W::fmadd(W::splat(0.25f), d[2], W::fnmadd(W::splat(1.25f), d[4], d[6]));
  odd = W::fmadd(W::splat(0.5f), d[1], W::fmsub(W::splat(2.0f), d[5], W::mul(W::splat(2.5f), d[3])));
  r[3] = even + odd;
  r[4] = even - odd;
  // (1/2, -1/2) doubled: 4 d2 - 5 d4 + d6 +- (2 d1 - 2.5 d3 + 0.5 d5)
  even = W::fmadd(W::splat(4.0f), d[2], W::fnmadd(W::splat(5.0f), d[4], d[6]));
  odd = W::fmadd(W::splat(2.0f), d[1], W::fmsub(W::splat(0.5f), d[5], W::mul(W::splat(2.5f), d[3])));
  r[5] = even + odd;
  r[6] = even - odd;
}
/// r = A^T m for eight vectors m (one row or column of a tile's products), any width.
template <class W>
void outputTransform(const winograd::Lanes<W> (&m)[8], winograd::Lanes<W> (&r)[7]) {
  using winograd::operator+, winograd::operator-;
  const winograd::Lanes<W> s1 = m[1] + m[2], d1 = m[1] - m[2];
  const winograd::Lanes<W> s2 = m[3] + m[4], d2 = m[3] - m[4];
  const winograd::Lanes<W> s3 = m[5] + m[6], d3 = m[5] - m[6];
  r[0] = (m[0] + s1) + (s2 + s3);
  r[1] = W::fmadd(W::splat(2.0f), d2, W::fmadd(W::splat(0.5f), d3, d1));
  r[2] = W::fmadd(W::splat(4.0f), s2, W::fmadd(W::splat(0.25f), s3, s1));
  r[3] = W::fmadd(W::splat(8.0f), d2, W::fmadd(W::splat(0.125f), d3, d1));
  r[4] = W::fmadd(W::splat(16.0f), s2, W::fmadd(W::splat(1.0f / 16), s3, s1));
  r[5] = W::fmadd(W::splat(32.0f), d2, W::fmadd(W::splat(1.0f / 32), d3, d1));
  r[6] = W::fmadd(W::splat(64.0f), s2, W::fmadd(W::splat(1.0f / 64), s3, s1)) + m[7];
}

/// r = G g for two vectors g (one row or column of a 2x2 kernel).
WEFT_WINOGRAD7_INLINE void weightTransform(const __m256 (&g)[2], __m256 (&r)[8]) {
  const __m256 sum = _mm256_add_ps(g[0], g[1]), diff = _mm256_sub_ps(g[0], g[1]);
  const __m256 doubled = _mm256_add_ps(g[0], g[0]);
  r[0] = g[0];
  r[1] = _mm256_mul_ps(splat(-2.0f / 9), sum);
  r[2] = _mm256_mul_ps(splat(-2.0f / 9), diff);
  r[3] = _mm256_mul_ps(splat(1.0f / 90), _mm256_fmadd_ps(splat(2.0f), g[1], g[0]));
  r[4] = _mm256_mul_ps(splat(1.0f / 90), _mm256_fnmadd_ps(splat(2.0f), g[1], g[0]));
  r[5] = _mm256_mul_ps(splat(16.0f / 45), _mm256_add_ps(doubled, g[1]));
  r[6] = _mm256_mul_ps(splat(16.0f / 45), _mm256_sub_ps(doubled, g[1]));
  r[7] = g[1];
}

/// r = A e for seven vectors e (one row or column of a tile's result gradients), any width.
template <class W>
void gradientTransform(const winograd::Lanes<W> (&e)[7], winograd::Lanes<W> (&r)[8]) {
  using winograd::operator+, winograd::operator-;
  using L = winograd::Lanes<W>;
  const L even1 = (e[0] + e[2]) + (e[4] + e[6]);
  const L odd1 = (e[1] + e[3]) + e[5];
  const L even2 =
      W::fmadd(W::splat(64.0f), e[6], W::fmadd(W::splat(16.0f), e[4], W::fmadd(W::splat(4.0f), e[2], e[0])));
  const L odd2 = W::fmadd(W::splat(32.0f), e[5], W::fmadd(W::splat(8.0f), e[3], W::mul(W::splat(2.0f), e[1])));
  const L even3 =
      W::fmadd(W::splat(1.0f / 64), e[6], W::fmadd(W::splat(1.0f / 16), e[4], W::fmadd(W::splat(0.25f), e[2], e[0])));
  const L odd3 = W::fmadd(W::splat(1.0f / 32), e[5], W::fmadd(W::splat(0.125f), e[3], W::mul(W::splat(0.5f), e[1])));
  r[0] = e[0];
  r[1] = even1 + odd1;
  r[2] = even1 - odd1;
  r[3] = even2 + odd2;
  r[4] = even2 - odd2;
  r[5] = even3 + odd3;
  r[6] = even3 - odd3;
  r[7] = e[6];
}
/// gradientTransform on AVX2's vectors (the blocked phase weight gradient's tiles).
WEFT_WINOGRAD7_INLINE void gradientTransform(const __m256 (&e)[7], __m256 (&r)[8]) {
  winograd::Lanes<winograd::Eights> in[7], out[8];
#pragma GCC unroll 7
  for (int i = 0; i < 7; ++i) in[i].v = e[i];
  gradientTransform<winograd::Eights>(in, out);
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) r[i] = out[i].v;
}

/// r = G^T w for eight vectors w (one row or column of a kernel's transformed gradient).
WEFT_WINOGRAD7_INLINE void kernelTransform(const __m256 (&w)[8], __m256 (&r)[2]) {
  const __m256 s1 = _mm256_add_ps(w[1], w[2]), d1 = _mm256_sub_ps(w[1], w[2]);
  const __m256 s2 = _mm256_add_ps(w[3], w[4]), d2 = _mm256_sub_ps(w[3], w[4]);
  const __m256 s3 = _mm256_add_ps(w[5], w[6]), d3 = _mm256_sub_ps(w[5], w[6]);
  // z0 = w0 - 2/9 s1 + s2/90 + 32/45 s3;  z1 = -2/9 d1 + d2/45 + 16/45 d3 + w7
  r[0] = _mm256_fmadd_ps(splat(-2.0f / 9), s1,
                         _mm256_fmadd_ps(splat(1.0f / 90), s2, _mm256_fmadd_ps(splat(32.0f / 45), s3, w[0])));
  r[1] = _mm256_fmadd_ps(splat(-2.0f / 9), d1,
                         _mm256_fmadd_ps(splat(1.0f / 45), d2, _mm256_fmadd_ps(splat(16.0f / 45), d3, w[7])));
}

/// The most scratch a phase step may take; larger convolutions stay with oneDNN (every
/// benchmark model's take 5.2 MB).
constexpr int64_t kMostScratchBytes = int64_t{24} << 20;

/// True when shape `s` fits the phase kernels (phaseWinogradFits, whatever this CPU is).
inline bool shapeFits(const PhaseWinogradShape& s) {
  const int64_t k = s.kernel;
  auto sizeFits = [&](int64_t in, int64_t out, int64_t pad) {
    if (pad < 0 || pad > 2 || in <= 0 || out <= 0) return false;
    const int64_t transposedOut = 2 * (in - 1) - 2 * pad + k;  // a 3x3 one's output padding may add a row
    return s.transposed ? out == transposedOut || (k == 3 && out == transposedOut + 1)
                        : in + 2 * pad >= k && out == (in + 2 * pad - k) / 2 + 1;
  };
  return (k == 3 || k == 4) && s.images > 0 && s.channels > 0 && s.channels % 8 == 0 && s.outChannels > 0 &&
         s.outChannels % 16 == 0 && sizeFits(s.height, s.outHeight, s.padTop) &&
         sizeFits(s.width, s.outWidth, s.padLeft);
}

/// One axis of a 2x2, stride-1 convolution inside the stride-2 one: it reads every inStep-th
/// input row (or column) from inFirst, inCount of them, and writes every outStep-th result
/// row from outFirst, outCount of them; its result r reads its rows start + r and start + r +
/// 1 with the 4x4 kernel's taps tap[0] and tap[1].
struct Axis {
  int64_t inFirst = 0, inStep = 1, inCount = 0;
  int64_t outFirst = 0, outStep = 1, outCount = 0;
  int64_t start = 0;
  int tap[2] = {0, 0};
};

/// The axis of phase `q` (0: even rows, 1: odd) for `in` input and `out` result rows,
/// padding `p`: of the input for a conv, of the result for a conv_transpose.
inline Axis axisOf(bool transposed, int64_t q, int64_t in, int64_t out, int64_t p) {
  const int a0 = static_cast<int>((q + p) % 2);  // the taps of the phase: a0 and a0 + 2
  Axis axis;
  if (!transposed) {
    // Tap a reads input row 2i - p + a = 2(i + o) + q: o = (a - p - q) / 2 in the phase.
    axis.inFirst = q, axis.inStep = 2, axis.inCount = (in - q + 1) / 2;
    axis.outCount = out;
    axis.start = (a0 - p - q) / 2;
    axis.tap[0] = a0, axis.tap[1] = a0 + 2;
  } else {
    // Result row 2m + q takes input row i = m + (q + p - a) / 2 through tap a.
    axis.inCount = in;
    axis.outFirst = q, axis.outStep = 2, axis.outCount = (out - q + 1) / 2;
    axis.start = (q + p - a0) / 2 - 1;  // tap a0 + 2 reads a row before tap a0
    axis.tap[0] = a0 + 2, axis.tap[1] = a0;
  }
  return axis;
}

/// One result plane and the terms summed into it (their result fields agree).
struct Pass {
  int terms = 0;
  Axis rows[4], cols[4];
};

/// A conv's one pass over its input's four phases, or a conv_transpose's four passes.
inline std::vector<Pass> passesOf(const PhaseWinogradShape& s) {
  std::vector<Pass> passes;
  for (int64_t qy = 0; qy < 2; ++qy)
    for (int64_t qx = 0; qx < 2; ++qx) {
      if (passes.empty() || s.transposed) passes.emplace_back();
      Pass& pass = passes.back();
      pass.rows[pass.terms] = axisOf(s.transposed, qy, s.height, s.outHeight, s.padTop);
      pass.cols[pass.terms] = axisOf(s.transposed, qx, s.width, s.outWidth, s.padLeft);
      ++pass.terms;
    }
  return passes;
}

/// A pass's result plane in tiles of `size` x `size`.
struct PassTiles : winograd::TileGrid {
  PassTiles(const PhaseWinogradShape& s, const Pass& pass, int64_t size)
      : TileGrid(s.images, pass.rows[0].outCount, pass.cols[0].outCount, size) {}
};

/// A pass's result plane in 7x7 tiles, with the shape and pass it tiles.
struct PassTiling : PassTiles {
  const PhaseWinogradShape& s;
  const Pass& pass;

  PassTiling(const PhaseWinogradShape& shape, const Pass& p) : PassTiles(shape, p, kTile), s(shape), pass(p) {}
};

/// The most tiles any pass of `s` has (the scratch's rows).
inline int64_t mostTiles(const PhaseWinogradShape& s) {
  int64_t most = 0;
  for (const Pass& pass : passesOf(s)) most = std::max(most, PassTiling(s, pass).tiles);
  return most;
}

/// A phase step's scratch, point by point: U [64][C][K], V [64][rows][C] and M [64][rows][K]
/// (a weight gradient's W [64][K][C], V and P [64][rows][K] take the same room), each point's
/// part a cache line longer than it needs (winograd::tilePointStride): with power-of-two
/// sizes the 64 points' parts began in the same set of the L1 cache, and each transform's 64
/// loads or stores missed it (the transforms took 48% of dcgan's conv_transpose on the AMD
/// EPYC).
struct ScratchLayout {
  int64_t rows;                    ///< tiles (mostTiles)
  int64_t uPoint, vPoint, mPoint;  ///< floats from one point's part to the next
  explicit ScratchLayout(const PhaseWinogradShape& s)
      : rows(mostTiles(s)),
        uPoint(winograd::tilePointStride(s.channels, s.outChannels)),
        vPoint(winograd::tilePointStride(rows, s.channels)),
        mPoint(winograd::tilePointStride(rows, s.outChannels)) {}
  int64_t floats() const { return kPoints * (uPoint + vPoint + mPoint); }
};

/// V[xi][tile][c] = B^T d B for term `term`'s input patch of tile `tile`, every channel (W's
/// width at a time: the channels a multiple of it); a point's rows lie pointStride floats apart.
/// Runs inside a step with W's target and gnu::flatten (winograd::Lanes).
template <class W>
void transformInputOf(const PassTiling& tiling, int term, const float* x, int64_t tile, float* v,
                      int64_t pointStride) {
  using L = winograd::Lanes<W>;
  const PhaseWinogradShape& s = tiling.s;
  const Axis &rows = tiling.pass.rows[term], &cols = tiling.pass.cols[term];
  int64_t image, top, left;
  tiling.locate(tile, image, top, left);
  top += rows.start, left += cols.start;  // the patch's first row and column in the phase
  const ImageLayout in = s.xLayout();
  const int64_t position = in.positionStride;
  // The patch's rows aFirst..aEnd and columns bFirst..bEnd lie in the phase; the rest are zeros.
  const int64_t aFirst = std::max<int64_t>(0, -top), aEnd = std::min<int64_t>(8, rows.inCount - top);
  const int64_t bFirst = std::max<int64_t>(0, -left), bEnd = std::min<int64_t>(8, cols.inCount - left);
  for (int64_t c0 = 0; c0 < s.channels; c0 += W::kFloats) {
    const float* base = x + image * s.height * s.width * s.channels + in.at(0, c0);
    L columns[8][8];  // B^T applied down each column of the patch (every loop unrolled)
#pragma GCC unroll 8
    for (int b = 0; b < 8; ++b) {
      L d[8];
      const bool inside = b >= bFirst && b < bEnd;
      const float* column = base + (cols.inFirst + cols.inStep * (left + b)) * position;
#pragma GCC unroll 8
      for (int a = 0; a < 8; ++a)
        d[a] = inside && a >= aFirst && a < aEnd
                   ? W::load(column + (rows.inFirst + rows.inStep * (top + a)) * s.width * position)
                   : W::splat(0);
      inputTransform<W>(d, columns[b]);
    }
#pragma GCC unroll 8
    for (int a = 0; a < 8; ++a) {
      const L d[8] = {columns[0][a], columns[1][a], columns[2][a], columns[3][a],
                      columns[4][a], columns[5][a], columns[6][a], columns[7][a]};
      L r[8];
      inputTransform<W>(d, r);
#pragma GCC unroll 8
      for (int b = 0; b < 8; ++b) W::store(v + (a * 8 + b) * pointStride + tile * s.channels + c0, r[b]);
    }
  }
}

/// Asks the L2 cache for the pixels transformInputOf loads for term `term`'s input patch of
/// tile `tile`: a cache line for each 16 channels of each.
inline void prefetchInputPatch(const PassTiling& tiling, int term, const float* x, int64_t tile) {
  const PhaseWinogradShape& s = tiling.s;
  const Axis &rows = tiling.pass.rows[term], &cols = tiling.pass.cols[term];
  int64_t image, top, left;
  tiling.locate(tile, image, top, left);
  top += rows.start, left += cols.start;
  const ImageLayout in = s.xLayout();
  const int64_t aFirst = std::max<int64_t>(0, -top), aEnd = std::min<int64_t>(8, rows.inCount - top);
  const int64_t bFirst = std::max<int64_t>(0, -left), bEnd = std::min<int64_t>(8, cols.inCount - left);
  const float* base = x + image * s.height * s.width * s.channels;
  for (int64_t a = aFirst; a < aEnd; ++a) {
    const int64_t row = (rows.inFirst + rows.inStep * (top + a)) * s.width;
    for (int64_t b = bFirst; b < bEnd; ++b)
      for (int64_t c0 = 0; c0 < s.channels; c0 += 16)
        prefetchLine(base + in.at(row + cols.inFirst + cols.inStep * (left + b), c0));
  }
}

/// transformInputOf in AVX2's eights, or in AVX-512's sixteens (the channels a multiple of 16).
[[gnu::target("avx2,fma"), gnu::flatten]] inline void transformInputEights(const PassTiling& tiling, int term,
                                                                            const float* x, int64_t tile, float* v,
                                                                            int64_t pointStride) {
  transformInputOf<winograd::Eights>(tiling, term, x, tile, v, pointStride);
}
[[gnu::target("avx512f"), gnu::flatten]] inline void transformInputSixteens(const PassTiling& tiling, int term,
                                                                             const float* x, int64_t tile, float* v,
                                                                             int64_t pointStride) {
  transformInputOf<winograd::Sixteens>(tiling, term, x, tile, v, pointStride);
}

}  // namespace weft::cpu::winograd7
