// The native max pool (see native_max_pool.h). Every kernel visits a window's taps in order
// under the rule of window_max.h. Taps in the padding are skipped: starting from -inf, that
// is what reading -inf there gives.
#include "runtime/cpu/native_max_pool.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "ir/attrs.h"
#include "ir/channels_last.h"
#include "runtime/cpu/vector_state.h"
#include "runtime/cpu/window_max.h"

namespace weft::cpu {
namespace {

/// A pool over images of height x width positions (1-D pools: height 1).
struct Pool2d {
  int64_t height, width, outHeight, outWidth;
  int64_t windowHeight, windowWidth, strideHeight, strideWidth, padTop, padLeft;

  /// The input rows [first, last) of output row oh's windows inside the image.
  std::pair<int64_t, int64_t> rows(int64_t oh) const {
    const int64_t top = oh * strideHeight - padTop;
    return {std::max<int64_t>(top, 0), std::min(top + windowHeight, height)};
  }
  /// The input columns [first, last) of output column ow's windows inside the image.
  std::pair<int64_t, int64_t> columns(int64_t ow) const {
    const int64_t left = ow * strideWidth - padLeft;
    return {std::max<int64_t>(left, 0), std::min(left + windowWidth, width)};
  }
};

/// Channels [first, channels) of output row `oh` of one image of `channels` channels at each
/// position, read through `in` and written through `out`.
void maxPoolChannels(const Pool2d& p, int64_t first, int64_t channels, int64_t oh, const float* x, ImageLayout in,
                     float* y, ImageLayout out) {
  for (int64_t ow = 0; ow < p.outWidth; ++ow) {
    const auto [top, bottom] = p.rows(oh);
    const auto [left, right] = p.columns(ow);
    for (int64_t c = first; c < channels; ++c) {
      float best = -INFINITY;
      for (int64_t ih = top; ih < bottom; ++ih)
        for (int64_t iw = left; iw < right; ++iw) {
          const float v = x[in.at(ih * p.width + iw, c)];
          best = takesWindow(best, v) ? v : best;
        }
      y[out.at(oh * p.outWidth + ow, c)] = best;
    }
  }
}

/// Output row `oh` of one image of `channels` channels at each position, read through `in`
/// and written through `out` (channels-first planes: one channel).
void maxPoolRow(const Pool2d& p, int64_t channels, int64_t oh, const float* x, ImageLayout in, float* y,
                ImageLayout out) {
  maxPoolChannels(p, 0, channels, oh, x, in, y, out);
}

/// maxPoolRow on AVX-512: sixteen channels of a position at a time (masked at the end).
__attribute__((target("avx512f"))) void maxPoolRowAvx512(const Pool2d& p, int64_t channels, int64_t oh,
                                                          const float* x, ImageLayout in, float* y, ImageLayout out) {
  const UpperHalvesClearedOnExit clearOnExit;  // SSE code runs after this kernel
  for (int64_t ow = 0; ow < p.outWidth; ++ow) {
    const auto [top, bottom] = p.rows(oh);
    const auto [left, right] = p.columns(ow);
    for (int64_t c = 0; c < channels; c += 16) {
      const __mmask16 lanes = firstLanes(channels - c);  // the others are loaded as 0, never stored
      __m512 best = _mm512_set1_ps(-INFINITY);
      for (int64_t ih = top; ih < bottom; ++ih)
        for (int64_t iw = left; iw < right; ++iw)
          best = windowMax16(best, _mm512_maskz_loadu_ps(lanes, x + in.at(ih * p.width + iw, c)));
      _mm512_mask_storeu_ps(y + out.at(oh * p.outWidth + ow, c), lanes, best);
    }
  }
}

/// maxPoolRow on AVX2: eight channels of a position at a time, the last partial run scalar.
/// The window's maximum as windowMax16 takes it (vmaxps keeps `best` on ties and NaNs, a NaN
/// tap is blended in). On the 2-core AMD EPYC lenet's first pool took 1.08 ms in the scalar
/// loop.
__attribute__((target("avx2"))) void maxPoolRowAvx2(const Pool2d& p, int64_t channels, int64_t oh, const float* x,
                                                      ImageLayout in, float* y, ImageLayout out) {
  const int64_t vectorChannels = channels / 8 * 8;
  for (int64_t ow = 0; ow < p.outWidth; ++ow) {
    const auto [top, bottom] = p.rows(oh);
    const auto [left, right] = p.columns(ow);
    for (int64_t c = 0; c < vectorChannels; c += 8) {
      __m256 best = _mm256_set1_ps(-INFINITY);
      for (int64_t ih = top; ih < bottom; ++ih)
        for (int64_t iw = left; iw < right; ++iw) {
          const __m256 v = _mm256_loadu_ps(x + in.at(ih * p.width + iw, c));
          best = _mm256_blendv_ps(_mm256_max_ps(v, best), v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        }
      _mm256_storeu_ps(y + out.at(oh * p.outWidth + ow, c), best);
    }
  }
  maxPoolChannels(p, vectorChannels, channels, oh, x, in, y, out);
}

/// One channels-first plane on AVX-512: sixteen output columns at a time, each tap's sixteen
/// inputs gathered (strides and padding vary by lane only in the column).
__attribute__((target("avx512f"))) void maxPoolPlaneAvx512(const Pool2d& p, const float* x, float* y) {
  const UpperHalvesClearedOnExit clearOnExit;  // SSE code runs after this kernel
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i width = _mm512_set1_epi32(static_cast<int>(p.width));
  for (int64_t oh = 0; oh < p.outHeight; ++oh) {
    const auto [top, bottom] = p.rows(oh);
    for (int64_t ow = 0; ow < p.outWidth; ow += 16) {
      const __mmask16 lanes = firstLanes(p.outWidth - ow);
      // The window's first column per lane: (ow + lane) * stride - padding.
      const __m512i left = _mm512_sub_epi32(
          _mm512_mullo_epi32(_mm512_add_epi32(lane, _mm512_set1_epi32(static_cast<int>(ow))),
                             _mm512_set1_epi32(static_cast<int>(p.strideWidth))),
          _mm512_set1_epi32(static_cast<int>(p.padLeft)));
      __m512 best = _mm512_set1_ps(-INFINITY);
      for (int64_t ih = top; ih < bottom; ++ih)
        for (int64_t kw = 0; kw < p.windowWidth; ++kw) {
          const __m512i column = _mm512_add_epi32(left, _mm512_set1_epi32(static_cast<int>(kw)));
          const __mmask16 inside = _mm512_mask_cmpge_epi32_mask(lanes, column, _mm512_setzero_si512()) &
                                   _mm512_cmplt_epi32_mask(column, width);
          // Lanes outside the image or the row gather `best` itself, which leaves them as they are.
          best = windowMax16(best, _mm512_mask_i32gather_ps(best, inside, column, x + ih * p.width, 4));
        }
      _mm512_mask_storeu_ps(y + oh * p.outWidth + ow, lanes, best);
    }
  }
}

}  // namespace

bool runsNativeMaxPool(const ir::Graph& g, ir::ValueId v) {
  const ir::Node& node = g.node(v);
  return node.op == ir::OpKind::MaxPool && node.type.dtype == ir::DType::f32 &&
         (node.type.rank() == 3 || node.type.rank() == 4);
}

void runMaxPool(const NativeCall& call) {
  const ir::Node& node = call.graph.node(call.value);
  ir::AttrReader attrs(node.attrs, node.op);
  const bool channelsLast = ir::isChannelsLast(node.op, node.attrs);
  // Both shapes as [N, C, H, W] (1-D pools: H 1), and the window's geometry likewise.
  auto asImages = [&](ir::Shape s) {
    if (channelsLast) s = ir::toChannelsFirst(s);
    if (s.size() == 3) s.insert(s.begin() + 2, 1);
    return s;
  };
  auto asPair = [](const std::vector<int64_t>& v, int64_t one) {
    return v.size() == 1 ? std::pair{one, v[0]} : std::pair{v[0], v[1]};
  };
  const ir::Shape x = asImages(call.graph.type(node.operands[0]).shape), y = asImages(node.type.shape);
  const auto [windowHeight, windowWidth] = asPair(attrs.ints("window"), 1);
  const auto [strideHeight, strideWidth] = asPair(attrs.ints("stride"), 1);
  const auto [padTop, padLeft] = asPair(attrs.ints("padding"), 0);
  const Pool2d p{x[2], x[3], y[2], y[3], windowHeight, windowWidth, strideHeight, strideWidth, padTop, padLeft};
  const int64_t channels = x[1], positions = p.height * p.width, outPositions = p.outHeight * p.outWidth;
  const auto* in = static_cast<const float*>(call.operands[0]);
  auto* out = static_cast<float*>(call.result);
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  const bool large = x[0] * channels * positions >= (int64_t{1} << 16);
  if (!channelsLast) {
    const ImageLayout plane(false, positions, 1), outPlane(false, outPositions, 1);
#pragma omp parallel for schedule(static) if (large)
    for (int64_t i = 0; i < x[0] * channels; ++i) {
      if (avx512) maxPoolPlaneAvx512(p, in + i * positions, out + i * outPositions);
      else
        for (int64_t oh = 0; oh < p.outHeight; ++oh)
          maxPoolRow(p, 1, oh, in + i * positions, plane, out + i * outPositions, outPlane);
    }
    return;
  }
  const ImageLayout inLayout(call.isBlocked(node.operands[0]), positions, channels);
  const ImageLayout outLayout(call.isBlocked(call.value), outPositions, channels);
  static const bool avx2 = __builtin_cpu_supports("avx2");
  auto row = avx512 ? &maxPoolRowAvx512 : avx2 ? &maxPoolRowAvx2 : &maxPoolRow;
#pragma omp parallel for schedule(static) if (large)  // by output rows: a batch of one splits too
  for (int64_t r = 0; r < x[0] * p.outHeight; ++r) {
    const int64_t n = r / p.outHeight;
    row(p, channels, r % p.outHeight, in + n * positions * channels, inLayout, out + n * outPositions * channels,
        outLayout);
  }
}

}  // namespace weft::cpu
