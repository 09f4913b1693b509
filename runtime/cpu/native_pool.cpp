// The native max_pool_grad over 2-D windows (see native_pool.h).
#include "runtime/cpu/native_pool.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "ir/attrs.h"
#include "runtime/cpu/vector_state.h"
#include "runtime/cpu/window_max.h"

namespace weft::cpu {
namespace {

/// The geometry of a 2-D max_pool_grad over row-major f32 planes.
struct PoolPlanes {
  int64_t height, width, outHeight, outWidth;
  std::vector<int64_t> window, stride, padding;
};

/// The gradient of the positions of a channels-last image [H, W, C] that no window of tiling
/// windows covers (the last rows and columns of odd extents): zero.
void zeroUncovered(const PoolPlanes& p, int64_t channels, float* dxs) {
  for (int64_t h = 0; h < p.height; ++h)
    for (int64_t w = 0; w < p.width; ++w)
      if (h >= p.outHeight * p.window[0] || w >= p.outWidth * p.window[1])
        std::fill(dxs + (h * p.width + w) * channels, dxs + (h * p.width + w + 1) * channels, 0.0f);
}

/// Each tap's offset from its window's corner in a channels-last image, in window order.
std::vector<int64_t> tapOffsets(const PoolPlanes& p, int64_t channels) {
  std::vector<int64_t> offset;
  for (int64_t kh = 0; kh < p.window[0]; ++kh)
    for (int64_t kw = 0; kw < p.window[1]; ++kw) offset.push_back((kh * p.width + kw) * channels);
  return offset;
}

/// maxPoolGradPlane for 2x2 windows with stride 2 and no padding on AVX-512: sixteen windows
/// of an output row at a time (masked at the row's end), compared in window order without
/// branches (the data's ties would mispredict them); every position is written once.
__attribute__((target("avx512f"))) void tiled2x2MaxPoolGradPlaneAvx512(const PoolPlanes& p, const float* xs,
                                                                        const float* dys, float* dxs) {
  const UpperHalvesClearedOnExit clearOnExit;  // SSE code runs after this kernel
  const int64_t width = p.width, outWidth = p.outWidth;
  // Lane i of the even (odd) gather takes element 2i (2i+1) of the 32 in two registers;
  // the interleaves put the two windows' columns back side by side.
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512i low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i high = _mm512_add_epi32(low, _mm512_set1_epi32(8));
  for (int64_t oh = 0; oh < p.outHeight; ++oh) {
    const float *top = xs + 2 * oh * width, *bottom = top + width;
    float *outTop = dxs + 2 * oh * width, *outBottom = outTop + width;
    const float* dy = dys + oh * outWidth;
    for (int64_t ow = 0; ow < outWidth; ow += 16) {
      const int64_t windows = std::min<int64_t>(16, outWidth - ow);
      const __mmask16 first = firstLanes(2 * windows), second = firstLanes(2 * windows - 16), lanes = firstLanes(windows);
      const __m512 t0 = _mm512_maskz_loadu_ps(first, top + 2 * ow), t1 = _mm512_maskz_loadu_ps(second, top + 2 * ow + 16);
      const __m512 b0 = _mm512_maskz_loadu_ps(first, bottom + 2 * ow), b1 = _mm512_maskz_loadu_ps(second, bottom + 2 * ow + 16);
      const __m512 values[4] = {_mm512_permutex2var_ps(t0, even, t1), _mm512_permutex2var_ps(t0, odd, t1),
                                _mm512_permutex2var_ps(b0, even, b1), _mm512_permutex2var_ps(b0, odd, b1)};
      __m512 best = values[0];
      __m512i winner = _mm512_setzero_si512();
      for (int k = 1; k < 4; ++k) {  // a later value wins when the best is no NaN and it is NaN or larger
        const __mmask16 take = takesWindow16(best, values[k]);
        best = _mm512_mask_mov_ps(best, take, values[k]);
        winner = _mm512_mask_mov_epi32(winner, take, _mm512_set1_epi32(k));
      }
      const __m512 g = _mm512_maskz_loadu_ps(lanes, dy + ow);
      __m512 grads[4];
      for (int k = 0; k < 4; ++k) grads[k] = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(winner, _mm512_set1_epi32(k)), g);
      _mm512_mask_storeu_ps(outTop + 2 * ow, first, _mm512_permutex2var_ps(grads[0], low, grads[1]));
      _mm512_mask_storeu_ps(outTop + 2 * ow + 16, second, _mm512_permutex2var_ps(grads[0], high, grads[1]));
      _mm512_mask_storeu_ps(outBottom + 2 * ow, first, _mm512_permutex2var_ps(grads[2], low, grads[3]));
      _mm512_mask_storeu_ps(outBottom + 2 * ow + 16, second, _mm512_permutex2var_ps(grads[2], high, grads[3]));
    }
    std::fill(outTop + 2 * outWidth, outTop + width, 0.0f);  // columns no window covers
    std::fill(outBottom + 2 * outWidth, outBottom + width, 0.0f);
  }
  std::fill(dxs + 2 * p.outHeight * width, dxs + p.height * width, 0.0f);  // rows no window covers
}

/// Sends each window's dy to the first position holding its maximum (padding reads -inf and
/// a maximum there drops dy, the first NaN wins), for one image of channels-last data ([H, W,
/// C]: C channels side by side at each position). Windows that tile the image (stride =
/// window, no padding) write each position once; others zero the image first and add.
void maxPoolGradImageChannelsLast(const PoolPlanes& p, int64_t channels, const float* xs, const float* dys,
                                  float* dxs) {
  const bool tiles = p.stride == p.window && p.padding[0] == 0 && p.padding[1] == 0;
  if (!tiles) std::memset(dxs, 0, static_cast<size_t>(p.height * p.width * channels) * sizeof(float));
  std::vector<float> best(static_cast<size_t>(channels));
  std::vector<int32_t> winner(static_cast<size_t>(channels));  // position in the image, -1 for padding
  for (int64_t oh = 0; oh < p.outHeight; ++oh)
    for (int64_t ow = 0; ow < p.outWidth; ++ow) {
      bool first = true;
      for (int64_t kh = 0; kh < p.window[0]; ++kh) {
        const int64_t ih = oh * p.stride[0] - p.padding[0] + kh;
        for (int64_t kw = 0; kw < p.window[1]; ++kw) {
          const int64_t iw = ow * p.stride[1] - p.padding[1] + kw;
          const bool inside = ih >= 0 && ih < p.height && iw >= 0 && iw < p.width;
          const auto at = static_cast<int32_t>(inside ? ih * p.width + iw : -1);
          const float* row = xs + (inside ? at * channels : 0);
          for (int64_t c = 0; c < channels; ++c) {
            const float v = inside ? row[c] : -INFINITY, b = best[static_cast<size_t>(c)];
            const bool take = first || takesWindow(b, v);
            best[static_cast<size_t>(c)] = take ? v : b;
            winner[static_cast<size_t>(c)] = take ? at : winner[static_cast<size_t>(c)];
          }
          first = false;
        }
      }
      const float* dy = dys + (oh * p.outWidth + ow) * channels;
      if (tiles) {
        for (int64_t kh = 0; kh < p.window[0]; ++kh)
          for (int64_t kw = 0; kw < p.window[1]; ++kw) {
            const auto at = static_cast<int32_t>((oh * p.stride[0] + kh) * p.width + ow * p.stride[1] + kw);
            float* dx = dxs + at * channels;
            for (int64_t c = 0; c < channels; ++c) dx[c] = winner[static_cast<size_t>(c)] == at ? dy[c] : 0.0f;
          }
      } else {
        for (int64_t c = 0; c < channels; ++c)
          if (winner[static_cast<size_t>(c)] >= 0) dxs[winner[static_cast<size_t>(c)] * channels + c] += dy[c];
      }
    }
  if (!tiles) return;
  zeroUncovered(p, channels, dxs);
}

/// maxPoolGradImageChannelsLast of one channel: one [H, W] plane of channels-first data.
void maxPoolGradPlane(const PoolPlanes& p, const float* xs, const float* dys, float* dxs) {
  maxPoolGradImageChannelsLast(p, 1, xs, dys, dxs);
}

/// maxPoolGradImageChannelsLast for windows that tile the image, on AVX-512: sixteen channels
/// of a window at a time (masked at the end), compared in window order without branches,
/// every covered position written once.
__attribute__((target("avx512f"))) void tiledMaxPoolGradImageChannelsLastAvx512(const PoolPlanes& p,
                                                                                 int64_t channels, const float* xs,
                                                                                 const float* dys, float* dxs) {
  const UpperHalvesClearedOnExit clearOnExit;  // SSE code runs after this kernel
  const int64_t taps = p.window[0] * p.window[1];
  const std::vector<int64_t> offset = tapOffsets(p, channels);
  for (int64_t oh = 0; oh < p.outHeight; ++oh)
    for (int64_t ow = 0; ow < p.outWidth; ++ow) {
      const int64_t corner = (oh * p.stride[0] * p.width + ow * p.stride[1]) * channels;
      const float* dy = dys + (oh * p.outWidth + ow) * channels;
      for (int64_t c = 0; c < channels; c += 16) {
        const __mmask16 lanes = channels - c >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (channels - c)) - 1);
        const float* x = xs + corner + c;
        __m512 best = _mm512_maskz_loadu_ps(lanes, x);
        __m512i winner = _mm512_setzero_si512();
        for (int64_t k = 1; k < taps; ++k) {  // a later value wins when the best is no NaN and it is NaN or larger
          const __m512 v = _mm512_maskz_loadu_ps(lanes, x + offset[static_cast<size_t>(k)]);
          const __mmask16 take = takesWindow16(best, v);
          best = _mm512_mask_mov_ps(best, take, v);
          winner = _mm512_mask_mov_epi32(winner, take, _mm512_set1_epi32(static_cast<int>(k)));
        }
        const __m512 g = _mm512_maskz_loadu_ps(lanes, dy + c);
        for (int64_t k = 0; k < taps; ++k) {
          const __mmask16 won = _mm512_cmpeq_epi32_mask(winner, _mm512_set1_epi32(static_cast<int>(k)));
          _mm512_mask_storeu_ps(dxs + corner + offset[static_cast<size_t>(k)] + c, lanes, _mm512_maskz_mov_ps(won, g));
        }
      }
    }
  zeroUncovered(p, channels, dxs);
}

/// tiledMaxPoolGradImageChannelsLastAvx512 on AVX2: eight channels of a window at a time
/// (takesWindow's test as three compares and a blend), the last partial run scalar. On the
/// 2-core AMD EPYC lenet's two pool gradients took 4.8 and 1.5 ms in the scalar loop.
__attribute__((target("avx2"))) void tiledMaxPoolGradImageChannelsLastAvx2(const PoolPlanes& p, int64_t channels,
                                                                             const float* xs, const float* dys,
                                                                             float* dxs) {
  const int64_t taps = p.window[0] * p.window[1], vectorChannels = channels / 8 * 8;
  const std::vector<int64_t> offset = tapOffsets(p, channels);
  for (int64_t oh = 0; oh < p.outHeight; ++oh)
    for (int64_t ow = 0; ow < p.outWidth; ++ow) {
      const int64_t corner = (oh * p.stride[0] * p.width + ow * p.stride[1]) * channels;
      const float* dy = dys + (oh * p.outWidth + ow) * channels;
      for (int64_t c = 0; c < vectorChannels; c += 8) {
        const float* x = xs + corner + c;
        __m256 best = _mm256_loadu_ps(x);
        __m256 winner = _mm256_setzero_ps();  // tap indices as int32 bits
        for (int64_t k = 1; k < taps; ++k) {  // a later value wins when the best is no NaN and it is NaN or larger
          const __m256 v = _mm256_loadu_ps(x + offset[static_cast<size_t>(k)]);
          const __m256 take = _mm256_and_ps(_mm256_cmp_ps(best, best, _CMP_ORD_Q),
                                            _mm256_or_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q), _mm256_cmp_ps(v, best, _CMP_GT_OQ)));
          best = _mm256_blendv_ps(best, v, take);
          winner = _mm256_blendv_ps(winner, _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(k))), take);
        }
        const __m256 g = _mm256_loadu_ps(dy + c);
        for (int64_t k = 0; k < taps; ++k) {
          const __m256i won = _mm256_cmpeq_epi32(_mm256_castps_si256(winner), _mm256_set1_epi32(static_cast<int>(k)));
          _mm256_storeu_ps(dxs + corner + offset[static_cast<size_t>(k)] + c, _mm256_and_ps(_mm256_castsi256_ps(won), g));
        }
      }
      for (int64_t c = vectorChannels; c < channels; ++c) {
        const float* x = xs + corner + c;
        float best = x[0];
        int64_t winner = 0;
        for (int64_t k = 1; k < taps; ++k)
          if (const float v = x[offset[static_cast<size_t>(k)]]; takesWindow(best, v)) {
            best = v;
            winner = k;
          }
        for (int64_t k = 0; k < taps; ++k) dxs[corner + offset[static_cast<size_t>(k)] + c] = k == winner ? dy[c] : 0.0f;
      }
    }
  zeroUncovered(p, channels, dxs);
}

}  // namespace

void runMaxPoolGrad2dChannelsLast(const NativeCall& call) {
  const ir::Node& node = call.graph.node(call.value);
  ir::AttrReader attrs(node.attrs, node.op);
  const ir::Shape &x = node.type.shape, &dy = call.graph.type(node.operands[1]).shape;  // [N, H, W, C]
  const PoolPlanes p{x[1], x[2], dy[1], dy[2], attrs.ints("window"), attrs.ints("stride"), attrs.ints("padding")};
  const int64_t channels = x[3], inSize = p.height * p.width * channels, outSize = p.outHeight * p.outWidth * channels;
  const auto* in = static_cast<const float*>(call.operands[0]);
  const auto* grad = static_cast<const float*>(call.operands[1]);
  auto* out = static_cast<float*>(call.result);
  const bool tiles = p.stride == p.window && p.padding[0] == 0 && p.padding[1] == 0;
  static const bool avx512 = __builtin_cpu_supports("avx512f"), avx2 = __builtin_cpu_supports("avx2");
  auto image = avx512 && tiles ? &tiledMaxPoolGradImageChannelsLastAvx512
               : avx2 && tiles ? &tiledMaxPoolGradImageChannelsLastAvx2
                               : &maxPoolGradImageChannelsLast;
#pragma omp parallel for schedule(static) if (x[0] * inSize >= (int64_t{1} << 16))
  for (int64_t n = 0; n < x[0]; ++n) image(p, channels, in + n * inSize, grad + n * outSize, out + n * inSize);
}

void runMaxPoolGrad2d(const NativeCall& call) {
  const ir::Node& node = call.graph.node(call.value);
  ir::AttrReader attrs(node.attrs, node.op);
  const ir::Shape &x = node.type.shape, &dy = call.graph.type(node.operands[1]).shape;
  const PoolPlanes p{x[2], x[3], dy[2], dy[3], attrs.ints("window"), attrs.ints("stride"), attrs.ints("padding")};
  const bool tiles = p.stride == p.window && p.padding[0] == 0 && p.padding[1] == 0 &&
                     p.outHeight * p.window[0] <= p.height && p.outWidth * p.window[1] <= p.width;
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  auto plane = avx512 && tiles && p.window == std::vector<int64_t>{2, 2} ? &tiled2x2MaxPoolGradPlaneAvx512
                                                                          : &maxPoolGradPlane;
  const int64_t planes = x[0] * x[1], inSize = p.height * p.width, outSize = p.outHeight * p.outWidth;
  const auto* in = static_cast<const float*>(call.operands[0]);
  const auto* grad = static_cast<const float*>(call.operands[1]);
  auto* out = static_cast<float*>(call.result);
#pragma omp parallel for schedule(static) if (planes * inSize >= (int64_t{1} << 16))
  for (int64_t i = 0; i < planes; ++i) plane(p, in + i * inSize, grad + i * outSize, out + i * inSize);
}

}  // namespace weft::cpu
