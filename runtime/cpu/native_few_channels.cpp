// Native convolutions to few channels (see native_few_channels.h). Per image: blocks of input
// positions (8 at a time for one register of taps, fewer for more) accumulate
// x[p, c] * w[c, 0:taps] over the channels in registers (the block's independent FMA chains
// hide their latency) and store each position's values in a row of the worker's scratch; then
// each result value is its start (the bias, or zero) plus the values whose taps reach it, in
// the order of positions and taps (sources). Adding each position's values into the result
// as they came (a scatter) chained read-modify-writes of neighbouring positions through
// memory: on the AMD EPYC dcgan's image layer took 0.46 ms, 38% of it in the scatter.
#include "runtime/cpu/native_few_channels.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "ir/attrs.h"
#include "ir/channels_last.h"
#include "runtime/cpu/host_isa.h"
#include "runtime/cpu/vector_state.h"

namespace weft::cpu {
namespace {

/// One image's geometry (2-D, channels-last).
struct Geometry {
  int64_t height, width, channels;           ///< x: [height, width, channels]
  int64_t outHeight, outWidth, outChannels;  ///< the result: [outHeight, outWidth, outChannels]
  int64_t kernelHeight, kernelWidth;
  int64_t stride[2], padding[2], dilation[2];
  bool transposed;  ///< conv_transpose (taps reach forward) rather than conv
  /// Where channel c of input position p lies in an image: p * positionStride + (c / 16) *
  /// blockStride + c % 16 (channels-last: channels and 16; channel-blocked: 16 and H * W * 16).
  int64_t positionStride = 0, blockStride = 16;
  /// The floats from one position's row of values to the next (a multiple of the vector width).
  int64_t valueStride = 0;
  /// Result value e (position * outChannels + o) sums values[sources[i]] for i in
  /// sourceStart[e] .. sourceStart[e + 1] (indices p * valueStride + o * kernelTaps + k).
  const int32_t* sourceStart = nullptr;
  const int32_t* sources = nullptr;
  int64_t taps() const { return outChannels * kernelHeight * kernelWidth; }

  /// The result index along spatial dim `d` that tap `k` of input index `i` reaches, or -1.
  int64_t reach(int d, int64_t i, int64_t k, int64_t extent) const {
    int64_t o = i * stride[d] - padding[d] + k * dilation[d];  // conv_transpose
    if (!transposed) {  // conv: the o with o * stride - padding + k * dilation == i
      const int64_t scaled = i + padding[d] - k * dilation[d];
      if (scaled < 0 || scaled % stride[d] != 0) return -1;
      o = scaled / stride[d];
    }
    return o >= 0 && o < extent ? o : -1;
  }
};

/// Every result value of one image: its start plus the values of the positions and taps that
/// reach it.
void gatherValues(const Geometry& g, const float* values, const float* start, float* y) {
  const int64_t results = g.outHeight * g.outWidth * g.outChannels;
  for (int64_t e = 0, o = 0; e < results; ++e, o = o + 1 == g.outChannels ? 0 : o + 1) {
    float sum = start[o];
    for (int32_t i = g.sourceStart[e]; i < g.sourceStart[e + 1]; ++i) sum += values[g.sources[i]];
    y[e] = sum;
  }
}

/// One image with `Tiles` registers of taps per position and `Block` positions at a time:
/// w is [channels, taps], `start` the value every result position starts from, per channel.
template <int Tiles, int Block>
__attribute__((target("avx512f"))) void image(const Geometry& g, const float* x, const float* w, const float* start,
                                              float* y, float* values) {
  const UpperHalvesClearedOnExit clearOnExit;  // SSE code runs after this kernel
  const int64_t taps = g.taps(), positions = g.height * g.width;
  __mmask16 masks[Tiles];
  for (int t = 0; t < Tiles; ++t) {
    const int64_t left = std::clamp<int64_t>(taps - 16 * t, 0, 16);
    masks[t] = static_cast<__mmask16>((1u << left) - 1);
  }
  for (int64_t p0 = 0; p0 < positions; p0 += Block) {
    const int64_t count = std::min<int64_t>(Block, positions - p0);
    // The block loops are unrolled so that the accumulators stay in registers.
    __m512 acc[Block][Tiles];
#pragma GCC unroll 8
    for (int b = 0; b < Block; ++b)
#pragma GCC unroll 4
      for (int t = 0; t < Tiles; ++t) acc[b][t] = _mm512_setzero_ps();
    const float* rows[Block];  // a block past the last position reads row 0 again (never stored)
#pragma GCC unroll 8
    for (int b = 0; b < Block; ++b) rows[b] = x + (p0 + (b < count ? b : 0)) * g.positionStride;
    for (int64_t c0 = 0; c0 < g.channels; c0 += 16) {  // 16 channels at a time: one block when blocked
      const int64_t base = (c0 / 16) * g.blockStride - c0;
      for (int64_t c = c0; c < std::min<int64_t>(c0 + 16, g.channels); ++c) {
        __m512 weights[Tiles];
#pragma GCC unroll 4
        for (int t = 0; t < Tiles; ++t) weights[t] = _mm512_maskz_loadu_ps(masks[t], w + c * taps + 16 * t);
#pragma GCC unroll 8
        for (int b = 0; b < Block; ++b) {
          const __m512 v = _mm512_set1_ps(rows[b][base + c]);
#pragma GCC unroll 4
          for (int t = 0; t < Tiles; ++t) acc[b][t] = _mm512_fmadd_ps(v, weights[t], acc[b][t]);
        }
      }
    }
#pragma GCC unroll 8
    for (int b = 0; b < Block; ++b)
#pragma GCC unroll 4
      for (int t = 0; t < Tiles; ++t)
        if (b < count) _mm512_storeu_ps(values + (p0 + b) * g.valueStride + 16 * t, acc[b][t]);
  }
  zeroUpperHalves();  // gatherValues is SSE code
  gatherValues(g, values, start, y);
}

/// `image` on AVX2: registers of eight taps. On the 2-core AMD EPYC dcgan's image layer
/// (conv_transpose 64 -> 1 channel, 4x4, stride 2, to 28x28) took 1.25 ms in oneDNN's gemm-based
/// kernel.
template <int Tiles, int Block>
__attribute__((target("avx2,fma"))) void imageAvx2(const Geometry& g, const float* x, const float* w,
                                                   const float* start, float* y, float* values) {
  const int64_t taps = g.taps(), positions = g.height * g.width;
  __m256i masks[Tiles];
  for (int t = 0; t < Tiles; ++t) {
    const auto left = static_cast<int>(std::clamp<int64_t>(taps - 8 * t, 0, 8));
    masks[t] = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  for (int64_t p0 = 0; p0 < positions; p0 += Block) {
    const int64_t count = std::min<int64_t>(Block, positions - p0);
    __m256 acc[Block][Tiles];
#pragma GCC unroll 8
    for (int b = 0; b < Block; ++b)
#pragma GCC unroll 8
      for (int t = 0; t < Tiles; ++t) acc[b][t] = _mm256_setzero_ps();
    const float* rows[Block];  // a block past the last position reads row 0 again (never stored)
#pragma GCC unroll 8
    for (int b = 0; b < Block; ++b) rows[b] = x + (p0 + (b < count ? b : 0)) * g.positionStride;
    for (int64_t c0 = 0; c0 < g.channels; c0 += 16) {  // as image: blocks of 16 when blocked
      const int64_t base = (c0 / 16) * g.blockStride - c0;
      for (int64_t c = c0; c < std::min<int64_t>(c0 + 16, g.channels); ++c) {
        __m256 weights[Tiles];
#pragma GCC unroll 8
        for (int t = 0; t < Tiles; ++t) weights[t] = _mm256_maskload_ps(w + c * taps + 8 * t, masks[t]);
#pragma GCC unroll 8
        for (int b = 0; b < Block; ++b) {
          const __m256 v = _mm256_set1_ps(rows[b][base + c]);
#pragma GCC unroll 8
          for (int t = 0; t < Tiles; ++t) acc[b][t] = _mm256_fmadd_ps(v, weights[t], acc[b][t]);
        }
      }
    }
#pragma GCC unroll 8
    for (int b = 0; b < Block; ++b)
#pragma GCC unroll 8
      for (int t = 0; t < Tiles; ++t)
        if (b < count) _mm256_storeu_ps(values + (p0 + b) * g.valueStride + 8 * t, acc[b][t]);
  }
  zeroUpperHalves();
  gatherValues(g, values, start, y);
}

/// The sum of x's eight lanes.
[[gnu::target("avx2")]] inline float laneSum(__m256 x) {
  const __m128 half = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
  const __m128 pairs = _mm_add_ps(half, _mm_movehl_ps(half, half));
  return _mm_cvtss_f32(_mm_add_ss(pairs, _mm_movehdup_ps(pairs)));
}

/// Result position (oh, ow) of a conv (not transposed) whose input has a multiple of 8
/// channels, by gathering: the sum, over the taps whose input position lies in the image, of
/// that position's channels times the tap's weights, eight channels at a time into four
/// accumulators per result channel (no row of values per input position, as `image` stores).
/// w is [O, KH, KW, C]; channels 8j.. of a position lie
/// at[j] floats into it (chunkOffsets).
template <int Outputs>
[[gnu::target("avx2,fma")]] void gatherPosition(const Geometry& g, const float* x, const float* w, const float* start,
                                                const int64_t* at, int64_t oh, int64_t ow, float* y) {
  const int64_t chunks = g.channels / 8, perOutput = g.kernelHeight * g.kernelWidth * g.channels;
  // Chunk j sums into accumulator j % 4; every loop over them unrolled (indexed at run time
  // they would live in memory).
  __m256 acc[Outputs][4];
#pragma GCC unroll 3
  for (int o = 0; o < Outputs; ++o)
#pragma GCC unroll 4
    for (int a = 0; a < 4; ++a) acc[o][a] = _mm256_setzero_ps();
  for (int64_t kh = 0; kh < g.kernelHeight; ++kh) {
    const int64_t ih = oh * g.stride[0] - g.padding[0] + kh * g.dilation[0];
    if (ih < 0 || ih >= g.height) continue;
    for (int64_t kw = 0; kw < g.kernelWidth; ++kw) {
      const int64_t iw = ow * g.stride[1] - g.padding[1] + kw * g.dilation[1];
      if (iw < 0 || iw >= g.width) continue;
      const float* position = x + (ih * g.width + iw) * g.positionStride;
      const float* taps = w + (kh * g.kernelWidth + kw) * g.channels;
      for (int64_t j = 0; j < chunks; j += 4)
#pragma GCC unroll 4
        for (int a = 0; a < 4; ++a) {
          if (j + a >= chunks) break;
          const __m256 v = _mm256_loadu_ps(position + at[j + a]);
#pragma GCC unroll 3
          for (int o = 0; o < Outputs; ++o)
            acc[o][a] = _mm256_fmadd_ps(v, _mm256_loadu_ps(taps + o * perOutput + 8 * (j + a)), acc[o][a]);
        }
    }
  }
#pragma GCC unroll 3
  for (int o = 0; o < Outputs; ++o)
    y[(oh * g.outWidth + ow) * g.outChannels + o] =
        start[o] + laneSum(_mm256_add_ps(_mm256_add_ps(acc[o][0], acc[o][1]), _mm256_add_ps(acc[o][2], acc[o][3])));
}

/// Where channels 8j.. of a position lie, for each j, past the position's first float.
std::vector<int64_t> chunkOffsets(const Geometry& g) {
  std::vector<int64_t> at(static_cast<size_t>(g.channels / 8));
  for (size_t j = 0; j < at.size(); ++j) at[j] = (8 * static_cast<int64_t>(j) / 16) * g.blockStride + 8 * static_cast<int64_t>(j) % 16;
  return at;
}

/// gatherImageOf for any multiple of 8 input channels: every position through gatherPosition.
template <int Outputs>
[[gnu::target("avx2,fma")]] void gatherImage(const Geometry& g, const float* x, const float* w, const float* start,
                                             float* y, float* /*values*/) {
  const std::vector<int64_t> at = chunkOffsets(g);
  for (int64_t oh = 0; oh < g.outHeight; ++oh)
    for (int64_t ow = 0; ow < g.outWidth; ++ow) gatherPosition<Outputs>(g, x, w, start, at.data(), oh, ow, y);
}

/// Result positions [ow, ow + Pixels) of row `oh` of a gathering conv whose every tap lies in
/// the image (interior positions), `Chunks` x 8 input channels: each tap's offset from the
/// window's corner in `tapAt`, the channels' offsets within a position in `at`. Pixels
/// side by side share each weight load and keep 4 x Pixels sums in flight.
template <int Outputs, int Chunks, int Pixels>
[[gnu::target("avx2,fma")]] inline void gatherInterior(const Geometry& g, const float* x, const float* w,
                                                       const float* start, const int64_t* tapAt, const int64_t* at,
                                                       int64_t oh, int64_t ow, float* y) {
  constexpr int kSums = Chunks < 4 ? Chunks : 4;
  const int64_t kernelTaps = g.kernelHeight * g.kernelWidth, perOutput = kernelTaps * g.channels;
  const float* corner[Pixels];
  for (int q = 0; q < Pixels; ++q)
    corner[q] = x + ((oh * g.stride[0] - g.padding[0]) * g.width + (ow + q) * g.stride[1] - g.padding[1]) * g.positionStride;
  __m256 acc[Outputs][Pixels][kSums];
#pragma GCC unroll 3
  for (int o = 0; o < Outputs; ++o)
#pragma GCC unroll 2
    for (int q = 0; q < Pixels; ++q)
#pragma GCC unroll 4
      for (int a = 0; a < kSums; ++a) acc[o][q][a] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kernelTaps; ++k) {
    const float* taps = w + k * g.channels;
#pragma GCC unroll 8
    for (int j = 0; j < Chunks; ++j) {
      __m256 weights[Outputs];
#pragma GCC unroll 3
      for (int o = 0; o < Outputs; ++o) weights[o] = _mm256_loadu_ps(taps + o * perOutput + 8 * j);
#pragma GCC unroll 2
      for (int q = 0; q < Pixels; ++q) {
        const __m256 v = _mm256_loadu_ps(corner[q] + tapAt[k] + at[j]);
#pragma GCC unroll 3
        for (int o = 0; o < Outputs; ++o) acc[o][q][j % kSums] = _mm256_fmadd_ps(v, weights[o], acc[o][q][j % kSums]);
      }
    }
  }
#pragma GCC unroll 3
  for (int o = 0; o < Outputs; ++o)
#pragma GCC unroll 2
    for (int q = 0; q < Pixels; ++q) {
      __m256 sum = acc[o][q][0];
#pragma GCC unroll 4
      for (int a = 1; a < kSums; ++a) sum = _mm256_add_ps(sum, acc[o][q][a]);
      y[(oh * g.outWidth + ow + q) * g.outChannels + o] = start[o] + laneSum(sum);
    }
}

/// gatherImage with `Chunks` x 8 input channels known: interior positions two at a time
/// (gatherInterior), the rest through gatherImage's checked taps.
template <int Outputs, int Chunks>
[[gnu::target("avx2,fma")]] void gatherImageOf(const Geometry& g, const float* x, const float* w, const float* start,
                                               float* y, float* /*values*/) {
  const std::vector<int64_t> offsets = chunkOffsets(g);  // Chunks of them
  const int64_t* at = offsets.data();
  std::vector<int64_t> tapAt(static_cast<size_t>(g.kernelHeight * g.kernelWidth));
  for (int64_t kh = 0; kh < g.kernelHeight; ++kh)
    for (int64_t kw = 0; kw < g.kernelWidth; ++kw)
      tapAt[static_cast<size_t>(kh * g.kernelWidth + kw)] = (kh * g.dilation[0] * g.width + kw * g.dilation[1]) * g.positionStride;
  // Interior: the window's first and last taps lie in the image along each axis.
  auto inside = [&](int64_t o, int d, int64_t extent, int64_t kernel) {
    const int64_t first = o * g.stride[d] - g.padding[d];
    return first >= 0 && first + (kernel - 1) * g.dilation[d] < extent;
  };
  for (int64_t oh = 0; oh < g.outHeight; ++oh) {
    const bool rowInside = inside(oh, 0, g.height, g.kernelHeight);
    for (int64_t ow = 0; ow < g.outWidth;) {
      if (rowInside && ow + 1 < g.outWidth && inside(ow, 1, g.width, g.kernelWidth) &&
          inside(ow + 1, 1, g.width, g.kernelWidth)) {
        gatherInterior<Outputs, Chunks, 2>(g, x, w, start, tapAt.data(), at, oh, ow, y);
        ow += 2;
      } else {
        gatherPosition<Outputs>(g, x, w, start, at, oh, ow, y);
        ++ow;
      }
    }
  }
}

/// An image kernel: x, w, start, the result image and the worker's scratch for rows of values.
using ImageKernel = void (*)(const Geometry&, const float*, const float*, const float*, float*, float*);

/// The gathering image kernel for `outputs` result channels (1 to kFewChannels) and
/// `channels` input channels (a multiple of 8): with interior positions in pairs up to 64
/// channels.
ImageKernel gatherKernel(int64_t outputs, int64_t channels) {
  auto pick = [&]<int Outputs>() -> ImageKernel {
    switch (channels / 8) {
      case 1: return &gatherImageOf<Outputs, 1>;
      case 2: return &gatherImageOf<Outputs, 2>;
      case 3: return &gatherImageOf<Outputs, 3>;
      case 4: return &gatherImageOf<Outputs, 4>;
      case 6: return &gatherImageOf<Outputs, 6>;
      case 8: return &gatherImageOf<Outputs, 8>;
      default: return &gatherImage<Outputs>;
    }
  };
  return outputs == 1 ? pick.template operator()<1>() : outputs == 2 ? pick.template operator()<2>() : pick.template operator()<3>();
}

/// The image kernel for `taps` values per position (at most kFewChannelTaps), and the floats
/// of the row of values it stores per position.
std::pair<ImageKernel, int64_t> imageKernel(int64_t taps) {
  if (hostHasAvx512()) {
    if (taps <= 16) return {&image<1, 8>, 16};
    if (taps <= 32) return {&image<2, 4>, 32};
    if (taps <= 48) return {&image<3, 2>, 48};
    return {&image<4, 2>, 64};
  }
  if (taps <= 8) return {&imageAvx2<1, 8>, 8};
  if (taps <= 16) return {&imageAvx2<2, 4>, 16};
  if (taps <= 32) return {&imageAvx2<4, 2>, 32};
  return {&imageAvx2<8, 1>, 64};
}

/// Each result value's sources (Geometry::sourceStart and sources, at g.valueStride floats a
/// position), position by position and tap by tap: the order the values are added in.
struct Sources {
  std::vector<int32_t> start, indices;
};

Sources resultSources(const Geometry& g) {
  const int64_t kernelTaps = g.kernelHeight * g.kernelWidth, results = g.outHeight * g.outWidth * g.outChannels;
  std::vector<int64_t> rows(static_cast<size_t>(g.height * g.kernelHeight));
  std::vector<int64_t> columns(static_cast<size_t>(g.width * g.kernelWidth));
  for (int64_t h = 0; h < g.height; ++h)
    for (int64_t kh = 0; kh < g.kernelHeight; ++kh)
      rows[static_cast<size_t>(h * g.kernelHeight + kh)] = g.reach(0, h, kh, g.outHeight);
  for (int64_t w = 0; w < g.width; ++w)
    for (int64_t kw = 0; kw < g.kernelWidth; ++kw)
      columns[static_cast<size_t>(w * g.kernelWidth + kw)] = g.reach(1, w, kw, g.outWidth);
  std::vector<int32_t> reached;  // per position and tap: the result position's first value, or -1
  for (int64_t h = 0; h < g.height; ++h)
    for (int64_t w = 0; w < g.width; ++w)
      for (int64_t kh = 0; kh < g.kernelHeight; ++kh)
        for (int64_t kw = 0; kw < g.kernelWidth; ++kw) {
          const int64_t oh = rows[static_cast<size_t>(h * g.kernelHeight + kh)];
          const int64_t ow = columns[static_cast<size_t>(w * g.kernelWidth + kw)];
          reached.push_back(oh < 0 || ow < 0 ? -1 : static_cast<int32_t>((oh * g.outWidth + ow) * g.outChannels));
        }
  Sources sources{std::vector<int32_t>(static_cast<size_t>(results + 1), 0), {}};
  std::vector<int32_t>& start = sources.start;
  for (int32_t first : reached)
    if (first >= 0)
      for (int64_t o = 0; o < g.outChannels; ++o) ++start[static_cast<size_t>(first + o + 1)];
  for (int64_t e = 0; e < results; ++e) start[static_cast<size_t>(e + 1)] += start[static_cast<size_t>(e)];
  sources.indices.resize(static_cast<size_t>(start.back()));
  std::vector<int32_t> filled(start.begin(), start.end() - 1);
  for (int64_t p = 0, at = 0; p < g.height * g.width; ++p)
    for (int64_t k = 0; k < kernelTaps; ++k, ++at) {
      const int32_t first = reached[static_cast<size_t>(at)];
      if (first < 0) continue;
      for (int64_t o = 0; o < g.outChannels; ++o)
        sources.indices[static_cast<size_t>(filled[static_cast<size_t>(first + o)]++)] =
            static_cast<int32_t>(p * g.valueStride + o * kernelTaps + k);
    }
  return sources;
}

/// Node `v` of `g` as a convolution with an optional bias, no residual and no ReLU, or nullopt.
std::optional<ConvEpilogue> convolutionOf(const ir::Graph& g, ir::ValueId v) {
  std::optional<ConvEpilogue> found = convEpilogueOf(g, v);
  return found && !found->relu && found->residual < 0 ? found : std::nullopt;
}

}  // namespace

bool runsFewChannelConv(const ir::Graph& g, ir::ValueId v) {
  const std::optional<ConvEpilogue> found = hostHasAvx512() || hostHasAvx2Fma() ? convolutionOf(g, v) : std::nullopt;
  if (!found) return false;
  const ir::Node& conv = *found->conv;
  const ir::Node& node = g.node(v);
  if (!ir::isChannelsLast(conv.op, conv.attrs) || node.type.dtype != ir::DType::f32 || node.type.rank() != 4)
    return false;
  const ir::Shape& w = g.type(node.operands[1]).shape;
  const int64_t outChannels = node.type.shape[3];
  return ir::AttrReader(conv.attrs, conv.op).i("groups") == 1 && w.size() == 4 && outChannels <= kFewChannels &&
         outChannels * w[2] * w[3] <= kFewChannelTaps && g.type(node.operands[0]).dtype == ir::DType::f32 &&
         g.type(node.operands[1]).dtype == ir::DType::f32;
}

void runFewChannelConv(const NativeCall& call) {
  const ConvEpilogue found = *convolutionOf(call.graph, call.value);
  const ir::Node& node = call.graph.node(call.value);
  ir::AttrReader attrs(found.conv->attrs, found.conv->op);
  const ir::Shape &x = call.graph.type(node.operands[0]).shape, &w = call.graph.type(node.operands[1]).shape;
  const ir::Shape& out = node.type.shape;
  const auto &stride = attrs.ints("stride"), &padding = attrs.ints("padding"), &dilation = attrs.ints("dilation");
  const bool transposed = found.conv->op == ir::OpKind::ConvTranspose;
  Geometry g{x[1],       x[2],       x[3],         out[1],      out[2],
             out[3],     w[2],       w[3],         {stride[0], stride[1]},
             {padding[0], padding[1]}, {dilation[0], dilation[1]}, transposed};
  const int64_t kernelTaps = g.kernelHeight * g.kernelWidth, taps = g.taps();
  const bool gathers = !transposed && g.channels % 8 == 0 && hostHasAvx2Fma();
  const auto [valueKernel, valueStride] = imageKernel(taps);
  g.valueStride = valueStride;
  const Sources sources = gathers ? Sources{} : resultSources(g);
  g.sourceStart = sources.start.data();
  g.sources = sources.indices.data();
  const ImageLayout xAt(call.isBlocked(node.operands[0]), g.height * g.width, g.channels);  // blocked: 16k channels
  g.positionStride = xAt.positionStride;
  g.blockStride = xAt.blockStride;
  const auto* in = static_cast<const float*>(call.operands[0]);
  const auto* weight = static_cast<const float*>(call.operands[1]);
  auto* result = static_cast<float*>(call.result);
  // The weight as [C, O * KH * KW]: conv_transpose's already is; conv's [O, C, KH, KW] is
  // reordered. A conv of 8k input channels gathers instead (gatherImage), its weight as [O,
  // KH, KW, C].
  std::vector<float> reordered;
  if (gathers) {
    reordered.resize(static_cast<size_t>(g.channels * taps));
    for (int64_t o = 0; o < g.outChannels; ++o)
      for (int64_t c = 0; c < g.channels; ++c)
        for (int64_t k = 0; k < kernelTaps; ++k)
          reordered[static_cast<size_t>((o * kernelTaps + k) * g.channels + c)] = weight[(o * g.channels + c) * kernelTaps + k];
    weight = reordered.data();
  } else if (!transposed) {
    reordered.resize(static_cast<size_t>(g.channels * taps));
    for (int64_t o = 0; o < g.outChannels; ++o)
      for (int64_t c = 0; c < g.channels; ++c)
        for (int64_t k = 0; k < kernelTaps; ++k)
          reordered[static_cast<size_t>(c * taps + o * kernelTaps + k)] = weight[(o * g.channels + c) * kernelTaps + k];
    weight = reordered.data();
  }
  float start[kFewChannels] = {0, 0, 0};
  if (found.bias >= 0) {
    const auto* bias = static_cast<const float*>(call.operands[static_cast<size_t>(found.bias)]);
    const bool single = call.graph.type(node.operands[static_cast<size_t>(found.bias)]).numel() == 1;
    for (int64_t o = 0; o < g.outChannels; ++o) start[o] = bias[single ? 0 : o];
  }
  const int64_t inSize = g.height * g.width * g.channels, outSize = g.outHeight * g.outWidth * g.outChannels;
  const ImageKernel kernel = gathers ? gatherKernel(g.outChannels, g.channels) : valueKernel;
  const bool parallel = x[0] * inSize * taps >= (int64_t{1} << 18);
  const int64_t valueFloats = gathers ? 0 : g.height * g.width * valueStride;  // one worker's rows of values
  std::vector<float> values(static_cast<size_t>(valueFloats * (parallel ? omp_get_max_threads() : 1)));
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t n = 0; n < x[0]; ++n)
    kernel(g, in + n * inSize, weight, start, result + n * outSize, values.data() + omp_get_thread_num() * valueFloats);
}

}  // namespace weft::cpu
