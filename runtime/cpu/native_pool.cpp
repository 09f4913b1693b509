// The native max_pool_grad over 2-D windows (see native_pool.h).
#include "runtime/cpu/native_pool.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "ir/attrs.h"

namespace weft::cpu {
namespace {

/// The geometry of a 2-D max_pool_grad over row-major f32 planes.
struct PoolPlanes {
  int64_t height, width, outHeight, outWidth;
  std::vector<int64_t> window, stride, padding;
};

/// Sends each window's dy to the first position holding its maximum (padding reads -inf and
/// a maximum there drops dy, the first NaN wins) in one plane; `dxs` is zeroed first.
void maxPoolGradPlane(const PoolPlanes& p, const float* xs, const float* dys, float* dxs) {
  std::memset(dxs, 0, static_cast<size_t>(p.height * p.width) * sizeof(float));
  for (int64_t oh = 0; oh < p.outHeight; ++oh)
    for (int64_t ow = 0; ow < p.outWidth; ++ow) {
      int64_t winner = -1;
      float best = 0;
      bool first = true;
      for (int64_t kh = 0; kh < p.window[0]; ++kh) {
        const int64_t ih = oh * p.stride[0] - p.padding[0] + kh;
        for (int64_t kw = 0; kw < p.window[1]; ++kw) {
          const int64_t iw = ow * p.stride[1] - p.padding[1] + kw;
          const bool inside = ih >= 0 && ih < p.height && iw >= 0 && iw < p.width;
          const float v = inside ? xs[ih * p.width + iw] : -INFINITY;
          if (first || (!std::isnan(best) && (std::isnan(v) || v > best))) {
            best = v;
            winner = inside ? ih * p.width + iw : -1;
            first = false;
          }
        }
      }
      if (winner >= 0) dxs[winner] += dys[oh * p.outWidth + ow];
    }
}

/// maxPoolGradPlane for 2x2 windows with stride 2 and no padding on AVX-512: sixteen windows
/// of an output row at a time (masked at the row's end), compared in window order without
/// branches (the data's ties would mispredict them); every position is written once.
__attribute__((target("avx512f"))) void tiled2x2MaxPoolGradPlaneAvx512(const PoolPlanes& p, const float* xs,
                                                                        const float* dys, float* dxs) {
  const int64_t width = p.width, outWidth = p.outWidth;
  // Lane i of the even (odd) gather takes element 2i (2i+1) of the 32 in two registers;
  // the interleaves put the two windows' columns back side by side.
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512i low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i high = _mm512_add_epi32(low, _mm512_set1_epi32(8));
  auto rowMask = [](int64_t count) -> __mmask16 {  // the first `count` lanes (none for count <= 0)
    return count >= 16 ? 0xFFFF : count <= 0 ? 0 : static_cast<__mmask16>((1u << count) - 1);
  };
  for (int64_t oh = 0; oh < p.outHeight; ++oh) {
    const float *top = xs + 2 * oh * width, *bottom = top + width;
    float *outTop = dxs + 2 * oh * width, *outBottom = outTop + width;
    const float* dy = dys + oh * outWidth;
    for (int64_t ow = 0; ow < outWidth; ow += 16) {
      const int64_t windows = std::min<int64_t>(16, outWidth - ow);
      const __mmask16 first = rowMask(2 * windows), second = rowMask(2 * windows - 16), lanes = rowMask(windows);
      const __m512 t0 = _mm512_maskz_loadu_ps(first, top + 2 * ow), t1 = _mm512_maskz_loadu_ps(second, top + 2 * ow + 16);
      const __m512 b0 = _mm512_maskz_loadu_ps(first, bottom + 2 * ow), b1 = _mm512_maskz_loadu_ps(second, bottom + 2 * ow + 16);
      const __m512 values[4] = {_mm512_permutex2var_ps(t0, even, t1), _mm512_permutex2var_ps(t0, odd, t1),
                                _mm512_permutex2var_ps(b0, even, b1), _mm512_permutex2var_ps(b0, odd, b1)};
      __m512 best = values[0];
      __m512i winner = _mm512_setzero_si512();
      for (int k = 1; k < 4; ++k) {  // a later value wins when the best is no NaN and it is NaN or larger
        const __mmask16 take = _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q) &
                               (_mm512_cmp_ps_mask(values[k], values[k], _CMP_UNORD_Q) |
                                _mm512_cmp_ps_mask(values[k], best, _CMP_GT_OQ));
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

}  // namespace

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
