// Native Winograd convolutions F(4x4, 3x3) on AVX2, the output transform on AVX-512 where the
// CPU runs it (see native_winograd.h and winograd_kernels.h). With the 36 points xi of a tile:
//   U[xi][c][k] = (G w'[k, c] G^T)[xi]       the weights, once per run (all workers);
//   V[xi][t][c] = (B^T d[t, c] B)[xi]        a block of tiles t, their input patches d;
//   M[xi][t][k] = sum over c of V[xi][t][c] * U[xi][c][k]   36 matrix products;
//   y[tile t, k] = A^T M[.][t][k] A          4x4 results, then bias, residual, ReLU.
// Each worker takes blocks of tiles of its own; the products run on 6 tiles x 16 result
// channels of registers (12 accumulators), the classic AVX2 GEMM kernel.
#include "runtime/cpu/native_winograd.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "ir/attrs.h"
#include "ir/channels_last.h"
#include "runtime/cpu/blocked_layout.h"
#include "runtime/cpu/environment.h"
#include "runtime/cpu/host_isa.h"
#include "runtime/cpu/vector_state.h"
#include "runtime/cpu/winograd.h"
#include "runtime/cpu/winograd_kernels.h"

namespace weft::cpu {
namespace {

using namespace winograd;

/// The bytes of one block's transformed input and products, and the fewest
/// tiles a block holds (each block reads all of U: fewer tiles read it more
/// often). On the AMD EPYC of stop 33 (512 KiB of L2 per core), blocks of 8,
/// 20, 40 and 80 tiles took 1.95, 1.94, 1.94 and 1.81 ms for resnet's first
/// layers (32 -> 32 channels, 32x32), 1.95, 1.83, 1.53, 1.79 ms for its middle
/// ones (64, 16x16), 2.12, 1.83, 1.81, 1.69 ms for its last (128, 8x8).
constexpr int64_t kBlockBytes = 640 * 1024;
constexpr int64_t kFewestBlockTiles = 16;

/// The tiles of a run in blocks: at most blockTiles each, as many for each worker.
struct Plan : Tiling {
  int64_t blockTiles = 0, blocks = 0;
  using Tiling::Tiling;
};

/// U for eight result channels k0.. of input channel c. The eight channels' taps are
/// gathered (scalar stores read back as vectors stall store forwarding: 13% of resnet's
/// 128-channel convolutions on the AMD EPYC).
__attribute__((target("avx2,fma"))) void transformWeights(const WinogradShape& s, const float* w, int64_t c, int64_t k0,
                                                          float* u) {
  // conv: w[k, c, t] at (k * C + c) * 9 + t; conv_transpose: w[c, k, 8 - t] at (c * K + k) * 9 + 8 - t.
  const int32_t step = static_cast<int32_t>(s.transposed ? 9 : s.channels * 9);
  const __m256i offsets = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(step));
  const float* base = s.transposed ? w + (c * s.outChannels + k0) * 9 + 8 : w + (k0 * s.channels + c) * 9;
  const int64_t direction = s.transposed ? -1 : 1;
  __m256 taps[9];
#pragma GCC unroll 9
  for (int t = 0; t < 9; ++t) taps[t] = _mm256_i32gather_ps(base + direction * t, offsets, 4);
  __m256 columns[3][6];  // G applied down each of the kernel's three columns
#pragma GCC unroll 3
  for (int b = 0; b < 3; ++b) {
    const __m256 g[3] = {taps[b], taps[3 + b], taps[6 + b]};
    weightTransform(g, columns[b]);
  }
  const int64_t pointStride = weightPointStride(s);
#pragma GCC unroll 6
  for (int a = 0; a < 6; ++a) {
    const __m256 g[3] = {columns[0][a], columns[1][a], columns[2][a]};
    __m256 row[6];
    weightTransform(g, row);
#pragma GCC unroll 6
    for (int b = 0; b < 6; ++b) _mm256_storeu_ps(u + (a * 6 + b) * pointStride + c * s.outChannels + k0, row[b]);
  }
}

/// M = V U for a block of `count` tiles, point by point.
void multiplyBlock(const Plan& p, const float* v, const float* u, int64_t count, float* m) {
  const int64_t C = p.s.channels, K = p.s.outChannels;
  for (int64_t point = 0; point < kPoints; ++point) {
    const float* vp = v + point * tilePointStride(p.blockTiles, C);
    const float* up = u + point * weightPointStride(p.s);
    float* mp = m + point * tilePointStride(p.blockTiles, K);
    for (int64_t k0 = 0, step = multiplyColumns(); k0 < K; k0 += step)
      forEachRowGroup(count, [&](int64_t t0, int64_t rows) {
        multiplySomeRows<false>(rows, std::min(step, K - k0), vp + t0 * C, C, 1, up + k0, K, C, mp + t0 * K + k0, K);
      });
  }
}

/// y for tile `tile` (block row `row` of M) and one vector of result channels k0.. (W's width),
/// with the epilogue.
template <class W>
void transformOutput(const Plan& p, const float* m, int64_t tile, int64_t row, int64_t k0,
                     const WinogradEpilogue& e, float* y) {
  using L = Lanes<W>;
  const WinogradShape& s = p.s;
  int64_t image, top, left;
  p.locate(tile, image, top, left);
  const int64_t pointStride = tilePointStride(p.blockTiles, s.outChannels);
  const float* at = m + row * s.outChannels + k0;
  L columns[6][4];  // A^T applied down each column of the products
#pragma GCC unroll 6
  for (int b = 0; b < 6; ++b) {
    L column[6];
#pragma GCC unroll 6
    for (int a = 0; a < 6; ++a) column[a] = W::load(at + (a * 6 + b) * pointStride);
    outputTransform<W>(column, columns[b]);
  }
  const L bias = epilogueBiasOf<W>(e, k0);
  const int64_t offset = image * s.outHeight * s.outWidth * s.outChannels + k0;
#pragma GCC unroll 4
  for (int a = 0; a < 4; ++a) {
    if (top + a >= s.outHeight) break;
    const L d[6] = {columns[0][a], columns[1][a], columns[2][a], columns[3][a], columns[4][a], columns[5][a]};
    L r[4];
    outputTransform<W>(d, r);
#pragma GCC unroll 4
    for (int b = 0; b < 4; ++b) {
      if (left + b >= s.outWidth) break;
      storeResultOf<W>(e, r[b], bias, offset + ((top + a) * s.outWidth + left + b) * s.outChannels, y);
    }
  }
}

/// Every result channel of tile `tile` (block row `row` of M): eight at a time with AVX2, or
/// sixteen with AVX-512 where the CPU runs it (the channels are a multiple of 16:
/// winogradFits), the same floats. On the AMD EPYC Zen 4 of stop 47 (its 512-bit vectors at
/// half rate) the half as many loads, stores and instructions took resnet's 32-channel 32x32
/// convolution from 1.164 to 1.104 ms and its data gradient from 1.166 to 1.103 (fastest of 4
/// x 300, alternating: scripts/kernel_ab.py).
[[gnu::target("avx2,fma"), gnu::flatten]] void transformOutputEights(const Plan& p, const float* m, int64_t tile,
                                                                      int64_t row, const WinogradEpilogue& e,
                                                                      float* y) {
  for (int64_t k0 = 0; k0 < p.s.outChannels; k0 += Eights::kFloats) transformOutput<Eights>(p, m, tile, row, k0, e, y);
}
[[gnu::target("avx512f"), gnu::flatten]] void transformOutputSixteens(const Plan& p, const float* m, int64_t tile,
                                                                       int64_t row, const WinogradEpilogue& e,
                                                                       float* y) {
  for (int64_t k0 = 0; k0 < p.s.outChannels; k0 += Sixteens::kFloats)
    transformOutput<Sixteens>(p, m, tile, row, k0, e, y);
}

/// The results the tiles leave out (Tiling's lone lines) run as a direct
/// convolution: lenet's data gradient of its second layer (11x11 -> 13x13)
/// took 16 tiles a plane for its 169 results, 1.36-1.39 ms; 9 tiles and the
/// last row and column direct take 1.05-1.07 (fastest of 300, alternating, on
/// the AMD EPYC), lenet's training step 3.95-4.17 -> 3.58 ms.
bool leavesLoneLines(const WinogradShape& s) { return lastLineAlone(s.outHeight) || lastLineAlone(s.outWidth); }

/// The floats of the direct convolution's weights w'[k, c, a, b] at ((a * 3 + b)
/// * C + c) * K + k, and C zeros (what it reads outside the input).
int64_t directFloats(const WinogradShape& s) {
  return leavesLoneLines(s) ? 9 * s.channels * s.outChannels + s.channels : 0;
}

/// The direct weights of input channel c, from w as transformWeights reads it.
void gatherDirectWeights(const WinogradShape& s, const float* w, int64_t c, float* wd) {
  const int64_t C = s.channels, K = s.outChannels;
  for (int64_t t = 0; t < 9; ++t)
    for (int64_t k = 0; k < K; ++k)
      wd[(t * C + c) * K + k] = s.transposed ? w[(c * K + k) * 9 + 8 - t] : w[(k * C + c) * 9 + t];
}

/// The results at up to kDirectPixels positions (rows[p], columns[p]) of one image, summed
/// directly over the taps and input channels (sixteen result channels at a time, in
/// registers), with the epilogue. `zeros` holds C zeros.
constexpr int kDirectPixels = 4;
__attribute__((target("avx2,fma"))) void directPixels(const WinogradShape& s, const float* x, const float* wd,
                                                      const float* zeros, const WinogradEpilogue& e, float* y,
                                                      int64_t image, const int64_t (&rows)[kDirectPixels],
                                                      const int64_t (&columns)[kDirectPixels], int count) {
  const int64_t C = s.channels, K = s.outChannels;
  for (int64_t k0 = 0; k0 < K; k0 += 16) {
    __m256 sums[kDirectPixels][2];
#pragma GCC unroll 4
    for (int p = 0; p < kDirectPixels; ++p) sums[p][0] = sums[p][1] = _mm256_setzero_ps();
    for (int64_t t = 0; t < 9; ++t) {
      const float* in[kDirectPixels];  // each position's input channels under tap t, or zeros
      bool any = false;
#pragma GCC unroll 4
      for (int p = 0; p < kDirectPixels; ++p) {
        const int64_t ih = rows[p] - s.padTop + t / 3, iw = columns[p] - s.padLeft + t % 3;
        const bool inside = p < count && ih >= 0 && ih < s.height && iw >= 0 && iw < s.width;
        in[p] = inside ? x + ((image * s.height + ih) * s.width + iw) * C : zeros;
        any = any || inside;
      }
      if (!any) continue;
      const float* w = wd + t * C * K + k0;
      for (int64_t c = 0; c < C; ++c, w += K) {
        const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
#pragma GCC unroll 4
        for (int p = 0; p < kDirectPixels; ++p) {
          const __m256 v = _mm256_broadcast_ss(in[p] + c);
          sums[p][0] = _mm256_fmadd_ps(v, w0, sums[p][0]);
          sums[p][1] = _mm256_fmadd_ps(v, w1, sums[p][1]);
        }
      }
    }
    const __m256 bias0 = epilogueBias(e, k0), bias1 = epilogueBias(e, k0 + 8);
#pragma GCC unroll 4
    for (int p = 0; p < kDirectPixels; ++p) {  // unrolled, as every loop over sums: they stay in registers
      if (p >= count) break;
      const int64_t index = ((image * s.outHeight + rows[p]) * s.outWidth + columns[p]) * K + k0;
      storeResult(e, sums[p][0], bias0, index, y);
      storeResult(e, sums[p][1], bias1, index + 8, y);
    }
  }
}

/// The lone last row and column of image `image` (leavesLoneLines), kDirectPixels at a time.
void directLines(const WinogradShape& s, const float* x, const float* wd, const float* zeros,
                 const WinogradEpilogue& e, float* y, int64_t image) {
  int64_t rows[kDirectPixels], columns[kDirectPixels];
  int count = 0;
  auto add = [&](int64_t row, int64_t column) {
    rows[count] = row, columns[count] = column;
    if (++count == kDirectPixels) directPixels(s, x, wd, zeros, e, y, image, rows, columns, count), count = 0;
  };
  const bool lastRow = lastLineAlone(s.outHeight);
  if (lastRow)
    for (int64_t j = 0; j < s.outWidth; ++j) add(s.outHeight - 1, j);
  if (lastLineAlone(s.outWidth))
    for (int64_t i = 0; i < s.outHeight - (lastRow ? 1 : 0); ++i) add(i, s.outWidth - 1);
  if (count > 0) directPixels(s, x, wd, zeros, e, y, image, rows, columns, count);
}

/// The geometry of convolution `s` on `threads` workers: blocks of at most
/// blockTiles tiles, as many for each worker.
Plan planFor(const WinogradShape& s, int threads) {
  Plan p(s, true);
  const int64_t most = std::max(kFewestBlockTiles, kBlockBytes / (kPoints * 4 * (s.channels + s.outChannels)));
  p.blocks = (p.tiles + most - 1) / most;
  p.blocks = (p.blocks + threads - 1) / threads * threads;  // every worker as many blocks
  p.blockTiles = (p.tiles + p.blocks - 1) / p.blocks;
  p.blocks = (p.tiles + p.blockTiles - 1) / p.blockTiles;
  return p;
}

/// The floats of the transformed weights, and of one worker's block with
/// `blockTiles` tiles.
int64_t weightFloats(const WinogradShape& s) { return kPoints * weightPointStride(s); }
int64_t blockFloats(const WinogradShape& s, int64_t blockTiles) {
  return kPoints * (tilePointStride(blockTiles, s.channels) + tilePointStride(blockTiles, s.outChannels));
}

/// The shape of node `v`'s convolution as the Winograd kernel sees it, or
/// nullopt when the node is no 3x3 stride 1 convolution of channels-last f32
/// data the kernel takes.
std::optional<WinogradShape> winogradShapeOf(const ir::Graph& g, ir::ValueId v, const ConvEpilogue& found) {
  const ir::Node& conv = *found.conv;
  const ir::Node& node = g.node(v);
  if (!isChannelsLastF32Conv(g, v, conv)) return std::nullopt;
  ir::AttrReader attrs(conv.attrs, conv.op);
  const bool transposed = conv.op == ir::OpKind::ConvTranspose;
  const ir::Shape &x = g.type(node.operands[0]).shape, &w = g.type(node.operands[1]).shape, &out = node.type.shape;
  const auto &padding = attrs.ints("padding"), one = std::vector<int64_t>{1, 1};
  if (attrs.i("groups") != 1 || w.size() != 4 || w[2] != 3 || w[3] != 3 || attrs.ints("stride") != one ||
      attrs.ints("dilation") != one || (transposed && attrs.ints("output_padding") != std::vector<int64_t>{0, 0}))
    return std::nullopt;
  WinogradShape s{x[0], x[1], x[2], x[3], out[1], out[2], out[3], padding[0], padding[1], transposed};
  if (transposed) s.padTop = 2 - padding[0], s.padLeft = 2 - padding[1];
  return s;
}

/// winogradShapeOf node `v` read as a convolution with its epilogue (convEpilogueOf).
std::optional<WinogradShape> winogradShapeOf(const ir::Graph& g, ir::ValueId v) {
  const std::optional<ConvEpilogue> found = convEpilogueOf(g, v);
  return found ? winogradShapeOf(g, v, *found) : std::nullopt;
}

/// Node `v`'s shape when it is a convolution the native step would run on an
/// AVX2 CPU without oneDNN Winograd kernels (whatever this CPU is), else
/// nullopt.
std::optional<WinogradShape> winogradCandidate(const ir::Graph& g, ir::ValueId v) {
  std::optional<WinogradShape> s = winogradShapeOf(g, v);
  if (!s || s->outHeight < 8 || s->outWidth < 8 || s->channels < 16 || s->outChannels < 16 || s->channels % 8 != 0 ||
      s->outChannels % 16 != 0 || s->padTop > 2 || s->padLeft > 2)
    return std::nullopt;
  return s;
}

}  // namespace

bool winogradFits(const WinogradShape& s) {
  const bool avx2 = hostHasAvx2Fma();
  return avx2 && s.channels > 0 && s.channels % 8 == 0 && s.outChannels > 0 && s.outChannels % 16 == 0 &&
         s.padTop >= 0 && s.padTop <= 2 && s.padLeft >= 0 && s.padLeft <= 2 && s.outHeight > 0 && s.outWidth > 0 &&
         s.outHeight == s.height + 2 * s.padTop - 2 && s.outWidth == s.width + 2 * s.padLeft - 2;
}

int64_t winogradScratchBytes(const WinogradShape& s, int threads) {
  const Plan p = planFor(s, std::max(1, threads));
  return (weightFloats(s) + std::max(1, threads) * blockFloats(s, p.blockTiles) + directFloats(s)) * 4;
}

int64_t winogradHeldWeightBytes(const WinogradShape& s) { return weightFloats(s) * 4; }

void winogradConvolution(const WinogradShape& s, const float* x, const float* w, const WinogradEpilogue& epilogue,
                         float* y, void* scratch, int64_t scratchBytes, float* heldWeights, bool heldReady) {
  // As many workers as the scratch holds blocks for (all of OpenMP's threads
  // when sized for them).
  int workers = std::max(1, omp_get_max_threads());
  while (workers > 1 && winogradScratchBytes(s, workers) > scratchBytes) --workers;
  const Plan p = planFor(s, workers);
  float* u = heldWeights ? heldWeights : static_cast<float*>(scratch);
  float* blocks = static_cast<float*>(scratch) + weightFloats(s);
  float* direct = blocks + workers * blockFloats(s, p.blockTiles);  // directFloats(s): weights, then zeros
  float* zeros = direct + 9 * s.channels * s.outChannels;
  const bool transformsWeights = !heldWeights || !heldReady, lines = leavesLoneLines(s);
  const bool wide = runsSixteens(s.outChannels);
  if (lines) std::fill(zeros, zeros + s.channels, 0.0f);
#pragma omp parallel num_threads(workers)
  {
    UpperHalvesClearedOnExit cleared;
    if (transformsWeights || lines) {
#pragma omp for schedule(static)
      for (int64_t c = 0; c < s.channels; ++c) {
        if (transformsWeights)
          for (int64_t k0 = 0; k0 < s.outChannels; k0 += 8) transformWeights(s, w, c, k0, u);
        if (lines) gatherDirectWeights(s, w, c, direct);
      }
    }
    float* v = blocks + omp_get_thread_num() * blockFloats(s, p.blockTiles);
    float* m = v + kPoints * tilePointStride(p.blockTiles, s.channels);
#pragma omp for schedule(static)
    for (int64_t block = 0; block < p.blocks; ++block) {
      const int64_t first = block * p.blockTiles, count = std::min(p.blockTiles, p.tiles - first);
      for (int64_t t = 0; t < count; ++t)
        transformInput(p, x, first + t, v, t, tilePointStride(p.blockTiles, s.channels));
      multiplyBlock(p, v, u, count, m);
      for (int64_t t = 0; t < count; ++t)
        (wide ? transformOutputSixteens : transformOutputEights)(p, m, first + t, t, epilogue, y);
    }
    if (lines) {
#pragma omp for schedule(static)
      for (int64_t image = 0; image < s.images; ++image) directLines(s, x, direct, zeros, epilogue, y, image);
    }
  }
}

bool winogradConvFits(const ir::Graph& g, ir::ValueId v) {
  if (const std::optional<PhaseWinogradShape> phases = phaseWinogradCandidate(g, v)) return phaseWinogradFits(*phases);
  const std::optional<WinogradShape> s = winogradCandidate(g, v);
  return s && winogradFits(*s);
}

bool weftWinogradPreferred() {
  const size_t forced = environmentChoice("WEFT_WINOGRAD", {"auto", "weft", "onednn"},
                                          "'auto' (the default), 'weft' or 'onednn'");
  return forced != 2;
}

bool runsPhaseSteps(const PhaseWinogradShape& s, bool weightGradient) {
  return s.kernel == 4 || !channelBlocksFit() || (!weightGradient && !hostRunsWideVectorsAtFullRate());
}

bool runsWinogradConv(const ir::Graph& g, ir::ValueId v) {
  if (const std::optional<PhaseWinogradShape> phases = phaseWinogradCandidate(g, v))
    return phaseWinogradFits(*phases) && runsPhaseSteps(*phases, false);
  return winogradConvFits(g, v) && weftWinogradPreferred();
}

int64_t winogradStepScratchBytes(const ir::Graph& g, ir::ValueId v, int threads) {
  if (g.node(v).op == ir::OpKind::ConvWeightGrad) return winogradWeightGradPlannedBytes(g, v, threads);
  if (const std::optional<PhaseWinogradShape> phases = phaseWinogradCandidate(g, v))
    return phaseWinogradScratchBytes(*phases, threads);
  return winogradScratchBytes(*winogradShapeOf(g, v), threads);
}

int64_t winogradPlannedBytes(const ir::Graph& g, ir::ValueId v) {
  if (g.node(v).op == ir::OpKind::ConvWeightGrad) return winogradWeightGradPlannedBytes(g, v, kWinogradPlannedWorkers);
  if (const std::optional<PhaseWinogradShape> phases = phaseWinogradCandidate(g, v))
    return phaseWinogradScratchBytes(*phases, kWinogradPlannedWorkers);
  const std::optional<WinogradShape> s = winogradCandidate(g, v);
  return s ? winogradScratchBytes(*s, kWinogradPlannedWorkers) : 0;
}

void runWinogradConv(const NativeCall& call) {
  const ConvEpilogue found = *convEpilogueOf(call.graph, call.value);
  const ir::Node& node = call.graph.node(call.value);
  WinogradEpilogue e;
  if (found.bias >= 0) {
    e.bias = static_cast<const float*>(call.operands[static_cast<size_t>(found.bias)]);
    e.singleBias = call.graph.type(node.operands[static_cast<size_t>(found.bias)]).numel() == 1;
  }
  if (found.residual >= 0) e.residual = static_cast<const float*>(call.operands[static_cast<size_t>(found.residual)]);
  e.relu = found.relu;
  auto* held = static_cast<float*>(call.held);
  // A step runs only what runsWinogradConv took: the kernel's shape tells its kind.
  if (std::optional<PhaseWinogradShape> phases = phaseWinogradShapeOf(call.graph, call.value, found)) {
    phases->xBlocked = call.isBlocked(node.operands[0]);
    phases->yBlocked = call.isBlocked(call.value);
    return phaseWinogradConvolution(*phases, static_cast<const float*>(call.operands[0]),
                                    static_cast<const float*>(call.operands[1]), e, static_cast<float*>(call.result),
                                    call.scratch, call.scratchBytes, held, call.heldReady);
  }
  winogradConvolution(*winogradShapeOf(call.graph, call.value, found), static_cast<const float*>(call.operands[0]),
                      static_cast<const float*>(call.operands[1]), e, static_cast<float*>(call.result), call.scratch,
                      call.scratchBytes, held, call.heldReady);
}

int64_t winogradHeldWeightBytes(const ir::Graph& g, ir::ValueId v) {
  if (const std::optional<PhaseWinogradShape> phases = phaseWinogradCandidate(g, v))
    return phaseWinogradHeldWeightBytes(*phases);
  return winogradHeldWeightBytes(*winogradShapeOf(g, v));
}

}  // namespace weft::cpu
