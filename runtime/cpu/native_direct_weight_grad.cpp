// The native direct weight gradient (see native_direct_weight_grad.h). Per image, kernel tap,
// block of up to 12 of x's channels and block of 32 of dy's: a register tile of 12 x 2
// vectors sums x[tap position, c] dy[p, o] over the dy positions whose tap lies inside x
// (a rectangle of them: no test in the inner loop), per position two loads of dy, 12
// broadcasts of x, 24 FMAs. A worker's sums [tap][C][O] stay in its scratch across its images.
// x and dy may be stored channel-blocked (nChw16c, where oneDNN's convolutions around them
// compute in that layout): a block of 16 channels is then a vector of dy, and half a block a
// tile of x.
#include "runtime/cpu/native_direct_weight_grad.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "ir/attrs.h"
#include "ir/channels_last.h"
#include "runtime/cpu/host_isa.h"
#include "runtime/cpu/prefetch.h"
#include "runtime/cpu/vector_state.h"

namespace weft::cpu {
namespace {

constexpr int kRows = 12;      ///< x's channels in a tile
constexpr int64_t kLanes = 16;  ///< floats in a vector: dy's channels come in these
/// The widest kernel taken: 3x3 is what was measured (4x4 stride-2 ones run on weft's phase
/// steps, at ~270 GFLOP/s counted directly, where their planes fit them).
constexpr int64_t kMaxKernel = 3;

/// One conv_weight_grad's geometry: x [images, height, width, channels], dy [images,
/// outHeight, outWidth, outChannels], the kernel, strides, paddings and dilations.
struct Geometry {
  int64_t images, height, width, channels, outHeight, outWidth, outChannels;
  int64_t kernel[2], stride[2], padding[2], dilation[2];

  int64_t taps() const { return kernel[0] * kernel[1]; }
  /// Floats of one worker's sums: [tap][channels][outChannels].
  int64_t sums() const { return taps() * channels * outChannels; }
};

Geometry geometryOf(const ir::Graph& g, ir::ValueId v) {
  const ir::Node& node = g.node(v);
  ir::AttrReader attrs(node.attrs, node.op);
  const ir::Shape &x = g.type(node.operands[0]).shape, &dy = g.type(node.operands[1]).shape;
  Geometry geo{x[0], x[1], x[2], x[3], dy[1], dy[2], dy[3], {}, {}, {}, {}};
  for (size_t d = 0; d < 2; ++d) {
    geo.kernel[d] = attrs.ints("kernel")[d];
    geo.stride[d] = attrs.ints("stride")[d];
    geo.padding[d] = attrs.ints("padding")[d];
    geo.dilation[d] = attrs.ints("dilation")[d];
  }
  return geo;
}

/// The dy positions [first, last) along one dim whose tap `k` lies inside x's `extent`.
void validRange(int64_t outExtent, int64_t extent, int64_t k, int64_t stride, int64_t padding, int64_t dilation,
                int64_t& first, int64_t& last) {
  const int64_t offset = k * dilation - padding;  // x index of position o: o * stride + offset
  first = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  last = extent - offset <= 0 ? 0 : std::min(outExtent, (extent - 1 - offset) / stride + 1);
  last = std::max(first, last);
}

/// sums[r][16 v + lane] (rows `sumRow` apart) += x[i, j, r] dy[i, j, 16 v + lane] over i in
/// [0, rows) and j in [0, columns), x's position (i, j) at i * xRow + j * xStep (its Rows
/// channels side by side), dy's at i * dyRow + j * dyStep (its vectors `dyVector` apart).
template <int Rows, int Vectors>
[[gnu::target("avx512f")]] void tileSums(const float* x, int64_t xRow, int64_t xStep, const float* dy, int64_t dyRow,
                                         int64_t dyStep, int64_t dyVector, int64_t rows, int64_t columns, float* sums,
                                         int64_t sumRow) {
  __m512 acc[Rows][Vectors];
#pragma GCC unroll 12
  for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < Vectors; ++v) acc[r][v] = _mm512_loadu_ps(sums + r * sumRow + kLanes * v);
  for (int64_t i = 0; i < rows; ++i) {
    const float* in = x + i * xRow;
    const float* grad = dy + i * dyRow;
    for (int64_t j = 0; j < columns; ++j, in += xStep, grad += dyStep) {
      __m512 d[Vectors];
#pragma GCC unroll 2
      for (int v = 0; v < Vectors; ++v) d[v] = _mm512_loadu_ps(grad + dyVector * v);
#pragma GCC unroll 12
      for (int r = 0; r < Rows; ++r) {
        const __m512 s = _mm512_set1_ps(in[r]);
#pragma GCC unroll 2
        for (int v = 0; v < Vectors; ++v) acc[r][v] = _mm512_fmadd_ps(s, d[v], acc[r][v]);
      }
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < Vectors; ++v) _mm512_storeu_ps(sums + r * sumRow + kLanes * v, acc[r][v]);
}

using TileFn = void (*)(const float*, int64_t, int64_t, const float*, int64_t, int64_t, int64_t, int64_t, int64_t,
                        float*, int64_t);

/// The tile of `rows` (1 to kRows) of x's channels by `vectors` (1 or 2) of dy's.
TileFn tileFor(int rows, int vectors) {
  static constexpr TileFn kOne[] = {&tileSums<1, 1>, &tileSums<2, 1>, &tileSums<3, 1>,  &tileSums<4, 1>,
                                    &tileSums<5, 1>, &tileSums<6, 1>, &tileSums<7, 1>,  &tileSums<8, 1>,
                                    &tileSums<9, 1>, &tileSums<10, 1>, &tileSums<11, 1>, &tileSums<12, 1>};
  static constexpr TileFn kTwo[] = {&tileSums<1, 2>, &tileSums<2, 2>, &tileSums<3, 2>,  &tileSums<4, 2>,
                                    &tileSums<5, 2>, &tileSums<6, 2>, &tileSums<7, 2>,  &tileSums<8, 2>,
                                    &tileSums<9, 2>, &tileSums<10, 2>, &tileSums<11, 2>, &tileSums<12, 2>};
  return (vectors == 2 ? kTwo : kOne)[rows - 1];
}

/// Where one image's x and dy lie (ImageLayout of each: channels-last or channel-blocked).
struct Layouts {
  ImageLayout x, dy;
};

/// The next image's x and dy, asked of the L2 cache a share at a time while the current
/// image's tiles run: a training step's x was written by its forward pass long before. Of
/// an image larger than kMostFloats, the first kMostFloats (as much of x and of dy), so that
/// the next image does not push the current one out of the cache.
class NextImage {
 public:
  static constexpr int64_t kMostFloats = 64 * 1024;  ///< 256 KiB: a quarter of the AMD EPYC's L2

  NextImage(const float* x, int64_t xFloats, const float* dy, int64_t dyFloats) : x_(x), dy_(dy) {
    if (const int64_t total = xFloats + dyFloats; total > kMostFloats) {
      xFloats = xFloats * kMostFloats / total;
      dyFloats = dyFloats * kMostFloats / total;
    }
    xEnd_ = x ? x + xFloats : x;
    dyEnd_ = dy ? dy + dyFloats : dy;
  }
  /// Lines of 16 floats left to ask for.
  int64_t lines() const { return (xEnd_ - x_ + dyEnd_ - dy_ + 15) / 16; }
  /// Asks for the next `count` lines (x's first).
  void ask(int64_t count) {
    for (; count > 0 && x_ < xEnd_; --count, x_ += 16) prefetchLine(x_);
    for (; count > 0 && dy_ < dyEnd_; --count, dy_ += 16) prefetchLine(dy_);
  }

 private:
  const float *x_, *xEnd_ = nullptr, *dy_, *dyEnd_ = nullptr;
};

/// One image (x at `x`, dy at `dy`) added into `sums` [tap][C][O], asking for `next` a share
/// after each tile. x whose blocks of 16 channels lie apart (channel-blocked) is read in tiles
/// of 8 channels, two to a block.
void addImage(const Geometry& g, const Layouts& at, const float* x, const float* dy, float* sums, NextImage next) {
  UpperHalvesClearedOnExit clearUpperHalves;
  const int64_t c = g.channels, o = g.outChannels;
  const int64_t tileRows = at.x.blockStride == kLanes ? kRows : kLanes / 2;
  const int64_t tiles = g.taps() * ((c + tileRows - 1) / tileRows) * ((o + 2 * kLanes - 1) / (2 * kLanes));
  const int64_t share = (next.lines() + tiles - 1) / tiles;
  // Along a row of dy: the positions `stride` apart in x; along a column: rows of x.
  const int64_t xStep = g.stride[1] * at.x.positionStride, xRow = g.stride[0] * g.width * at.x.positionStride;
  const int64_t dyStep = at.dy.positionStride, dyRow = g.outWidth * at.dy.positionStride;
  for (int64_t kh = 0; kh < g.kernel[0]; ++kh) {
    int64_t oh0 = 0, oh1 = 0;
    validRange(g.outHeight, g.height, kh, g.stride[0], g.padding[0], g.dilation[0], oh0, oh1);
    for (int64_t kw = 0; kw < g.kernel[1]; ++kw) {
      int64_t ow0 = 0, ow1 = 0;
      validRange(g.outWidth, g.width, kw, g.stride[1], g.padding[1], g.dilation[1], ow0, ow1);
      if (oh0 == oh1 || ow0 == ow1) continue;
      const int64_t ih = oh0 * g.stride[0] + kh * g.dilation[0] - g.padding[0];
      const int64_t iw = ow0 * g.stride[1] + kw * g.dilation[1] - g.padding[1];
      const float* in = x + (ih * g.width + iw) * at.x.positionStride;
      const float* grad = dy + (oh0 * g.outWidth + ow0) * at.dy.positionStride;
      float* tap = sums + (kh * g.kernel[1] + kw) * c * o;
      for (int64_t c0 = 0; c0 < c; c0 += tileRows) {
        const int rows = static_cast<int>(std::min<int64_t>(tileRows, c - c0));
        const float* channels = in + c0 / kLanes * at.x.blockStride + c0 % kLanes;
        for (int64_t o0 = 0; o0 < o; o0 += 2 * kLanes) {
          tileFor(rows, o - o0 >= 2 * kLanes ? 2 : 1)(channels, xRow, xStep, grad + o0 / kLanes * at.dy.blockStride,
                                                      dyRow, dyStep, at.dy.blockStride, oh1 - oh0, ow1 - ow0,
                                                      tap + c0 * o + o0, o);
          next.ask(share);
        }
      }
    }
  }
}

}  // namespace

bool runsDirectWeightGrad(const ir::Graph& g, ir::ValueId v) {
  const ir::Node& node = g.node(v);
  if (!hostHasAvx512() || node.op != ir::OpKind::ConvWeightGrad || node.type.dtype != ir::DType::f32 ||
      !ir::isChannelsLast(node.op, node.attrs) || node.operands.size() != 2)
    return false;
  const ir::TensorType &x = g.type(node.operands[0]), &dy = g.type(node.operands[1]);
  ir::AttrReader attrs(node.attrs, node.op);
  if (x.dtype != ir::DType::f32 || dy.dtype != ir::DType::f32 || x.rank() != 4 || dy.rank() != 4 ||
      attrs.i("groups") != 1 || attrs.ints("kernel").size() != 2)
    return false;
  const auto &stride = attrs.ints("stride"), &kernel = attrs.ints("kernel");
  return (stride[0] > 1 || stride[1] > 1) && kernel[0] <= kMaxKernel && kernel[1] <= kMaxKernel &&
         x.shape[3] >= 8 && dy.shape[3] % kLanes == 0;
}

int64_t directWeightGradScratchBytes(const ir::Graph& g, ir::ValueId v, int threads) {
  const Geometry geo = geometryOf(g, v);
  const int64_t workers = std::clamp<int64_t>(std::min<int64_t>(threads, geo.images), 1, 1024);
  return workers * geo.sums() * static_cast<int64_t>(sizeof(float));
}

void runDirectWeightGrad(const NativeCall& call) {
  const Geometry g = geometryOf(call.graph, call.value);
  const int64_t sums = g.sums(), bytes = sums * static_cast<int64_t>(sizeof(float));
  const int64_t room = call.scratch ? call.scratchBytes / bytes : 0;
  const int parts = static_cast<int>(std::clamp<int64_t>(std::min<int64_t>(room, omp_get_max_threads()), 1, g.images));
  std::vector<float> own;  // only without room in the scratch for one worker's sums
  auto* partial = static_cast<float*>(call.scratch);
  if (room < 1) {
    own.resize(static_cast<size_t>(sums));
    partial = own.data();
  }
  const auto* x = static_cast<const float*>(call.operands[0]);
  const auto* dy = static_cast<const float*>(call.operands[1]);
  const ir::Node& node = call.graph.node(call.value);
  const Layouts at{ImageLayout(call.isBlocked(node.operands[0]), g.height * g.width, g.channels),
                   ImageLayout(call.isBlocked(node.operands[1]), g.outHeight * g.outWidth, g.outChannels)};
  const int64_t xImage = g.height * g.width * g.channels, dyImage = g.outHeight * g.outWidth * g.outChannels;
#pragma omp parallel for schedule(static, 1) num_threads(parts) if (parts > 1)
  for (int part = 0; part < parts; ++part) {
    float* mine = partial + part * sums;
    std::memset(mine, 0, static_cast<size_t>(bytes));
    const int64_t last = g.images * (part + 1) / parts;
    for (int64_t n = g.images * part / parts; n < last; ++n) {
      const bool more = n + 1 < last;  // the next image is this worker's too
      const NextImage next(more ? x + (n + 1) * xImage : nullptr, xImage, more ? dy + (n + 1) * dyImage : nullptr,
                           dyImage);
      addImage(g, at, x + n * xImage, dy + n * dyImage, mine, next);
    }
  }
  // w [O, C, KH, KW] from the workers' sums [tap][C][O], added in part order.
  auto* w = static_cast<float*>(call.result);
  const int64_t taps = g.taps();
  for (int64_t o = 0; o < g.outChannels; ++o)
    for (int64_t c = 0; c < g.channels; ++c)
      for (int64_t k = 0; k < taps; ++k) {
        const int64_t at = (k * g.channels + c) * g.outChannels + o;
        float sum = partial[at];
        for (int part = 1; part < parts; ++part) sum += partial[part * sums + at];
        w[(o * g.channels + c) * taps + k] = sum;
      }
}

}  // namespace weft::cpu
