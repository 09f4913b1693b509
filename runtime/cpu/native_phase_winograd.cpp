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
// A 3x3 kernel's weight gradient: native_phase_winograd_blocked_grad.cpp.
#include <omp.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "ir/attrs.h"
#include "ir/channels_last.h"
#include "runtime/cpu/host_isa.h"
#include "runtime/cpu/native_winograd.h"
#include "runtime/cpu/phase_winograd_blocks.h"
#include "runtime/cpu/vector_state.h"

namespace weft::cpu {
namespace {

using namespace phase_blocks;

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

/// M = V U for a block of pass `pass`, point by point, over the terms each point multiplies
/// (M is zero at a point with none: a conv_transpose's phase without a tap).
template <class F>
void multiplyBlock(const Plan<F>& p, int pass, const float* v, const float* u, int64_t count, float* m) {
  const int64_t D = p.depth, K = p.s.outChannels, C = p.s.channels;
  const std::vector<TermRange>& terms = p.pointTerms[static_cast<size_t>(pass)];
  for (int64_t point = 0; point < Plan<F>::kPoints; ++point) {
    const TermRange range = terms[static_cast<size_t>(point)];
    const int64_t first = range.first * C, depth = (range.end - range.first) * C;
    const float* vp = v + point * p.vPoint + first;
    const float* up = u + point * p.uPoint + first * K;
    float* mp = m + point * p.mPoint;
    if (depth == 0) {
      std::fill_n(mp, count * K, 0.0f);
      continue;
    }
    for (int64_t k0 = 0, step = winograd::multiplyColumns(); k0 < K; k0 += step)
      winograd::forEachRowGroup(count, [&](int64_t t0, int64_t rows) {
        winograd::multiplySomeRows<false>(rows, std::min(step, K - k0), vp + t0 * D, D, 1, up + k0, K, depth,
                                          mp + t0 * K + k0, K);
      });
  }
}

/// y for tile `tile` of pass `pass` (block row `row` of M), every result channel (W's width at
/// a time), with the epilogue.
template <class F, class W>
void transformOutputs(const Plan<F>& p, int pass, const float* m, int64_t tile, int64_t row,
                      const WinogradEpilogue& e, float* y) {
  const Pass& of = p.passes[static_cast<size_t>(pass)];
  int64_t image, top, left;
  p.tiling[static_cast<size_t>(pass)].locate(tile, image, top, left);
  for (int64_t k0 = 0; k0 < p.s.outChannels; k0 += W::kFloats)
    transformTileOutput<F, W>(p.s, of.rows[0], of.cols[0], image, top, left, m + row * p.s.outChannels + k0, p.mPoint,
                              k0, e, y);
}
/// transformOutputs in AVX2's eights, or in AVX-512's sixteens (winograd::runsSixteens).
template <class F>
[[gnu::target("avx2,fma"), gnu::flatten]] void transformOutputEights(const Plan<F>& p, int pass, const float* m,
                                                                      int64_t tile, int64_t row,
                                                                      const WinogradEpilogue& e, float* y) {
  transformOutputs<F, winograd::Eights>(p, pass, m, tile, row, e, y);
}
template <class F>
[[gnu::target("avx512f"), gnu::flatten]] void transformOutputSixteens(const Plan<F>& p, int pass, const float* m,
                                                                       int64_t tile, int64_t row,
                                                                       const WinogradEpilogue& e, float* y) {
  transformOutputs<F, winograd::Sixteens>(p, pass, m, tile, row, e, y);
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
  const bool transformsWeights = !heldWeights || !heldReady, sixteens = winograd::runsSixteens(s.outChannels);
  const auto transformInput = winograd::runsSixteens(s.channels) ? transformInputSixteens<F> : transformInputEights<F>;
  const int terms = p.passes.front().terms;
#pragma omp parallel num_threads(workers)
  {
    UpperHalvesClearedOnExit cleared;
    float* v = blocks + omp_get_thread_num() * p.blockFloats();
    float* m = v + kPoints * p.vPoint;
    for (size_t pass = 0; pass < p.passes.size(); ++pass) {
      // The pass's transformed weights: held, all passes', or the scratch's, one pass's at a time.
      float* u = heldWeights ? heldWeights + static_cast<int64_t>(pass) * p.weightFloats()
                             : static_cast<float*>(scratch);
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
        multiplyBlock(p, block.pass, v, u, block.count, m);
        const auto transformOutput = sixteens ? transformOutputSixteens<F> : transformOutputEights<F>;
        for (int64_t t = 0; t < block.count; ++t) transformOutput(p, block.pass, m, block.first + t, t, e, y);
      }
    }
  }
}

}  // namespace

bool phaseWinogradFits(const PhaseWinogradShape& s) {
  const bool avx2 = hostHasAvx2Fma();
  return avx2 && winograd7::shapeFits(s);
}

int64_t phaseWinogradScratchBytes(const PhaseWinogradShape& s, int threads) {
  if (s.kernel == 4 && !s.transposed) return termwisePhaseScratchBytes(s);
  return sevenTiles(s) ? scratchBytes<F7>(s, threads) : scratchBytes<F4>(s, threads);
}

int64_t phaseWinogradHeldWeightBytes(const PhaseWinogradShape& s) {
  if (s.kernel == 4 && !s.transposed) return termwisePhaseHeldWeightBytes(s);
  return 4 * (sevenTiles(s) ? Plan<F7>(s, 1).heldWeightFloats() : Plan<F4>(s, 1).heldWeightFloats());
}

void phaseWinogradConvolution(const PhaseWinogradShape& s, const float* x, const float* w, const WinogradEpilogue& e,
                              float* y, void* scratch, int64_t scratchBytesGiven, float* heldWeights, bool heldReady) {
  if (s.kernel == 4 && !s.transposed) return termwisePhaseConvolution(s, x, w, e, y, scratch, heldWeights, heldReady);
  if (sevenTiles(s)) return convolution<F7>(s, x, w, e, y, scratch, scratchBytesGiven, heldWeights, heldReady);
  convolution<F4>(s, x, w, e, y, scratch, scratchBytesGiven, heldWeights, heldReady);
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
  const int64_t tile = s && !sevenTiles(*s) ? F4::kTile : F7::kTile;
  // A 3x3 kernel's only where its 4x4 tiles cover its result planes (a conv_transpose's four,
  // each half the size) without waste, or a conv's 7x7 tiles do: on the AMD EPYC (fastest of
  // 200, alternating with oneDNN) ddpm's [32,28,28,32] -> 14x14 downsampling conv took 0.95-0.98
  // ms in 4x4 tiles (covering 16x16) against oneDNN's 0.71-0.77, 0.63-0.66 in 7x7 tiles against
  // 0.68-0.70; its data gradient in 7x7 tiles (four 14x14 phases, 32 channels deep) 0.87-0.90
  // against 0.76-0.78.
  if (s && s->kernel == 3 && !wholeTiles(*s, F4::kTile) && (s->transposed || !wholeTiles(*s, F7::kTile)))
    return std::nullopt;
  if (!s || s->channels < 16 || s->outChannels < 16 || s->outHeight < tile || s->outWidth < tile ||
      !winograd7::shapeFits(*s) || phaseWinogradScratchBytes(*s) > winograd7::kMostScratchBytes)
    return std::nullopt;
  return s;
}

}  // namespace weft::cpu
