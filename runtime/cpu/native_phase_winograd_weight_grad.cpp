// Native weight gradients of 4x4, stride-2 convolutions, F(2x2, 7x7) over the input's phases
// as the transpose of the forward F(7x7, 2x2) (see phase_winograd_kernels.h). The conv's one
// pass has four terms (the input's phases), each a 2x2, stride-1 convolution with four of
// the sixteen taps; with the 64 points xi of a 7x7 tile t of the result plane:
//   P[xi][t][k] = (A e[t, k] A^T)[xi]        the result gradients, once for all terms;
//   V[xi][t][c] = (B^T d[t, c] B)[xi]        the term's input patches;
//   W[xi][k][c] = sum over t of P[xi][t][k] * V[xi][t][c]   64 matrix products over tiles;
//   dw[k, c, taps of the term] = G^T W[.][k][c] G.
// All tiles are one block (the scratch holds them: phaseWinogradWeightGradCandidate's bound); the
// workers share the transforms and split the 64 points of the products. (A 3x3 kernel's runs in
// blocks with its terms side by side, as the forward step: blockedPhaseWeightGradient. For a
// 4x4 kernel that way was slower on the AMD EPYC, its W four times as large: dcgan's
// [128,64,4,4] gradient 1.93 -> 2.25 ms, ddpm's [64,64,4,4] 2.16 -> 2.27.)
#include <immintrin.h>
#include <omp.h>

#include <optional>

#include "ir/attrs.h"
#include "ir/channels_last.h"
#include "runtime/cpu/native_winograd.h"
#include "runtime/cpu/phase_winograd_blocks.h"
#include "runtime/cpu/phase_winograd_kernels.h"
#include "runtime/cpu/vector_state.h"
#include "runtime/cpu/winograd_kernels.h"

namespace weft::cpu {
namespace {

using namespace winograd7;

/// P[xi][tile][k] = A e A^T for the result gradients of tile `tile`, every channel (W's width
/// at a time: a multiple of it); a point's rows lie pointStride floats apart. Runs inside a step
/// with W's target and gnu::flatten (winograd::Lanes).
template <class W>
void transformGradientOf(const PassTiling& tiling, const float* dy, int64_t tile, float* p, int64_t pointStride) {
  using L = winograd::Lanes<W>;
  const PhaseWinogradShape& s = tiling.s;
  int64_t image, top, left;
  tiling.locate(tile, image, top, left);
  const ImageLayout in = s.yLayout();
  for (int64_t k0 = 0; k0 < s.outChannels; k0 += W::kFloats) {
    const float* base = dy + image * s.outHeight * s.outWidth * s.outChannels + in.at(0, k0);
    L columns[7][8];  // A applied down each column of the tile
#pragma GCC unroll 7
    for (int b = 0; b < 7; ++b) {
      L e[7];
#pragma GCC unroll 7
      for (int a = 0; a < 7; ++a)
        e[a] = top + a < s.outHeight && left + b < s.outWidth
                   ? W::load(base + ((top + a) * s.outWidth + left + b) * in.positionStride)
                   : W::splat(0);
      gradientTransform<W>(e, columns[b]);
    }
#pragma GCC unroll 8
    for (int a = 0; a < 8; ++a) {
      const L e[7] = {columns[0][a], columns[1][a], columns[2][a], columns[3][a],
                      columns[4][a], columns[5][a], columns[6][a]};
      L r[8];
      gradientTransform<W>(e, r);
#pragma GCC unroll 8
      for (int b = 0; b < 8; ++b) W::store(p + (a * 8 + b) * pointStride + tile * s.outChannels + k0, r[b]);
    }
  }
}

/// transformGradientOf in AVX2's eights, or in AVX-512's sixteens.
[[gnu::target("avx2,fma"), gnu::flatten]] void transformGradientEights(const PassTiling& tiling, const float* dy,
                                                                        int64_t tile, float* p, int64_t pointStride) {
  transformGradientOf<winograd::Eights>(tiling, dy, tile, p, pointStride);
}
[[gnu::target("avx512f"), gnu::flatten]] void transformGradientSixteens(const PassTiling& tiling, const float* dy,
                                                                         int64_t tile, float* p,
                                                                         int64_t pointStride) {
  transformGradientOf<winograd::Sixteens>(tiling, dy, tile, p, pointStride);
}

/// dw[k, c0..c0+8, taps of term `term`] = G^T W[.][k][c] G; a point's part of W lies
/// pointStride floats after the previous one's.
__attribute__((target("avx2,fma"))) void transformKernel(const PhaseWinogradShape& s, const Pass& pass, int term,
                                                         const float* w, int64_t k, int64_t c0, int64_t pointStride,
                                                         float* dw) {
  const float* at = w + k * s.channels + c0;
  __m256 columns[8][2];  // G^T applied down each column of the points
#pragma GCC unroll 8
  for (int b = 0; b < 8; ++b) {
    __m256 column[8];
#pragma GCC unroll 8
    for (int a = 0; a < 8; ++a) column[a] = _mm256_loadu_ps(at + (a * 8 + b) * pointStride);
    kernelTransform(column, columns[b]);
  }
  alignas(32) float taps[2][2][8];
#pragma GCC unroll 2
  for (int a = 0; a < 2; ++a) {
    const __m256 row[8] = {columns[0][a], columns[1][a], columns[2][a], columns[3][a],
                           columns[4][a], columns[5][a], columns[6][a], columns[7][a]};
    __m256 r[2];
    kernelTransform(row, r);
#pragma GCC unroll 2
    for (int b = 0; b < 2; ++b) _mm256_store_ps(taps[a][b], r[b]);
  }
  const Axis &rows = pass.rows[term], &cols = pass.cols[term];
  for (int64_t j = 0; j < 8; ++j)
#pragma GCC unroll 2
    for (int a = 0; a < 2; ++a)
#pragma GCC unroll 2
      for (int b = 0; b < 2; ++b) dw[((k * s.channels + c0 + j) * 4 + rows.tap[a]) * 4 + cols.tap[b]] = taps[a][b][j];
}

}  // namespace

int64_t phaseWinogradWeightGradScratchBytes(const PhaseWinogradShape& s) {
  return s.kernel == 3 ? blockedPhaseWeightGradScratchBytes(s) : ScratchLayout(s).floats() * 4;
}

void phaseWinogradWeightGradient(const PhaseWinogradShape& s, const float* x, const float* dy, float* dw,
                                 void* scratch) {
  if (s.kernel == 3) return blockedPhaseWeightGradient(s, x, dy, dw, scratch);
  const Pass pass = passesOf(s).front();  // a conv's: the input's four phases
  const PassTiling tiling(s, pass);
  const ScratchLayout layout(s);  // W in U's room, P in M's
  const int64_t C = s.channels, K = s.outChannels;
  float* sums = static_cast<float*>(scratch);  // W
  float* v = sums + kPoints * layout.uPoint;
  float* p = v + kPoints * layout.vPoint;
  const auto transformGradient = winograd::runsSixteens(K) ? transformGradientSixteens : transformGradientEights;
  const auto transformInput = winograd::runsSixteens(C) ? transformInputSixteens : transformInputEights;
#pragma omp parallel
  {
    UpperHalvesClearedOnExit cleared;
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tiling.tiles; ++t)
      transformGradient(tiling, dy, t, p, layout.mPoint);
    for (int term = 0; term < pass.terms; ++term) {
#pragma omp for schedule(static)
      for (int64_t t = 0; t < tiling.tiles; ++t) {
        if (t + winograd::kPrefetchTiles < tiling.tiles)
          prefetchInputPatch(tiling, term, x, t + winograd::kPrefetchTiles);
        transformInput(tiling, term, x, t, v, layout.vPoint);
      }
#pragma omp for schedule(static)
      for (int64_t point = 0; point < kPoints; ++point) {
        const float* vp = v + point * layout.vPoint;
        const float* pp = p + point * layout.mPoint;
        float* wp = sums + point * layout.uPoint;
        winograd::forEachRowGroup(K, [&](int64_t k0, int64_t rows) {
          for (int64_t c0 = 0, step = winograd::multiplyColumns(); c0 < C; c0 += step)
            winograd::multiplySomeRows<false>(rows, std::min(step, C - c0), pp + k0, 1, K, vp + c0, C, tiling.tiles,
                                              wp + k0 * C + c0, C);
        });
      }
#pragma omp for schedule(static)
      for (int64_t k = 0; k < K; ++k)
        for (int64_t c0 = 0; c0 < C; c0 += 8) transformKernel(s, pass, term, sums, k, c0, layout.uPoint, dw);
    }
  }
}

std::optional<PhaseWinogradShape> phaseWinogradWeightGradCandidate(const ir::Graph& g, ir::ValueId v) {
  const ir::Node& node = g.node(v);
  if (node.op != ir::OpKind::ConvWeightGrad || !ir::isChannelsLast(node.op, node.attrs) ||
      node.type.dtype != ir::DType::f32 || g.type(node.operands[0]).dtype != ir::DType::f32 ||
      g.type(node.operands[1]).dtype != ir::DType::f32 || g.type(node.operands[0]).rank() != 4 ||
      g.type(node.operands[1]).rank() != 4)
    return std::nullopt;
  ir::AttrReader attrs(node.attrs, node.op);
  const std::vector<int64_t>& kernel = attrs.ints("kernel");
  if (attrs.i("groups") != 1 || (kernel != std::vector<int64_t>{4, 4} && kernel != std::vector<int64_t>{3, 3}) ||
      attrs.ints("stride") != std::vector<int64_t>{2, 2} || attrs.ints("dilation") != std::vector<int64_t>{1, 1})
    return std::nullopt;
  const ir::Shape &x = g.type(node.operands[0]).shape, &dy = g.type(node.operands[1]).shape;
  const auto& padding = attrs.ints("padding");
  const PhaseWinogradShape s{x[0], x[1], x[2], x[3], dy[1], dy[2], dy[3], padding[0], padding[1], false, kernel[0]};
  // A 3x3 kernel's 4x4 or 7x7 tiles cover dy's planes whole (as the forward step's): ddpm's
  // downsampling weight gradient [32,32,3,3] in 7x7 tiles 0.68-0.70 ms against oneDNN's
  // 0.83-0.93 on the AMD EPYC.
  const bool tilesFit = s.kernel == 3 ? s.channels % 8 == 0 && (phase_blocks::wholeTiles(s, phase_blocks::F4::kTile) ||
                                                                phase_blocks::wholeTiles(s, phase_blocks::F7::kTile))
                                      : s.channels % 16 == 0 && s.outHeight >= kTile && s.outWidth >= kTile;
  if (s.channels < 16 || !tilesFit || s.outChannels < 16 || dy[0] != x[0] || !shapeFits(s) ||
      phaseWinogradWeightGradScratchBytes(s) > kMostScratchBytes)
    return std::nullopt;
  return s;
}

}  // namespace weft::cpu
