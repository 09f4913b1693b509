// Native 3x3, stride-2 convolutions and conv_transposes as F(4x4, 2x2) Winograd over phases
// (see native_winograd.h and phase_winograd_kernels.h): a 3x3 kernel is a 4x4 one whose last
// row and column are zeros, so the phases split it into the same passes of 2x2, stride-1
// terms as the F(7x7, 2x2) step's (a conv one pass of four terms, a conv_transpose four
// passes of one), each computed 4x4 results at a time from a 5x5 patch: resnet's
// downsampling results, 16x16 and 8x8, are whole 4x4 tiles (7x7 tiles waste half of them).
// A pass's terms are one product over their channels side by side (depth terms x C), in
// blocks of tiles as the F(4x4, 3x3) step (native_winograd.cpp). With the 25 points xi:
//   U[xi][term, c][k] = (G g[k, c] G^T)[xi]      the term's 2x2 taps, all workers;
//   V[xi][t][term, c] = (B^T d[t, term, c] B)[xi]   each term's 5x5 input patch of tile t;
//   M[xi][t][k] = sum over term, c of V[xi][t][term, c] * U[xi][term, c][k];
//   y[tile t, k] = A^T M[.][t][k] A              4x4 results, then bias, residual, ReLU.
// The weight gradient (of a conv: one pass) is its transpose, in blocks the workers share:
//   P[xi][t][k] = (A e[t, k] A^T)[xi]            the result gradients of tile t;
//   W[xi][k][term, c] = sum over t of P[xi][t][k] * V[xi][t][term, c];
//   dw[k, c, taps of the term] = G^T W[.][k][term, c] G   (a 3x3 kernel's taps past it dropped).
// The points are 0, 1, -1, 2 and infinity; B^T's rows and G's are scaled to small integers
// in B^T (Toom-Cook in exact rationals, the scales moved from B^T into G):
//   B^T = [2 -1 -2 1 0; 0 2 1 -1 0; 0 -2 3 -1 0; 0 -1 0 1 0; 0 2 -1 -2 1]
//   G = [1/2 0; 1/2 1/2; 1/6 -1/6; 1/6 1/3; 0 1]    A^T = [1 1 1 1 0; 0 1 -1 2 0; 0 1 1 4 0; 0 1 -1 8 1]
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#include "runtime/cpu/native_winograd.h"
#include "runtime/cpu/phase_winograd_kernels.h"
#include "runtime/cpu/vector_state.h"
#include "runtime/cpu/winograd_kernels.h"

namespace weft::cpu {
namespace {

using winograd7::Axis;
using winograd7::Pass;

constexpr int kSide = 5;                      ///< transformed points along each axis
constexpr int64_t kPoints = kSide * kSide;    ///< a tile's transformed points
constexpr int64_t kTile = 4;                  ///< results per tile along each axis
constexpr int64_t kBlockBytes = 640 * 1024;   ///< a block's V and M (as native_winograd.cpp's)
constexpr int64_t kFewestBlockTiles = 16;

#define WEFT_WINOGRAD4_INLINE __attribute__((target("avx2,fma"), always_inline)) inline

/// r = B^T d for five vectors d (one row or column of a patch).
WEFT_WINOGRAD4_INLINE void inputTransform(const __m256 (&d)[5], __m256 (&r)[5]) {
  const __m256 two = _mm256_set1_ps(2.0f);
  r[0] = _mm256_fmadd_ps(two, _mm256_sub_ps(d[0], d[2]), _mm256_sub_ps(d[3], d[1]));
  r[1] = _mm256_fmadd_ps(two, d[1], _mm256_sub_ps(d[2], d[3]));
  r[2] = _mm256_fmsub_ps(_mm256_set1_ps(3.0f), d[2], _mm256_fmadd_ps(two, d[1], d[3]));
  r[3] = _mm256_sub_ps(d[3], d[1]);
  r[4] = _mm256_fmadd_ps(two, _mm256_sub_ps(d[1], d[3]), _mm256_sub_ps(d[4], d[2]));
}

/// r = A^T m for five vectors m (one row or column of a tile's products).
WEFT_WINOGRAD4_INLINE void outputTransform(const __m256 (&m)[5], __m256 (&r)[4]) {
  const __m256 sum = _mm256_add_ps(m[1], m[2]), diff = _mm256_sub_ps(m[1], m[2]);
  r[0] = _mm256_add_ps(_mm256_add_ps(m[0], sum), m[3]);
  r[1] = _mm256_fmadd_ps(_mm256_set1_ps(2.0f), m[3], diff);
  r[2] = _mm256_fmadd_ps(_mm256_set1_ps(4.0f), m[3], sum);
  r[3] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.0f), m[3], diff), m[4]);
}

/// r = G g for two vectors g (one row or column of a 2x2 kernel).
WEFT_WINOGRAD4_INLINE void weightTransform(const __m256 (&g)[2], __m256 (&r)[5]) {
  const __m256 sixth = _mm256_set1_ps(1.0f / 6);
  r[0] = _mm256_mul_ps(_mm256_set1_ps(0.5f), g[0]);
  r[1] = _mm256_mul_ps(_mm256_set1_ps(0.5f), _mm256_add_ps(g[0], g[1]));
  r[2] = _mm256_mul_ps(sixth, _mm256_sub_ps(g[0], g[1]));
  r[3] = _mm256_mul_ps(sixth, _mm256_fmadd_ps(_mm256_set1_ps(2.0f), g[1], g[0]));
  r[4] = g[1];
}

/// r = A e for four vectors e (one row or column of a tile's result gradients).
WEFT_WINOGRAD4_INLINE void gradientTransform(const __m256 (&e)[4], __m256 (&r)[5]) {
  const __m256 even = _mm256_add_ps(e[0], e[2]), odd = _mm256_add_ps(e[1], e[3]);
  r[0] = e[0];
  r[1] = _mm256_add_ps(even, odd);
  r[2] = _mm256_sub_ps(even, odd);
  r[3] = _mm256_fmadd_ps(_mm256_set1_ps(8.0f), e[3],
                         _mm256_fmadd_ps(_mm256_set1_ps(4.0f), e[2], _mm256_fmadd_ps(_mm256_set1_ps(2.0f), e[1], e[0])));
  r[4] = e[3];
}

/// r = G^T w for five vectors w (one row or column of a kernel's transformed gradient).
WEFT_WINOGRAD4_INLINE void kernelTransform(const __m256 (&w)[5], __m256 (&r)[2]) {
  const __m256 half = _mm256_set1_ps(0.5f), sixth = _mm256_set1_ps(1.0f / 6);
  // z0 = (w0 + w1) / 2 + (w2 + w3) / 6;  z1 = w1 / 2 + (2 w3 - w2) / 6 + w4
  r[0] = _mm256_fmadd_ps(half, _mm256_add_ps(w[0], w[1]), _mm256_mul_ps(sixth, _mm256_add_ps(w[2], w[3])));
  r[1] = _mm256_fmadd_ps(half, w[1], _mm256_fmadd_ps(sixth, _mm256_sub_ps(_mm256_add_ps(w[3], w[3]), w[2]), w[4]));
}

/// A pass's result plane in 4x4 tiles: tile t of image n at row t / tilesAcross, column t %
/// tilesAcross (of tiles).
struct PassTiles {
  int64_t tilesDown = 0, tilesAcross = 0, tiles = 0;
  PassTiles(const PhaseWinogradShape& s, const Pass& pass)
      : tilesDown((pass.rows[0].outCount + kTile - 1) / kTile),
        tilesAcross((pass.cols[0].outCount + kTile - 1) / kTile),
        tiles(s.images * tilesDown * tilesAcross) {}
  /// Tile `tile`'s image and its first row and column in the pass's result plane.
  void locate(int64_t tile, int64_t& image, int64_t& top, int64_t& left) const {
    const int64_t perImage = tilesDown * tilesAcross, inImage = tile % perImage;
    image = tile / perImage;
    top = inImage / tilesAcross * kTile;
    left = inImage % tilesAcross * kTile;
  }
};

/// One block of work: tiles first.. first + count of pass `pass`.
struct Block {
  int pass = 0;
  int64_t first = 0, count = 0;
};

/// The geometry of shape `s` on `workers` workers: its passes, each pass's products `depth`
/// deep (its terms' channels side by side), blocks of at most blockTiles tiles (as many for
/// each worker where the passes allow), and the floats from one point's part of U, V or M
/// to the next (a cache line more than they fill: winograd::tilePointStride).
struct Plan {
  const PhaseWinogradShape& s;
  std::vector<Pass> passes;
  std::vector<PassTiles> tiling;
  std::vector<Block> blocks;
  int64_t depth = 0, blockTiles = 0, uPoint = 0, vPoint = 0, mPoint = 0;

  Plan(const PhaseWinogradShape& shape, int workers, int64_t blockBytes = kBlockBytes)
      : s(shape), passes(winograd7::passesOf(shape)) {
    depth = passes.front().terms * s.channels;
    for (const Pass& pass : passes) tiling.emplace_back(s, pass);
    const int64_t most = std::max(kFewestBlockTiles, blockBytes / (kPoints * 4 * (depth + s.outChannels)));
    int64_t perPass = 0;  // blocks of each pass, together a multiple of the workers
    for (const PassTiles& t : tiling) perPass = std::max(perPass, (t.tiles + most - 1) / most);
    const int64_t passCount = static_cast<int64_t>(passes.size());
    while ((perPass * passCount) % workers != 0) ++perPass;
    for (const PassTiles& t : tiling) blockTiles = std::max(blockTiles, (t.tiles + perPass - 1) / perPass);
    for (size_t p = 0; p < passes.size(); ++p)
      for (int64_t first = 0; first < tiling[p].tiles; first += blockTiles)
        blocks.push_back({static_cast<int>(p), first, std::min(blockTiles, tiling[p].tiles - first)});
    uPoint = winograd::tilePointStride(depth, s.outChannels);
    vPoint = winograd::tilePointStride(blockTiles, depth);
    mPoint = winograd::tilePointStride(blockTiles, s.outChannels);
  }
  int64_t weightFloats() const { return static_cast<int64_t>(passes.size()) * kPoints * uPoint; }
  int64_t blockFloats() const { return kPoints * (vPoint + mPoint); }
};

/// U for term `term` of pass `pass`: eight result channels k0.. of input channel c. A tap past
/// the kernel (a 3x3 one's row or column 3) is zero.
__attribute__((target("avx2,fma"))) void transformWeights(const Plan& p, int pass, int term, const float* w,
                                                          int64_t c, int64_t k0, float* u) {
  const PhaseWinogradShape& s = p.s;
  const int64_t taps = s.kernel * s.kernel;
  // conv: w[k, c, a, b] at (k * C + c) * taps + a * kernel + b; conv_transpose: w[c, k, a, b]
  // at (c * K + k) * taps + a * kernel + b.
  const int32_t step = static_cast<int32_t>(s.transposed ? taps : s.channels * taps);
  const __m256i offsets = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(step));
  const float* base = s.transposed ? w + (c * s.outChannels + k0) * taps : w + (k0 * s.channels + c) * taps;
  const Axis &rows = p.passes[static_cast<size_t>(pass)].rows[term], &cols = p.passes[static_cast<size_t>(pass)].cols[term];
  __m256 columns[2][kSide];  // G applied down each of the 2x2 kernel's columns
#pragma GCC unroll 2
  for (int b = 0; b < 2; ++b) {
    __m256 g[2];
#pragma GCC unroll 2
    for (int a = 0; a < 2; ++a)
      g[a] = rows.tap[a] < s.kernel && cols.tap[b] < s.kernel
                 ? _mm256_i32gather_ps(base + rows.tap[a] * s.kernel + cols.tap[b], offsets, 4)
                 : _mm256_setzero_ps();
    weightTransform(g, columns[b]);
  }
  float* out = u + static_cast<int64_t>(pass) * kPoints * p.uPoint + (term * s.channels + c) * s.outChannels + k0;
#pragma GCC unroll 5
  for (int a = 0; a < kSide; ++a) {
    const __m256 g[2] = {columns[0][a], columns[1][a]};
    __m256 row[kSide];
    weightTransform(g, row);
#pragma GCC unroll 5
    for (int b = 0; b < kSide; ++b) _mm256_storeu_ps(out + (a * kSide + b) * p.uPoint, row[b]);
  }
}

/// V's points for eight channels of one patch: B^T d B of the 5x5 vectors load(a, b) gives,
/// at out + (a * 5 + b) * pointStride (every loop unrolled: the vectors stay in registers).
template <typename Load>
WEFT_WINOGRAD4_INLINE void transformPatch(Load load, float* out, int64_t pointStride) {
  __m256 columns[kSide][kSide];  // B^T applied down each column of the patch
#pragma GCC unroll 5
  for (int b = 0; b < kSide; ++b) {
    __m256 d[kSide];
#pragma GCC unroll 5
    for (int a = 0; a < kSide; ++a) d[a] = load(a, b);
    inputTransform(d, columns[b]);
  }
#pragma GCC unroll 5
  for (int a = 0; a < kSide; ++a) {
    const __m256 d[kSide] = {columns[0][a], columns[1][a], columns[2][a], columns[3][a], columns[4][a]};
    __m256 r[kSide];
    inputTransform(d, r);
#pragma GCC unroll 5
    for (int b = 0; b < kSide; ++b) _mm256_storeu_ps(out + (a * kSide + b) * pointStride, r[b]);
  }
}

/// Eight channels at `at` + a rows + b columns of a patch inside the input.
struct InteriorLoad {
  const float* at;
  int64_t rowStride, columnStride;
  WEFT_WINOGRAD4_INLINE __m256 operator()(int a, int b) const {
    return _mm256_loadu_ps(at + a * rowStride + b * columnStride);
  }
};

/// The same, zeros outside rows aFirst..aEnd and columns bFirst..bEnd.
struct BorderLoad {
  InteriorLoad inside;
  int64_t aFirst, aEnd, bFirst, bEnd;
  WEFT_WINOGRAD4_INLINE __m256 operator()(int a, int b) const {
    return a >= aFirst && a < aEnd && b >= bFirst && b < bEnd ? inside(a, b) : _mm256_setzero_ps();
  }
};

/// V[xi][row][term, c] for every term's input patch of tile `tile` of pass `pass`, all
/// channels eight at a time.
__attribute__((target("avx2,fma"))) void transformInput(const Plan& p, int pass, const float* x, int64_t tile,
                                                        float* v, int64_t row) {
  const PhaseWinogradShape& s = p.s;
  int64_t image, top, left;
  p.tiling[static_cast<size_t>(pass)].locate(tile, image, top, left);
  const Pass& terms = p.passes[static_cast<size_t>(pass)];
  const float* plane = x + image * s.height * s.width * s.channels;
  for (int term = 0; term < terms.terms; ++term) {
    const Axis &rows = terms.rows[term], &cols = terms.cols[term];
    const int64_t pTop = top + rows.start, pLeft = left + cols.start;  // the patch's first row and column in the phase
    // The patch's rows aFirst..aEnd and columns bFirst..bEnd lie in the phase; the rest are zeros.
    const int64_t aFirst = std::max<int64_t>(0, -pTop), aEnd = std::min<int64_t>(kSide, rows.inCount - pTop);
    const int64_t bFirst = std::max<int64_t>(0, -pLeft), bEnd = std::min<int64_t>(kSide, cols.inCount - pLeft);
    const int64_t rowStride = rows.inStep * s.width * s.channels, columnStride = cols.inStep * s.channels;
    // The patch's first element, perhaps outside the plane (only read inside it).
    const float* patch = plane + ((rows.inFirst + rows.inStep * pTop) * s.width + cols.inFirst + cols.inStep * pLeft) *
                                     s.channels;
    float* out = v + row * p.depth + term * s.channels;
    if (aFirst == 0 && aEnd == kSide && bFirst == 0 && bEnd == kSide) {
      for (int64_t c0 = 0; c0 < s.channels; c0 += 8)
        transformPatch(InteriorLoad{patch + c0, rowStride, columnStride}, out + c0, p.vPoint);
      continue;
    }
    for (int64_t c0 = 0; c0 < s.channels; c0 += 8)
      transformPatch(BorderLoad{{patch + c0, rowStride, columnStride}, aFirst, aEnd, bFirst, bEnd}, out + c0,
                     p.vPoint);
  }
}

/// M = V U for a block, point by point.
void multiplyBlock(const Plan& p, const float* v, const float* u, int64_t count, float* m) {
  const int64_t D = p.depth, K = p.s.outChannels;
  for (int64_t point = 0; point < kPoints; ++point) {
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
__attribute__((target("avx2,fma"))) void transformOutput(const Plan& p, int pass, const float* m, int64_t tile,
                                                         int64_t row, int64_t k0, const WinogradEpilogue& e,
                                                         float* y) {
  const PhaseWinogradShape& s = p.s;
  const Axis &rows = p.passes[static_cast<size_t>(pass)].rows[0], &cols = p.passes[static_cast<size_t>(pass)].cols[0];
  int64_t image, top, left;
  p.tiling[static_cast<size_t>(pass)].locate(tile, image, top, left);
  const float* at = m + row * s.outChannels + k0;
  __m256 columns[kSide][4];  // A^T applied down each column of the products
#pragma GCC unroll 5
  for (int b = 0; b < kSide; ++b) {
    __m256 column[kSide];
#pragma GCC unroll 5
    for (int a = 0; a < kSide; ++a) column[a] = _mm256_loadu_ps(at + (a * kSide + b) * p.mPoint);
    outputTransform(column, columns[b]);
  }
  const __m256 bias = winograd::epilogueBias(e, k0);
  const int64_t offset = image * s.outHeight * s.outWidth * s.outChannels + k0;
#pragma GCC unroll 4
  for (int a = 0; a < kTile; ++a) {
    if (top + a >= rows.outCount) break;
    const __m256 d[kSide] = {columns[0][a], columns[1][a], columns[2][a], columns[3][a], columns[4][a]};
    __m256 r[4];
    outputTransform(d, r);
    const int64_t outRow = rows.outFirst + rows.outStep * (top + a);
#pragma GCC unroll 4
    for (int b = 0; b < kTile; ++b) {
      if (left + b >= cols.outCount) break;
      winograd::storeResult(e, r[b], bias,
                            offset + (outRow * s.outWidth + cols.outFirst + cols.outStep * (left + b)) * s.outChannels,
                            y);
    }
  }
}

/// P[xi][row][k0..k0+8] = A e A^T for the result gradients of tile `tile` (of the conv's one
/// pass), channels k0..; zeros past the result plane.
__attribute__((target("avx2,fma"))) void transformGradient(const Plan& p, const float* dy, int64_t tile, int64_t k0,
                                                           float* out, int64_t row) {
  const PhaseWinogradShape& s = p.s;
  int64_t image, top, left;
  p.tiling.front().locate(tile, image, top, left);
  const float* base = dy + image * s.outHeight * s.outWidth * s.outChannels + k0;
  __m256 columns[4][kSide];  // A applied down each column of the tile
#pragma GCC unroll 4
  for (int b = 0; b < 4; ++b) {
    __m256 e[4];
#pragma GCC unroll 4
    for (int a = 0; a < 4; ++a)
      e[a] = top + a < s.outHeight && left + b < s.outWidth
                 ? _mm256_loadu_ps(base + ((top + a) * s.outWidth + left + b) * s.outChannels)
                 : _mm256_setzero_ps();
    gradientTransform(e, columns[b]);
  }
  float* at = out + row * s.outChannels + k0;
#pragma GCC unroll 5
  for (int a = 0; a < kSide; ++a) {
    const __m256 e[4] = {columns[0][a], columns[1][a], columns[2][a], columns[3][a]};
    __m256 r[kSide];
    gradientTransform(e, r);
#pragma GCC unroll 5
    for (int b = 0; b < kSide; ++b) _mm256_storeu_ps(at + (a * kSide + b) * p.mPoint, r[b]);
  }
}

/// dw[k, c0..c0+8, the taps of term `term`] = G^T W[.][k][term, c] G; W's points lie
/// pointStride floats apart. A tap past the kernel (a 3x3 one's row or column 3) is dropped.
__attribute__((target("avx2,fma"))) void transformKernel(const Plan& p, int term, const float* sums, int64_t k,
                                                         int64_t c0, int64_t pointStride, float* dw) {
  const PhaseWinogradShape& s = p.s;
  const float* at = sums + k * p.depth + term * s.channels + c0;
  __m256 columns[kSide][2];  // G^T applied down each column of the points
#pragma GCC unroll 5
  for (int b = 0; b < kSide; ++b) {
    __m256 column[kSide];
#pragma GCC unroll 5
    for (int a = 0; a < kSide; ++a) column[a] = _mm256_loadu_ps(at + (a * kSide + b) * pointStride);
    kernelTransform(column, columns[b]);
  }
  alignas(32) float taps[2][2][8];
#pragma GCC unroll 2
  for (int a = 0; a < 2; ++a) {
    const __m256 row[kSide] = {columns[0][a], columns[1][a], columns[2][a], columns[3][a], columns[4][a]};
    __m256 r[2];
    kernelTransform(row, r);
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

/// The floats of the weight gradient's sums W [25][K][terms, C] (a point's part a cache line
/// longer than it needs).
int64_t gradientSumFloats(const PhaseWinogradShape& s) {
  return kPoints * winograd::tilePointStride(s.outChannels, 4 * s.channels);
}

/// The weight gradient's plan: blocks the workers share, large enough that W, read and written
/// by each block's products, moves no more than the blocks do.
Plan gradientPlan(const PhaseWinogradShape& s) { return Plan(s, 1, std::max(kBlockBytes, 8 * gradientSumFloats(s))); }

}  // namespace

int64_t phaseWinograd4WeightGradScratchBytes(const PhaseWinogradShape& s) {
  return (gradientSumFloats(s) + gradientPlan(s).blockFloats()) * 4;
}

void phaseWinograd4WeightGradient(const PhaseWinogradShape& s, const float* x, const float* dy, float* dw,
                                  void* scratch) {
  const Plan p = gradientPlan(s);
  const int64_t D = p.depth, K = s.outChannels, sumPoint = winograd::tilePointStride(K, D);
  float* sums = static_cast<float*>(scratch);  // W
  float* v = sums + gradientSumFloats(s);
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
      // Each point's sums in two halves of their columns: 50 even shares (25 points split
      // 13 to 12 between two workers, one waited 8% of the products).
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

int64_t phaseWinograd4ScratchBytes(const PhaseWinogradShape& s, int threads) {
  const int workers = std::max(1, threads);
  const Plan p(s, workers);
  return (p.weightFloats() + workers * p.blockFloats()) * 4;
}

int64_t phaseWinograd4HeldWeightBytes(const PhaseWinogradShape& s) { return Plan(s, 1).weightFloats() * 4; }

void phaseWinograd4Convolution(const PhaseWinogradShape& s, const float* x, const float* w, const WinogradEpilogue& e,
                               float* y, void* scratch, int64_t scratchBytes, float* heldWeights, bool heldReady) {
  // As many workers as the scratch holds blocks for (all of OpenMP's threads when sized for them).
  int workers = std::max(1, omp_get_max_threads());
  while (workers > 1 && phaseWinograd4ScratchBytes(s, workers) > scratchBytes) --workers;
  const Plan p(s, workers);
  float* u = heldWeights ? heldWeights : static_cast<float*>(scratch);
  float* blocks = static_cast<float*>(scratch) + p.weightFloats();  // (the weights' room unused when held)
  const bool transformsWeights = !heldWeights || !heldReady;
  const int terms = p.passes.front().terms;
  const int64_t passCount = static_cast<int64_t>(p.passes.size());
#pragma omp parallel num_threads(workers)
  {
    UpperHalvesClearedOnExit cleared;
    if (transformsWeights) {
#pragma omp for schedule(static)
      for (int64_t job = 0; job < passCount * terms * s.channels; ++job) {
        const int pass = static_cast<int>(job / (terms * s.channels)), term = static_cast<int>(job / s.channels % terms);
        for (int64_t k0 = 0; k0 < s.outChannels; k0 += 8) transformWeights(p, pass, term, w, job % s.channels, k0, u);
      }
    }
    float* v = blocks + omp_get_thread_num() * p.blockFloats();
    float* m = v + kPoints * p.vPoint;
#pragma omp for schedule(static)
    for (size_t b = 0; b < p.blocks.size(); ++b) {
      const Block& block = p.blocks[b];
      for (int64_t t = 0; t < block.count; ++t) transformInput(p, block.pass, x, block.first + t, v, t);
      multiplyBlock(p, v, u + block.pass * kPoints * p.uPoint, block.count, m);
      for (int64_t t = 0; t < block.count; ++t)
        for (int64_t k0 = 0; k0 < s.outChannels; k0 += 8)
          transformOutput(p, block.pass, m, block.first + t, t, k0, e, y);
    }
  }
}

}  // namespace weft::cpu
