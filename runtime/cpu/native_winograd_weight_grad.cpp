// Native Winograd weight gradients, F(3x3, 4x4) as the transpose of the forward F(4x4, 3x3)
// (see winograd_kernels.h). With the 36 points xi of a tile t of the result plane:
//   V[xi][t][c] = (B^T d[t, c] B)[xi]        the input patches of a block of tiles;
//   P[xi][t][k] = (A e[t, k] A^T)[xi]        the result gradients of those tiles;
//   W[xi][k][c] += sum over t of P[xi][t][k] * V[xi][t][c]   36 matrix products over tiles;
//   dw[k, c] = G^T W[.][k][c] G               once all blocks are summed.
// The workers share each block: they transform its tiles, then sum the products of their
// share of the 36 points (each point's sums belong to one worker: no reduction afterwards).
// Where W is small (sumsPrivately), each worker instead transforms its own tiles of every
// block and sums all 36 points of them into its own copy of W, the copies added in worker
// order at the end: what a worker multiplies stays in its core's cache, and no barrier
// stands between blocks.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <optional>

#include "ir/attrs.h"
#include "ir/channels_last.h"
#include "runtime/cpu/blocked_layout.h"
#include "runtime/cpu/native_winograd.h"
#include "runtime/cpu/vector_state.h"
#include "runtime/cpu/winograd_kernels.h"

namespace weft::cpu {
namespace {

using namespace winograd;

/// The bytes of one block's transformed inputs and result gradients (the workers share it),
/// and the fewest tiles a block holds.
constexpr int64_t kBlockBytes = 1280 * 1024;
constexpr int64_t kFewestBlockTiles = 16;
/// The bytes of a block for shared sums (not sumsPrivately) where the arena has room for
/// them at the step (winogradWeightGradWantedBytes): each block costs shared sums two
/// barriers and a pass over W. On the AMD EPYC Zen 4 of stop 48 (fastest of alternating runs)
/// resnet's 64 -> 64 weight gradient took 0.948 ms instead of 1.030 (1.074 instead of 1.144
/// with its data in memory), ddpm's 96 -> 32 one 3-8% less; private sums gained nothing.
constexpr int64_t kLargeBlockBytes = 2560 * 1024;
/// The most bytes of W a worker sums into a copy of its own (sumsPrivately): on the AMD EPYC
/// Zen 4 of stop 44 (1 MiB of L2 a core) ddpm's three 32 -> 32 weight gradients at 28x28 (W:
/// 147 KiB) took 1.13-1.16 ms instead of 1.22-1.28, resnet's two at 32x32 0.12-0.17 ms less
/// than 1.79-1.86; its 64 -> 64 ones (W: 576 KiB) 0.06-0.11 ms more than 1.17-1.19.
constexpr int64_t kPrivateSumBytes = 256 * 1024;

/// The tiles of one block of `blockBytes` for shape `s` (at most all of them).
int64_t blockTilesFor(const WinogradShape& s, int64_t blockBytes) {
  const int64_t tiles = std::max(kFewestBlockTiles, blockBytes / (kPoints * 4 * (s.channels + s.outChannels)));
  return std::min(tiles, Tiling(s).tiles);
}

/// P[xi][row][k0..k0+8] = A e A^T for the result gradients of tile `tile`, channels k0..;
/// a point's rows lie pointStride floats apart.
__attribute__((target("avx2,fma"))) void transformGradient(const Tiling& tiling, const float* dy, int64_t tile,
                                                           int64_t k0, float* p, int64_t row, int64_t pointStride) {
  const WinogradShape& s = tiling.s;
  int64_t image, top, left;
  tiling.locate(tile, image, top, left);
  const float* base = dy + image * s.outHeight * s.outWidth * s.outChannels + k0;
  __m256 columns[4][6];  // A applied down each column of the tile
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
#pragma GCC unroll 6
  for (int a = 0; a < 6; ++a) {
    const __m256 e[4] = {columns[0][a], columns[1][a], columns[2][a], columns[3][a]};
    __m256 r[6];
    gradientTransform(e, r);
#pragma GCC unroll 6
    for (int b = 0; b < 6; ++b) _mm256_storeu_ps(p + (a * 6 + b) * pointStride + row * s.outChannels + k0, r[b]);
  }
}

/// Asks the cache for tile `tile`'s input patch and result gradients (prefetchPatch).
void prefetchTile(const Tiling& tiling, const float* x, const float* dy, int64_t tile) {
  const WinogradShape& s = tiling.s;
  prefetchPatch(tiling, tile, x, s.height, s.width, s.channels, 6, s.padTop, s.padLeft);
  prefetchPatch(tiling, tile, dy, s.outHeight, s.outWidth, s.outChannels, kTile, 0, 0);
}

/// dw[k, c0..c0+8] = G^T W[.][k][c] G.
__attribute__((target("avx2,fma"))) void transformKernel(const WinogradShape& s, const float* w, int64_t k, int64_t c0,
                                                         float* dw) {
  const int64_t pointStride = weightPointStride(s);
  const float* at = w + k * s.channels + c0;
  __m256 columns[6][3];  // G^T applied down each column of the points
  transformPointColumns<6, 3, kernelTransform>(at, pointStride, columns);
  alignas(32) float taps[9][8];
#pragma GCC unroll 3
  for (int a = 0; a < 3; ++a) {
    const __m256 row[6] = {columns[0][a], columns[1][a], columns[2][a], columns[3][a], columns[4][a], columns[5][a]};
    __m256 r[3];
    kernelTransform(row, r);
#pragma GCC unroll 3
    for (int b = 0; b < 3; ++b) _mm256_store_ps(taps[a * 3 + b], r[b]);
  }
  for (int64_t j = 0; j < 8; ++j)
#pragma GCC unroll 9
    for (int t = 0; t < 9; ++t) dw[(k * s.channels + c0 + j) * 9 + t] = taps[t][j];
}

/// The shape of conv_weight_grad node `v` (x, dy -> dw) as the kernel sees it, or nullopt
/// when it is none the kernel would take on an AVX2 CPU (whatever this CPU is).
std::optional<WinogradShape> weightGradCandidate(const ir::Graph& g, ir::ValueId v) {
  const ir::Node& node = g.node(v);
  if (node.op != ir::OpKind::ConvWeightGrad || !ir::isChannelsLast(node.op, node.attrs) ||
      node.type.dtype != ir::DType::f32 || g.type(node.operands[0]).dtype != ir::DType::f32 ||
      g.type(node.operands[1]).dtype != ir::DType::f32 || g.type(node.operands[0]).rank() != 4)
    return std::nullopt;
  ir::AttrReader attrs(node.attrs, node.op);
  const auto one = std::vector<int64_t>{1, 1};
  if (attrs.i("groups") != 1 || attrs.ints("kernel") != std::vector<int64_t>{3, 3} || attrs.ints("stride") != one ||
      attrs.ints("dilation") != one)
    return std::nullopt;
  const ir::Shape &x = g.type(node.operands[0]).shape, &dy = g.type(node.operands[1]).shape;
  const auto& padding = attrs.ints("padding");
  WinogradShape s{x[0], x[1], x[2], x[3], dy[1], dy[2], dy[3], padding[0], padding[1], false};
  if (s.outHeight < 8 || s.outWidth < 8 || s.channels < 16 || s.channels % 16 != 0 || s.outChannels < 16 ||
      s.outChannels % 16 != 0 || s.padTop > 2 || s.padLeft > 2 || s.outHeight != s.height + 2 * s.padTop - 2 ||
      s.outWidth != s.width + 2 * s.padLeft - 2)
    return std::nullopt;
  return s;
}

/// W[k][c] += the sum over `depth` tiles of P[t][k] * V[t][c], for one point: P's rows K
/// floats apart, V's C, W's C.
void addPointProducts(int64_t K, int64_t C, const float* p, const float* v, int64_t depth, float* w) {
  forEachRowGroup(K, [&](int64_t k0, int64_t rows) {
    for (int64_t c0 = 0, step = multiplyColumns(); c0 < C; c0 += step)
      multiplySomeRows<true>(rows, std::min(step, C - c0), p + k0, 1, K, v + c0, C, depth, w + k0 * C + c0, C);
  });
}

/// True when each worker sums W for its own tiles of every block into a copy of its own,
/// the copies added up at the end: no worker reads what another transformed, and no barrier
/// stands between blocks. For a W of at most kPrivateSumBytes, which stays in a core's L2
/// beside the worker's part of a block.
bool sumsPrivately(const WinogradShape& s) { return kPoints * weightPointStride(s) * 4 <= kPrivateSumBytes; }

/// The rows of a block's V and P for shape `s` in blocks of `blockTiles` on `workers` workers:
/// with private sums each worker has rows of its own, ceil(tiles / n) of them for n <=
/// `workers` workers.
int64_t blockRows(const WinogradShape& s, int64_t blockTiles, int workers) {
  return sumsPrivately(s) ? blockTiles + std::max(1, workers) - 1 : blockTiles;
}

/// The scratch floats for shape `s` in blocks of `blockBytes` on `workers` workers.
int64_t scratchFloats(const WinogradShape& s, int64_t blockBytes, int workers) {
  const int64_t copies = sumsPrivately(s) ? std::max(1, workers) : 1;
  const int64_t rows = blockRows(s, blockTilesFor(s, blockBytes), workers);
  return kPoints * (copies * weightPointStride(s) + tilePointStride(rows, s.channels) +
                    tilePointStride(rows, s.outChannels));
}

/// winogradWeightGradient with private sums (sumsPrivately) on the `workers` threads.
void weightGradientPrivately(const WinogradShape& s, const float* x, const float* dy, float* dw, float* scratch,
                             int workers) {
  const Tiling tiling(s);
  const int64_t C = s.channels, K = s.outChannels, copyFloats = kPoints * weightPointStride(s);
  const int64_t blockTiles = blockTilesFor(s, kBlockBytes), rowsEach = blockRows(s, blockTiles, workers);
  const int64_t vStride = tilePointStride(rowsEach, C), pStride = tilePointStride(rowsEach, K);
  float* v = scratch + workers * copyFloats;  // V: [36][rowsEach][C]
  float* p = v + kPoints * vStride;           // P: [36][rowsEach][K]
#pragma omp parallel num_threads(workers)
  {
    UpperHalvesClearedOnExit cleared;
    const int me = omp_get_thread_num(), n = omp_get_num_threads();
    float* mine = scratch + me * copyFloats;  // this worker's W: [36][K][C]
    std::fill_n(mine, copyFloats, 0.0f);
    // This worker's rows of V and P, the same in every block: another worker may still be
    // multiplying its own rows of the block before.
    const int64_t firstRow = me * ((blockTiles + n - 1) / n);
    for (int64_t first = 0; first < tiling.tiles; first += blockTiles) {
      const int64_t count = std::min(blockTiles, tiling.tiles - first), most = (count + n - 1) / n;
      const int64_t t0 = std::min(count, me * most), t1 = std::min(count, t0 + most);  // this worker's tiles
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t row = firstRow + t - t0;
        if (t + kPrefetchTiles < t1) prefetchTile(tiling, x, dy, first + t + kPrefetchTiles);
        transformInput(tiling, x, first + t, v, row, vStride);
        for (int64_t k0 = 0; k0 < K; k0 += 8) transformGradient(tiling, dy, first + t, k0, p, row, pStride);
      }
      for (int64_t point = 0; point < kPoints && t1 > t0; ++point)
        addPointProducts(K, C, p + point * pStride + firstRow * K, v + point * vStride + firstRow * C, t1 - t0,
                         mine + point * weightPointStride(s));
    }
#pragma omp barrier
#pragma omp for schedule(static)
    for (int64_t i = 0; i < copyFloats; ++i)  // the copies added in worker order into the first
      for (int w = 1; w < n; ++w) scratch[i] += scratch[w * copyFloats + i];
#pragma omp for schedule(static)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t c0 = 0; c0 < C; c0 += 8) transformKernel(s, scratch, k, c0, dw);
  }
}

}  // namespace

int64_t winogradWeightGradScratchBytes(const WinogradShape& s, int threads) {
  return scratchFloats(s, kBlockBytes, threads) * 4;
}

int64_t winogradWeightGradWantedBytes(const WinogradShape& s, int threads) {
  return scratchFloats(s, sumsPrivately(s) ? kBlockBytes : kLargeBlockBytes, threads) * 4;
}

void winogradWeightGradient(const WinogradShape& s, const float* x, const float* dy, float* dw, void* scratch,
                            int64_t scratchBytes) {
  int workers = std::max(1, omp_get_max_threads());
  const bool large = !sumsPrivately(s) && scratchFloats(s, kLargeBlockBytes, workers) * 4 <= scratchBytes;
  const int64_t blockBytes = large ? kLargeBlockBytes : kBlockBytes;
  while (workers > 1 && scratchFloats(s, blockBytes, workers) * 4 > scratchBytes) --workers;
  if (sumsPrivately(s)) return weightGradientPrivately(s, x, dy, dw, static_cast<float*>(scratch), workers);
  const Tiling tiling(s);
  const int64_t C = s.channels, K = s.outChannels;
  const int64_t blockTiles = blockTilesFor(s, blockBytes);
  float* sums = static_cast<float*>(scratch);               // W: [36][K][C]
  float* v = sums + kPoints * weightPointStride(s);         // V: [36][blockTiles][C]
  float* p = v + kPoints * tilePointStride(blockTiles, C);  // P: [36][blockTiles][K]
#pragma omp parallel num_threads(workers)
  {
    UpperHalvesClearedOnExit cleared;
#pragma omp for schedule(static)
    for (int64_t point = 0; point < kPoints; ++point) std::fill_n(sums + point * weightPointStride(s), K * C, 0.0f);
    for (int64_t first = 0; first < tiling.tiles; first += blockTiles) {
      const int64_t count = std::min(blockTiles, tiling.tiles - first);
#pragma omp for schedule(static)
      for (int64_t t = 0; t < count; ++t) {
        if (t + kPrefetchTiles < count) prefetchTile(tiling, x, dy, first + t + kPrefetchTiles);
        transformInput(tiling, x, first + t, v, t, tilePointStride(blockTiles, C));
        for (int64_t k0 = 0; k0 < K; k0 += 8) transformGradient(tiling, dy, first + t, k0, p, t, tilePointStride(blockTiles, K));
      }
#pragma omp for schedule(static)
      for (int64_t point = 0; point < kPoints; ++point)
        addPointProducts(K, C, p + point * tilePointStride(blockTiles, K), v + point * tilePointStride(blockTiles, C),
                         count, sums + point * weightPointStride(s));
    }
#pragma omp for schedule(static)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t c0 = 0; c0 < C; c0 += 8) transformKernel(s, sums, k, c0, dw);
  }
}

bool winogradWeightGradFits(const ir::Graph& g, ir::ValueId v) {
  if (const std::optional<PhaseWinogradShape> phases = phaseWinogradWeightGradCandidate(g, v))
    return phaseWinogradFits(*phases);
  const std::optional<WinogradShape> s = weightGradCandidate(g, v);
  return s && winogradFits(*s);
}

bool runsWinogradWeightGrad(const ir::Graph& g, ir::ValueId v) {
  if (const std::optional<PhaseWinogradShape> phases = phaseWinogradWeightGradCandidate(g, v))
    return phaseWinogradFits(*phases) && runsPhaseSteps(*phases, true);
  return winogradWeightGradFits(g, v) && weftWinogradPreferred();
}

namespace {

/// The scratch bytes of node `v`'s weight gradient step: a phase step's, or `ofShape` of its
/// 3x3 step's shape on `threads` workers; 0 for neither.
int64_t scratchBytesOf(const ir::Graph& g, ir::ValueId v, int threads,
                       int64_t (*ofShape)(const WinogradShape&, int)) {
  if (const std::optional<PhaseWinogradShape> phases = phaseWinogradWeightGradCandidate(g, v))
    return phaseWinogradWeightGradScratchBytes(*phases);
  const std::optional<WinogradShape> s = weightGradCandidate(g, v);
  return s ? ofShape(*s, threads) : 0;
}

}  // namespace

int64_t winogradWeightGradPlannedBytes(const ir::Graph& g, ir::ValueId v, int threads) {
  return scratchBytesOf(g, v, threads, &winogradWeightGradScratchBytes);
}

int64_t winogradWeightGradWantedBytes(const ir::Graph& g, ir::ValueId v, int threads) {
  return scratchBytesOf(g, v, threads, &winogradWeightGradWantedBytes);
}

void runWinogradWeightGrad(const NativeCall& call) {
  if (std::optional<PhaseWinogradShape> phases = phaseWinogradWeightGradCandidate(call.graph, call.value)) {
    const ir::Node& node = call.graph.node(call.value);
    phases->xBlocked = call.isBlocked(node.operands[0]);
    phases->yBlocked = call.isBlocked(node.operands[1]);
    return phaseWinogradWeightGradient(*phases, static_cast<const float*>(call.operands[0]),
                                       static_cast<const float*>(call.operands[1]), static_cast<float*>(call.result),
                                       call.scratch);
  }
  winogradWeightGradient(*weightGradCandidate(call.graph, call.value), static_cast<const float*>(call.operands[0]),
                         static_cast<const float*>(call.operands[1]), static_cast<float*>(call.result), call.scratch,
                         call.scratchBytes);
}

}  // namespace weft::cpu
