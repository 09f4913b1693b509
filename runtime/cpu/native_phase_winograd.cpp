// Native stride-2 convolutions and conv_transposes with 4x4 or 3x3 kernels as Winograd over
// phases (see native_winograd.h and phase_winograd_kernels.h). Along each axis a stride-2
// window of four taps reads two rows of each parity (a 3x3 kernel is a 4x4 one whose last row
// and column are zeros): a conv is the sum over the four phases of its input (even and odd
// rows, even and odd columns) of 2x2, stride-1 convolutions, one pass of four terms, and a
// conv_transpose writes each phase of its result with one such convolution of its input,
// four passes of one term. A 4x4 kernel's are computed 7x7 results at a time (F(7x7, 2x2),
// 64 points: dcgan's and ddpm's planes are 7, 14 and 28 wide); a 3x3 kernel's 4x4 at a time
// (F(4x4, 2x2), 25 points: resnet's downsampling results, 16x16 and 8x8, are whole 4x4 tiles,
// where 7x7 tiles waste half of them). A pass's terms are one product over their channels
// side by side (depth terms x C), in blocks of tiles as the F(4x4, 3x3) step
// (native_winograd.cpp). With the points xi of a tile:
//   U[xi][term, c][k] = (G g[k, c] G^T)[xi]      the term's 2x2 taps, all workers;
//   V[xi][t][term, c] = (B^T d[t, term, c] B)[xi]   each term's input patch of tile t;
//   M[xi][t][k] = sum over term, c of V[xi][t][term, c] * U[xi][term, c][k];
//   y[tile t, k] = A^T M[.][t][k] A              the tile's results, then bias, residual, ReLU.
// The scratch holds one pass's U at a time (a conv_transpose's four passes one after the
// other). On the AMD EPYC (fastest of ten alternating runs of 100) the blocks took dcgan's
// conv_transpose [64,7,7,128] -> [64,14,14,64] 2.49 -> 2.31 ms and ddpm's 2.74 -> 2.63 against
// a step that holds every tile's V and M at once. A 4x4 conv (one pass of four terms) runs
// that step, term by term (native_phase_winograd_terms.cpp): its blocks, every term's U at
// once, were faster (dcgan's [64,14,14,64] -> 128 conv 2.44 -> 2.19 ms) but took 3 MiB more
// at dcgan's training peak.
// A 3x3 kernel's weight gradient (a conv's: one pass) is the transpose, in blocks the
// workers share (a 4x4 kernel's: native_phase_winograd_weight_grad.cpp):
//   P[xi][t][k] = (A e[t, k] A^T)[xi]            the result gradients of tile t;
//   W[xi][k][term, c] = sum over t of P[xi][t][k] * V[xi][t][term, c];
//   dw[k, c, taps of the term] = G^T W[.][k][term, c] G   (a 3x3 kernel's taps past it dropped).
// F(4x4, 2x2)'s points are 0, 1, -1, 2 and infinity; B^T's rows and G's are scaled to small
// integers in B^T (Toom-Cook in exact rationals, the scales moved from B^T into G):
//   B^T = [2 -1 -2 1 0; 0 2 1 -1 0; 0 -2 3 -1 0; 0 -1 0 1 0; 0 2 -1 -2 1]
//   G = [1/2 0; 1/2 1/2; 1/6 -1/6; 1/6 1/3; 0 1]    A^T = [1 1 1 1 0; 0 1 -1 2 0; 0 1 1 4 0; 0 1 -1 8 1]
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "ir/attrs.h"
#include "ir/channels_last.h"
#include "runtime/cpu/host_isa.h"
#include "runtime/cpu/native_winograd.h"
#include "runtime/cpu/phase_winograd_kernels.h"
#include "runtime/cpu/vector_state.h"
#include "runtime/cpu/winograd_kernels.h"

namespace weft::cpu {
namespace {

using winograd7::Axis;
using winograd7::Pass;

constexpr int64_t kBlockBytes = 640 * 1024;   ///< a block's V and M (as native_winograd.cpp's)
constexpr int64_t kFewestBlockTiles = 16;

#define WEFT_PHASE_INLINE __attribute__((target("avx2,fma"), always_inline)) static inline

/// F(4x4, 2x2)'s transforms, points 0, 1, -1, 2 and infinity, on eight channels at a time.
struct F4 {
  static constexpr int kSide = 5;  ///< transformed points along each axis
  static constexpr int kTile = 4;  ///< results per tile along each axis
  /// r = B^T d for five vectors d (one row or column of a patch).
  WEFT_PHASE_INLINE void input(const __m256 (&d)[5], __m256 (&r)[5]) {
    const __m256 two = _mm256_set1_ps(2.0f);
    r[0] = _mm256_fmadd_ps(two, _mm256_sub_ps(d[0], d[2]), _mm256_sub_ps(d[3], d[1]));
    r[1] = _mm256_fmadd_ps(two, d[1], _mm256_sub_ps(d[2], d[3]));
    r[2] = _mm256_fmsub_ps(_mm256_set1_ps(3.0f), d[2], _mm256_fmadd_ps(two, d[1], d[3]));
    r[3] = _mm256_sub_ps(d[3], d[1]);
    r[4] = _mm256_fmadd_ps(two, _mm256_sub_ps(d[1], d[3]), _mm256_sub_ps(d[4], d[2]));
  }
  /// r = A^T m for five vectors m (one row or column of a tile's products).
  WEFT_PHASE_INLINE void output(const __m256 (&m)[5], __m256 (&r)[4]) {
    const __m256 sum = _mm256_add_ps(m[1], m[2]), diff = _mm256_sub_ps(m[1], m[2]);
    r[0] = _mm256_add_ps(_mm256_add_ps(m[0], sum), m[3]);
    r[1] = _mm256_fmadd_ps(_mm256_set1_ps(2.0f), m[3], diff);
    r[2] = _mm256_fmadd_ps(_mm256_set1_ps(4.0f), m[3], sum);
    r[3] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.0f), m[3], diff), m[4]);
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
  static constexpr int kSide = 8;
  static constexpr int kTile = 7;
  WEFT_PHASE_INLINE void input(const __m256 (&d)[8], __m256 (&r)[8]) { winograd7::inputTransform(d, r); }
  WEFT_PHASE_INLINE void output(const __m256 (&m)[8], __m256 (&r)[7]) { winograd7::outputTransform(m, r); }
  WEFT_PHASE_INLINE void weight(const __m256 (&g)[2], __m256 (&r)[8]) { winograd7::weightTransform(g, r); }
  WEFT_PHASE_INLINE void gradient(const __m256 (&e)[7], __m256 (&r)[8]) { winograd7::gradientTransform(e, r); }
  WEFT_PHASE_INLINE void kernel(const __m256 (&w)[8], __m256 (&r)[2]) { winograd7::kernelTransform(w, r); }
};

/// A pass's result plane in tiles of `tile` x `tile`: tile t of image n at row t /
/// tilesAcross, column t % tilesAcross (of tiles).
struct PassTiles {
  int64_t tile = 0, tilesDown = 0, tilesAcross = 0, tiles = 0;
  PassTiles(const PhaseWinogradShape& s, const Pass& pass, int64_t size)
      : tile(size),
        tilesDown((pass.rows[0].outCount + size - 1) / size),
        tilesAcross((pass.cols[0].outCount + size - 1) / size),
        tiles(s.images * tilesDown * tilesAcross) {}
  /// Tile `t`'s image and its first row and column in the pass's result plane.
  void locate(int64_t t, int64_t& image, int64_t& top, int64_t& left) const {
    const int64_t perImage = tilesDown * tilesAcross, inImage = t % perImage;
    image = t / perImage;
    top = inImage / tilesAcross * tile;
    left = inImage % tilesAcross * tile;
  }
};

/// One block of work: tiles first.. first + count of pass `pass`.
struct Block {
  int pass = 0;
  int64_t first = 0, count = 0;
};

/// The geometry of shape `s` with transforms F on `workers` workers: its passes, each pass's
/// products `depth` deep (its terms' channels side by side), blocks of at most blockTiles
/// tiles (as many for each worker where the passes allow), and the floats from one point's
/// part of U, V or M to the next (a cache line more than they fill: winograd::tilePointStride).
template <class F>
struct Plan {
  static constexpr int64_t kPoints = F::kSide * F::kSide;  ///< a tile's transformed points
  const PhaseWinogradShape& s;
  std::vector<Pass> passes;
  std::vector<PassTiles> tiling;
  std::vector<Block> blocks;       ///< pass by pass
  std::vector<int64_t> passBlocks;  ///< pass p's blocks: passBlocks[p] .. passBlocks[p + 1]
  int64_t depth = 0, blockTiles = 0, uPoint = 0, vPoint = 0, mPoint = 0;

  Plan(const PhaseWinogradShape& shape, int workers, int64_t blockBytes = kBlockBytes)
      : s(shape), passes(winograd7::passesOf(shape)) {
    depth = passes.front().terms * s.channels;
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

/// U (the pass's part) for term `term` of pass `pass`: eight result channels k0.. of input
/// channel c. A tap past the kernel (a 3x3 one's row or column 3) is zero.
template <class F>
__attribute__((target("avx2,fma"))) void transformWeights(const Plan<F>& p, int pass, int term, const float* w,
                                                          int64_t c, int64_t k0, float* u) {
  constexpr int S = F::kSide;
  const PhaseWinogradShape& s = p.s;
  const int64_t taps = s.kernel * s.kernel;
  // conv: w[k, c, a, b] at (k * C + c) * taps + a * kernel + b; conv_transpose: w[c, k, a, b]
  // at (c * K + k) * taps + a * kernel + b.
  const int32_t step = static_cast<int32_t>(s.transposed ? taps : s.channels * taps);
  const __m256i offsets = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(step));
  const float* base = s.transposed ? w + (c * s.outChannels + k0) * taps : w + (k0 * s.channels + c) * taps;
  const Pass& passTerms = p.passes[static_cast<size_t>(pass)];
  const Axis &rows = passTerms.rows[term], &cols = passTerms.cols[term];
  __m256 columns[2][S];  // G applied down each of the 2x2 kernel's columns
#pragma GCC unroll 2
  for (int b = 0; b < 2; ++b) {
    __m256 g[2];
#pragma GCC unroll 2
    for (int a = 0; a < 2; ++a)
      g[a] = rows.tap[a] < s.kernel && cols.tap[b] < s.kernel
                 ? _mm256_i32gather_ps(base + rows.tap[a] * s.kernel + cols.tap[b], offsets, 4)
                 : _mm256_setzero_ps();
    F::weight(g, columns[b]);
  }
  float* out = u + (term * s.channels + c) * s.outChannels + k0;
#pragma GCC unroll 8
  for (int a = 0; a < S; ++a) {
    const __m256 g[2] = {columns[0][a], columns[1][a]};
    __m256 row[S];
    F::weight(g, row);
#pragma GCC unroll 8
    for (int b = 0; b < S; ++b) _mm256_storeu_ps(out + (a * S + b) * p.uPoint, row[b]);
  }
}

/// V's points for eight channels of one patch: B^T d B of the vectors load(a, b) gives, at
/// out + (a * side + b) * pointStride (every loop unrolled: the vectors live in registers, or
/// as F(7x7)'s 64 do not fit, where the compiler spills them).
template <class F, typename Load>
__attribute__((target("avx2,fma"), always_inline)) inline void transformPatch(Load load, float* out,
                                                                              int64_t pointStride) {
  constexpr int S = F::kSide;
  __m256 columns[S][S];  // B^T applied down each column of the patch
#pragma GCC unroll 8
  for (int b = 0; b < S; ++b) {
    __m256 d[S];
#pragma GCC unroll 8
    for (int a = 0; a < S; ++a) d[a] = load(a, b);
    F::input(d, columns[b]);
  }
#pragma GCC unroll 8
  for (int a = 0; a < S; ++a) {
    __m256 d[S], r[S];
#pragma GCC unroll 8
    for (int b = 0; b < S; ++b) d[b] = columns[b][a];
    F::input(d, r);
#pragma GCC unroll 8
    for (int b = 0; b < S; ++b) _mm256_storeu_ps(out + (a * S + b) * pointStride, r[b]);
  }
}

/// Eight channels at `at` + a rows + b columns of a patch inside the input.
struct InteriorLoad {
  const float* at;
  int64_t rowStride, columnStride;
  __attribute__((target("avx2,fma"), always_inline)) __m256 operator()(int a, int b) const {
    return _mm256_loadu_ps(at + a * rowStride + b * columnStride);
  }
};

/// The same, zeros outside rows aFirst..aEnd and columns bFirst..bEnd.
struct BorderLoad {
  InteriorLoad inside;
  int64_t aFirst, aEnd, bFirst, bEnd;
  __attribute__((target("avx2,fma"), always_inline)) __m256 operator()(int a, int b) const {
    return a >= aFirst && a < aEnd && b >= bFirst && b < bEnd ? inside(a, b) : _mm256_setzero_ps();
  }
};

/// V[xi][row][term, c] for every term's input patch of tile `tile` of pass `pass`, all
/// channels eight at a time.
template <class F>
__attribute__((target("avx2,fma"))) void transformInput(const Plan<F>& p, int pass, const float* x, int64_t tile,
                                                        float* v, int64_t row) {
  constexpr int S = F::kSide;
  const PhaseWinogradShape& s = p.s;
  int64_t image, top, left;
  p.tiling[static_cast<size_t>(pass)].locate(tile, image, top, left);
  const Pass& terms = p.passes[static_cast<size_t>(pass)];
  const float* plane = x + image * s.height * s.width * s.channels;
  for (int term = 0; term < terms.terms; ++term) {
    const Axis &rows = terms.rows[term], &cols = terms.cols[term];
    const int64_t pTop = top + rows.start, pLeft = left + cols.start;  // the patch's first row and column in the phase
    // The patch's rows aFirst..aEnd and columns bFirst..bEnd lie in the phase; the rest are zeros.
    const int64_t aFirst = std::max<int64_t>(0, -pTop), aEnd = std::min<int64_t>(S, rows.inCount - pTop);
    const int64_t bFirst = std::max<int64_t>(0, -pLeft), bEnd = std::min<int64_t>(S, cols.inCount - pLeft);
    const int64_t rowStride = rows.inStep * s.width * s.channels, columnStride = cols.inStep * s.channels;
    // The patch's first element, perhaps outside the plane (only read inside it).
    const float* patch = plane + ((rows.inFirst + rows.inStep * pTop) * s.width + cols.inFirst + cols.inStep * pLeft) *
                                     s.channels;
    float* out = v + row * p.depth + term * s.channels;
    if (aFirst == 0 && aEnd == S && bFirst == 0 && bEnd == S) {
      for (int64_t c0 = 0; c0 < s.channels; c0 += 8)
        transformPatch<F>(InteriorLoad{patch + c0, rowStride, columnStride}, out + c0, p.vPoint);
      continue;
    }
    for (int64_t c0 = 0; c0 < s.channels; c0 += 8)
      transformPatch<F>(BorderLoad{{patch + c0, rowStride, columnStride}, aFirst, aEnd, bFirst, bEnd}, out + c0,
                        p.vPoint);
  }
}

/// M = V U for a block, point by point.
template <class F>
void multiplyBlock(const Plan<F>& p, const float* v, const float* u, int64_t count, float* m) {
  const int64_t D = p.depth, K = p.s.outChannels;
  for (int64_t point = 0; point < Plan<F>::kPoints; ++point) {
    const float* vp = v + point * p.vPoint;
    const float* up = u + point * p.uPoint;
    float* mp = m + point * p.mPoint;
    for (int64_t k0 = 0; k0 < K; k0 += 16)
      winograd::forEachRowGroup(count, [&](int64_t t0, int64_t rows) {
        winograd::multiplySomeRows<false>(rows, vp + t0 * D, D, 1, up + k0, K, D, mp + t0 * K + k0, K);
      });
  }
}

/// y for tile `tile` of pass `pass` (block row `row` of M) and eight result channels k0..,
/// with the epilogue.
template <class F>
__attribute__((target("avx2,fma"))) void transformOutput(const Plan<F>& p, int pass, const float* m, int64_t tile,
                                                         int64_t row, int64_t k0, const WinogradEpilogue& e,
                                                         float* y) {
  constexpr int S = F::kSide, T = F::kTile;
  const PhaseWinogradShape& s = p.s;
  const Axis &rows = p.passes[static_cast<size_t>(pass)].rows[0], &cols = p.passes[static_cast<size_t>(pass)].cols[0];
  int64_t image, top, left;
  p.tiling[static_cast<size_t>(pass)].locate(tile, image, top, left);
  const float* at = m + row * s.outChannels + k0;
  __m256 columns[S][T];  // A^T applied down each column of the products
#pragma GCC unroll 8
  for (int b = 0; b < S; ++b) {
    __m256 column[S];
#pragma GCC unroll 8
    for (int a = 0; a < S; ++a) column[a] = _mm256_loadu_ps(at + (a * S + b) * p.mPoint);
    F::output(column, columns[b]);
  }
  const __m256 bias = winograd::epilogueBias(e, k0);
  const int64_t offset = image * s.outHeight * s.outWidth * s.outChannels + k0;
#pragma GCC unroll 7
  for (int a = 0; a < T; ++a) {
    if (top + a >= rows.outCount) break;
    __m256 d[S], r[T];
#pragma GCC unroll 8
    for (int b = 0; b < S; ++b) d[b] = columns[b][a];
    F::output(d, r);
    const int64_t outRow = rows.outFirst + rows.outStep * (top + a);
#pragma GCC unroll 7
    for (int b = 0; b < T; ++b) {
      if (left + b >= cols.outCount) break;
      winograd::storeResult(e, r[b], bias,
                            offset + (outRow * s.outWidth + cols.outFirst + cols.outStep * (left + b)) * s.outChannels,
                            y);
    }
  }
}

/// P[xi][row][k0..k0+8] = A e A^T for the result gradients of tile `tile` (of the conv's one
/// pass), channels k0..; zeros past the result plane.
template <class F>
__attribute__((target("avx2,fma"))) void transformGradient(const Plan<F>& p, const float* dy, int64_t tile,
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
#pragma GCC unroll 8
  for (int b = 0; b < S; ++b) {
    __m256 column[S];
#pragma GCC unroll 8
    for (int a = 0; a < S; ++a) column[a] = _mm256_loadu_ps(at + (a * S + b) * pointStride);
    F::kernel(column, columns[b]);
  }
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
      for (int64_t j = 0; j < 8; ++j) dw[((k * s.channels + c0 + j) * R + rows.tap[a]) * R + cols.tap[b]] = taps[a][b][j];
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
int64_t scratchBytes(const PhaseWinogradShape& s, int threads) {
  const int workers = std::max(1, threads);
  const Plan<F> p(s, workers);
  return (p.weightFloats() + workers * p.blockFloats()) * 4;
}

template <class F>
void convolution(const PhaseWinogradShape& s, const float* x, const float* w, const WinogradEpilogue& e, float* y,
                 void* scratch, int64_t scratchBytesGiven, float* heldWeights, bool heldReady) {
  constexpr int64_t kPoints = Plan<F>::kPoints;
  // As many workers as the scratch holds blocks for (all of OpenMP's threads when sized for them).
  int workers = std::max(1, omp_get_max_threads());
  while (workers > 1 && scratchBytes<F>(s, workers) > scratchBytesGiven) --workers;
  const Plan<F> p(s, workers);
  float* blocks = static_cast<float*>(scratch) + p.weightFloats();  // (the weights' room unused when held)
  const bool transformsWeights = !heldWeights || !heldReady;
  const int terms = p.passes.front().terms;
#pragma omp parallel num_threads(workers)
  {
    UpperHalvesClearedOnExit cleared;
    float* v = blocks + omp_get_thread_num() * p.blockFloats();
    float* m = v + kPoints * p.vPoint;
    for (size_t pass = 0; pass < p.passes.size(); ++pass) {
      // The pass's transformed weights: held, all passes', or the scratch's, one pass's at a time.
      float* u = heldWeights ? heldWeights + static_cast<int64_t>(pass) * p.weightFloats() : static_cast<float*>(scratch);
      if (transformsWeights) {
#pragma omp for schedule(static)
        for (int64_t job = 0; job < terms * s.channels; ++job)
          for (int64_t k0 = 0; k0 < s.outChannels; k0 += 8)
            transformWeights(p, static_cast<int>(pass), static_cast<int>(job / s.channels), w, job % s.channels, k0, u);
      }
#pragma omp for schedule(static)
      for (int64_t b = p.passBlocks[pass]; b < p.passBlocks[pass + 1]; ++b) {
        const Block& block = p.blocks[static_cast<size_t>(b)];
        for (int64_t t = 0; t < block.count; ++t) transformInput(p, block.pass, x, block.first + t, v, t);
        multiplyBlock(p, v, u, block.count, m);
        for (int64_t t = 0; t < block.count; ++t)
          for (int64_t k0 = 0; k0 < s.outChannels; k0 += 8)
            transformOutput(p, block.pass, m, block.first + t, t, k0, e, y);
      }
    }
  }
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
        transformInput(p, 0, x, block.first + t, v, t);
        for (int64_t k0 = 0; k0 < K; k0 += 8) transformGradient(p, dy, block.first + t, k0, g, t);
      }
      // Each point's sums in two halves of their columns: even shares (F(4x4)'s 25 points
      // split 13 to 12 between two workers, and one waited 8% of the products).
#pragma omp for schedule(static)
      for (int64_t share = 0; share < 2 * kPoints; ++share) {
        const int64_t point = share / 2, first = share % 2 * (D / 2);
        const float* vp = v + point * p.vPoint;
        const float* gp = g + point * p.mPoint;
        float* wp = sums + point * sumPoint;
        winograd::forEachRowGroup(K, [&](int64_t k0, int64_t rows) {
          for (int64_t c0 = first; c0 < first + D / 2; c0 += 16)
            winograd::multiplySomeRows<true>(rows, gp + k0, 1, K, vp + c0, D, block.count, wp + k0 * D + c0, D);
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

bool phaseWinogradFits(const PhaseWinogradShape& s) {
  const bool avx2 = hostHasAvx2Fma();
  return avx2 && winograd7::shapeFits(s);
}

int64_t phaseWinogradScratchBytes(const PhaseWinogradShape& s, int threads) {
  if (s.kernel == 3) return scratchBytes<F4>(s, threads);
  return s.transposed ? scratchBytes<F7>(s, threads) : termwisePhaseScratchBytes(s);
}

int64_t phaseWinogradHeldWeightBytes(const PhaseWinogradShape& s) {
  if (s.kernel == 3) return 4 * Plan<F4>(s, 1).heldWeightFloats();
  return s.transposed ? 4 * Plan<F7>(s, 1).heldWeightFloats() : termwisePhaseHeldWeightBytes(s);
}

void phaseWinogradConvolution(const PhaseWinogradShape& s, const float* x, const float* w, const WinogradEpilogue& e,
                              float* y, void* scratch, int64_t scratchBytesGiven, float* heldWeights, bool heldReady) {
  if (s.kernel == 3) return convolution<F4>(s, x, w, e, y, scratch, scratchBytesGiven, heldWeights, heldReady);
  if (!s.transposed) return termwisePhaseConvolution(s, x, w, e, y, scratch, heldWeights, heldReady);
  convolution<F7>(s, x, w, e, y, scratch, scratchBytesGiven, heldWeights, heldReady);
}

int64_t blockedPhaseWeightGradScratchBytes(const PhaseWinogradShape& s) {
  return (gradientSumFloats<F4>(s) + gradientPlan<F4>(s).blockFloats()) * 4;
}

void blockedPhaseWeightGradient(const PhaseWinogradShape& s, const float* x, const float* dy, float* dw,
                                void* scratch) {
  weightGradient<F4>(s, x, dy, dw, scratch);
}

std::optional<PhaseWinogradShape> phaseWinogradShapeOf(const ir::Graph& g, ir::ValueId v, const ConvEpilogue& found) {
  const ir::Node& conv = *found.conv;
  const ir::Node& node = g.node(v);
  if (!isChannelsLastF32Conv(g, v, conv)) return std::nullopt;
  ir::AttrReader attrs(conv.attrs, conv.op);
  const bool transposed = conv.op == ir::OpKind::ConvTranspose;
  const ir::Shape &x = g.type(node.operands[0]).shape, &w = g.type(node.operands[1]).shape, &out = node.type.shape;
  const auto& padding = attrs.ints("padding");
  if (attrs.i("groups") != 1 || w.size() != 4 || (w[2] != 4 && w[2] != 3) || w[3] != w[2] ||
      attrs.ints("stride") != std::vector<int64_t>{2, 2} || attrs.ints("dilation") != std::vector<int64_t>{1, 1})
    return std::nullopt;
  if (transposed) {  // none but a 3x3 one's output padding of a row (or column), which shapeFits checks
    const auto& outputPadding = attrs.ints("output_padding");
    for (int64_t extra : outputPadding)
      if (extra != 0 && !(w[2] == 3 && extra == 1)) return std::nullopt;
  }
  return PhaseWinogradShape{x[0], x[1], x[2], x[3], out[1], out[2], out[3], padding[0], padding[1], transposed, w[2]};
}

std::optional<PhaseWinogradShape> phaseWinogradCandidate(const ir::Graph& g, ir::ValueId v) {
  const std::optional<ConvEpilogue> found = convEpilogueOf(g, v);
  const std::optional<PhaseWinogradShape> s = found ? phaseWinogradShapeOf(g, v, *found) : std::nullopt;
  const int64_t tile = s && s->kernel == 3 ? F4::kTile : F7::kTile;
  // A 3x3 kernel's only where its 4x4 tiles cover its result planes (a conv_transpose's four,
  // each half the size) without waste: ddpm's [32,28,28,32] -> 14x14 downsampling conv, whose
  // 4x4 tiles cover 16x16, took 0.95-0.98 ms against oneDNN's 0.71-0.77 on the AMD EPYC.
  const int64_t whole = s && s->transposed ? 2 * tile : tile;
  if (s && s->kernel == 3 && (s->outHeight % whole != 0 || s->outWidth % whole != 0)) return std::nullopt;
  if (!s || s->channels < 16 || s->outChannels < 16 || s->outHeight < tile || s->outWidth < tile ||
      !winograd7::shapeFits(*s) || phaseWinogradScratchBytes(*s) > winograd7::kMostScratchBytes)
    return std::nullopt;
  return s;
}

}  // namespace weft::cpu
