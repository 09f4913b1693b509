// Native 4x4, stride-2 convolutions and conv_transposes as F(7x7, 2x2) Winograd over phases
// (see native_winograd.h and phase_winograd_kernels.h). Along each axis a stride-2 window of
// four taps reads two rows of each parity: a conv is the sum over the four phases of its
// input (even and odd rows, even and odd columns) of 2x2, stride-1 convolutions, and a
// conv_transpose writes each phase of its result with one 2x2, stride-1 convolution of its
// input. Each such convolution is a "term" of a "pass" (one result plane): a conv is one pass
// of four terms, a conv_transpose four passes of one. With the 64 points xi of a 7x7 tile:
//   U[xi][c][k] = (G g[k, c] G^T)[xi]        the term's 2x2 taps, all workers;
//   V[xi][t][c] = (B^T d[t, c] B)[xi]        the term's 8x8 input patches of each tile t;
//   M[xi][t][k] (+)= sum over c of V[xi][t][c] * U[xi][c][k]   summed over the terms;
//   y[tile t, k] = A^T M[.][t][k] A          7x7 results, then bias, residual, ReLU.
// Each worker owns a contiguous share of the tiles (their V and M rows); the transformed
// taps (64 per 4 of the weight) are made anew for each term, so the scratch holds one term's.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "ir/attrs.h"
#include "ir/channels_last.h"
#include "runtime/cpu/blocked_layout.h"
#include "runtime/cpu/native_winograd.h"
#include "runtime/cpu/phase_winograd_kernels.h"
#include "runtime/cpu/vector_state.h"
#include "runtime/cpu/winograd_kernels.h"

namespace weft::cpu {
namespace {

using winograd7::kPoints;
using winograd7::kTile;

/// The most scratch a phase step may take; larger convolutions stay with oneDNN (every
/// benchmark model's take 5.2 MB).
constexpr int64_t kMostScratchBytes = int64_t{24} << 20;

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
Axis axisOf(bool transposed, int64_t q, int64_t in, int64_t out, int64_t p) {
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
std::vector<Pass> passesOf(const PhaseWinogradShape& s) {
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

/// A pass's result plane in 7x7 tiles, tile t of image n at row t / tilesAcross, column t %
/// tilesAcross.
struct PassTiling {
  const PhaseWinogradShape& s;
  const Pass& pass;
  int64_t tilesDown, tilesAcross, tiles;

  PassTiling(const PhaseWinogradShape& shape, const Pass& p)
      : s(shape),
        pass(p),
        tilesDown((p.rows[0].outCount + kTile - 1) / kTile),
        tilesAcross((p.cols[0].outCount + kTile - 1) / kTile),
        tiles(shape.images * tilesDown * tilesAcross) {}
  /// Tile `tile`'s image and its first row and column in the pass's result plane.
  void locate(int64_t tile, int64_t& image, int64_t& top, int64_t& left) const {
    const int64_t perImage = tilesDown * tilesAcross, inImage = tile % perImage;
    image = tile / perImage;
    top = inImage / tilesAcross * kTile;
    left = inImage % tilesAcross * kTile;
  }
};

/// The most tiles any pass of `s` has (the scratch's rows).
int64_t mostTiles(const PhaseWinogradShape& s) {
  int64_t most = 0;
  for (const Pass& pass : passesOf(s)) most = std::max(most, PassTiling(s, pass).tiles);
  return most;
}

/// The scratch's arrays, point by point: U [64][C][K], V [64][rows][C] and M [64][rows][K],
/// each point's part a cache line longer than it needs: with power-of-two sizes the 64
/// points' parts began in the same set of the L1 cache, and each transform's 64 loads or
/// stores missed it (the transforms took 48% of dcgan's conv_transpose on the AMD EPYC).
struct ScratchLayout {
  int64_t rows;                    ///< tiles (mostTiles)
  int64_t uPoint, vPoint, mPoint;  ///< floats from one point's part to the next
  explicit ScratchLayout(const PhaseWinogradShape& s)
      : rows(mostTiles(s)),
        uPoint(s.channels * s.outChannels + 16),
        vPoint(rows * s.channels + 16),
        mPoint(rows * s.outChannels + 16) {}
  int64_t floats() const { return kPoints * (uPoint + vPoint + mPoint); }
};

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
  for (int b = 0; b < 2; ++b) {
    const __m256 g[2] = {_mm256_i32gather_ps(base + rows.tap[0] * 4 + cols.tap[b], offsets, 4),
                         _mm256_i32gather_ps(base + rows.tap[1] * 4 + cols.tap[b], offsets, 4)};
    winograd7::weightTransform(g, columns[b]);
  }
  for (int a = 0; a < 8; ++a) {
    const __m256 g[2] = {columns[0][a], columns[1][a]};
    __m256 row[8];
    winograd7::weightTransform(g, row);
    for (int b = 0; b < 8; ++b) _mm256_storeu_ps(u + (a * 8 + b) * pointStride + c * s.outChannels + k0, row[b]);
  }
}

/// V[xi][tile][c0..c0+8] = B^T d B for term `term`'s input patch of tile `tile`, eight
/// channels c0..; a point's rows lie pointStride floats apart.
__attribute__((target("avx2,fma"))) void transformInput(const PassTiling& tiling, int term, const float* x,
                                                        int64_t tile, int64_t c0, float* v, int64_t pointStride) {
  const PhaseWinogradShape& s = tiling.s;
  const Axis &rows = tiling.pass.rows[term], &cols = tiling.pass.cols[term];
  int64_t image, top, left;
  tiling.locate(tile, image, top, left);
  top += rows.start, left += cols.start;  // the patch's first row and column in the phase
  const float* base = x + image * s.height * s.width * s.channels + c0;
  // The patch's rows aFirst..aEnd and columns bFirst..bEnd lie in the phase; the rest are zeros.
  const int64_t aFirst = std::max<int64_t>(0, -top), aEnd = std::min<int64_t>(8, rows.inCount - top);
  const int64_t bFirst = std::max<int64_t>(0, -left), bEnd = std::min<int64_t>(8, cols.inCount - left);
  __m256 columns[8][8];  // B^T applied down each column of the patch
  for (int b = 0; b < 8; ++b) {
    __m256 d[8];
    if (b < bFirst || b >= bEnd) {
      for (__m256& r : columns[b]) r = _mm256_setzero_ps();
      continue;
    }
    const float* column = base + (cols.inFirst + cols.inStep * (left + b)) * s.channels;
    for (int a = 0; a < 8; ++a)
      d[a] = a >= aFirst && a < aEnd
                 ? _mm256_loadu_ps(column + (rows.inFirst + rows.inStep * (top + a)) * s.width * s.channels)
                 : _mm256_setzero_ps();
    winograd7::inputTransform(d, columns[b]);
  }
  for (int a = 0; a < 8; ++a) {
    const __m256 d[8] = {columns[0][a], columns[1][a], columns[2][a], columns[3][a],
                         columns[4][a], columns[5][a], columns[6][a], columns[7][a]};
    __m256 r[8];
    winograd7::inputTransform(d, r);
    for (int b = 0; b < 8; ++b) _mm256_storeu_ps(v + (a * 8 + b) * pointStride + tile * s.channels + c0, r[b]);
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
    for (int64_t k0 = 0; k0 < K; k0 += 16)
      for (int64_t t = first; t < last; t += 6) {
        const int64_t count = std::min<int64_t>(6, last - t);
        if (accumulate)
          winograd::multiplySomeRows<true>(count, vp + t * C, C, 1, up + k0, K, C, mp + t * K + k0, K);
        else
          winograd::multiplySomeRows<false>(count, vp + t * C, C, 1, up + k0, K, C, mp + t * K + k0, K);
      }
  }
}

/// y for tile `tile` of the pass and eight result channels k0.., with the epilogue; a point's
/// rows of M lie pointStride floats apart.
__attribute__((target("avx2,fma"))) void transformOutput(const PassTiling& tiling, const float* m, int64_t tile,
                                                         int64_t k0, int64_t pointStride, const WinogradEpilogue& e,
                                                         float* y) {
  const PhaseWinogradShape& s = tiling.s;
  const Axis &rows = tiling.pass.rows[0], &cols = tiling.pass.cols[0];
  int64_t image, top, left;
  tiling.locate(tile, image, top, left);
  const float* at = m + tile * s.outChannels + k0;
  __m256 columns[8][7];  // A^T applied down each column of the products
  for (int b = 0; b < 8; ++b) {
    __m256 column[8];
    for (int a = 0; a < 8; ++a) column[a] = _mm256_loadu_ps(at + (a * 8 + b) * pointStride);
    winograd7::outputTransform(column, columns[b]);
  }
  const __m256 bias = !e.bias        ? _mm256_setzero_ps()
                      : e.singleBias ? _mm256_broadcast_ss(e.bias)
                                     : _mm256_loadu_ps(e.bias + k0);
  const int64_t offset = image * s.outHeight * s.outWidth * s.outChannels + k0;
  for (int a = 0; a < kTile && top + a < rows.outCount; ++a) {
    const __m256 d[8] = {columns[0][a], columns[1][a], columns[2][a], columns[3][a],
                         columns[4][a], columns[5][a], columns[6][a], columns[7][a]};
    __m256 r[7];
    winograd7::outputTransform(d, r);
    const int64_t row = rows.outFirst + rows.outStep * (top + a);
    for (int b = 0; b < kTile && left + b < cols.outCount; ++b) {
      const int64_t index = offset + (row * s.outWidth + cols.outFirst + cols.outStep * (left + b)) * s.outChannels;
      __m256 value = _mm256_add_ps(r[b], bias);
      if (e.residual) value = _mm256_add_ps(value, _mm256_loadu_ps(e.residual + index));
      if (e.relu) value = _mm256_max_ps(value, _mm256_setzero_ps());
      _mm256_storeu_ps(y + index, value);
    }
  }
}

}  // namespace

namespace {

/// True when shape `s` fits the phase kernel (phaseWinogradFits, whatever this CPU is).
bool phaseShapeFits(const PhaseWinogradShape& s) {
  auto sizeFits = [&](int64_t in, int64_t out, int64_t pad) {
    return pad >= 0 && pad <= 2 && in > 0 && out > 0 &&
           (s.transposed ? out == 2 * (in - 1) - 2 * pad + 4 : in + 2 * pad >= 4 && out == (in + 2 * pad - 4) / 2 + 1);
  };
  return s.images > 0 && s.channels > 0 && s.channels % 8 == 0 && s.outChannels > 0 && s.outChannels % 16 == 0 &&
         sizeFits(s.height, s.outHeight, s.padTop) && sizeFits(s.width, s.outWidth, s.padLeft);
}

}  // namespace

bool phaseWinogradFits(const PhaseWinogradShape& s) {
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return avx2 && phaseShapeFits(s);
}

int64_t phaseWinogradScratchBytes(const PhaseWinogradShape& s) {
  return ScratchLayout(s).floats() * 4;
}

void phaseWinogradConvolution(const PhaseWinogradShape& s, const float* x, const float* w, const WinogradEpilogue& e,
                              float* y, void* scratch) {
  const std::vector<Pass> passes = passesOf(s);
  const ScratchLayout layout(s);
  float* u = static_cast<float*>(scratch);
  float* v = u + kPoints * layout.uPoint;
  float* m = v + kPoints * layout.vPoint;
#pragma omp parallel num_threads(std::max(1, omp_get_max_threads()))
  {
    UpperHalvesClearedOnExit cleared;
    const int64_t workers = omp_get_num_threads(), me = omp_get_thread_num();
    for (const Pass& pass : passes) {
      const PassTiling tiling(s, pass);
      const int64_t first = tiling.tiles * me / workers, last = tiling.tiles * (me + 1) / workers;
      for (int term = 0; term < pass.terms; ++term) {
#pragma omp for schedule(static)
        for (int64_t c = 0; c < s.channels; ++c)
          for (int64_t k0 = 0; k0 < s.outChannels; k0 += 8) transformWeights(s, pass, term, w, c, k0, u, layout.uPoint);
        for (int64_t t = first; t < last; ++t)
          for (int64_t c0 = 0; c0 < s.channels; c0 += 8) transformInput(tiling, term, x, t, c0, v, layout.vPoint);
        multiplyTiles(s, layout, v, u, first, last, term > 0, m);
#pragma omp barrier
      }
      for (int64_t t = first; t < last; ++t)
        for (int64_t k0 = 0; k0 < s.outChannels; k0 += 8)
          transformOutput(tiling, m, t, k0, layout.mPoint, e, y);
    }
  }
}

std::optional<PhaseWinogradShape> phaseWinogradCandidate(const ir::Graph& g, ir::ValueId v) {
  const std::optional<ConvEpilogue> found = convEpilogueOf(g, v);
  if (!found) return std::nullopt;
  const ir::Node& conv = *found->conv;
  const ir::Node& node = g.node(v);
  if (!ir::isChannelsLast(conv.op, conv.attrs) || node.type.dtype != ir::DType::f32 || node.type.rank() != 4 ||
      g.type(node.operands[0]).dtype != ir::DType::f32 || g.type(node.operands[1]).dtype != ir::DType::f32)
    return std::nullopt;
  ir::AttrReader attrs(conv.attrs, conv.op);
  const bool transposed = conv.op == ir::OpKind::ConvTranspose;
  const ir::Shape &x = g.type(node.operands[0]).shape, &w = g.type(node.operands[1]).shape, &out = node.type.shape;
  const auto& padding = attrs.ints("padding");
  if (attrs.i("groups") != 1 || w.size() != 4 || w[2] != 4 || w[3] != 4 ||
      attrs.ints("stride") != std::vector<int64_t>{2, 2} || attrs.ints("dilation") != std::vector<int64_t>{1, 1} ||
      (transposed && attrs.ints("output_padding") != std::vector<int64_t>{0, 0}))
    return std::nullopt;
  const PhaseWinogradShape s{x[0], x[1], x[2], x[3], out[1], out[2], out[3], padding[0], padding[1], transposed};
  if (s.channels < 16 || s.outChannels < 16 || s.outHeight < kTile || s.outWidth < kTile ||
      !phaseShapeFits(s) || phaseWinogradScratchBytes(s) > kMostScratchBytes)
    return std::nullopt;
  return s;
}

}  // namespace weft::cpu
