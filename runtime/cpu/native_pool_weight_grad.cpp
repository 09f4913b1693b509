// The native pool-gradient weight gradient (see native_pool_weight_grad.h). Per image and
// block of 16 channels, per pool window: the window's winner among its four positions (first
// largest in window order, a NaN wins, as max_pool_grad picks it) masks dy into four shares,
// one per position, of which each lane keeps one; each position then adds its share times x
// under every tap into the sums [KH][KW][C][O] (in registers for a 3x3 kernel over one
// channel; the file is compiled at -O3 for that, see runtime/CMakeLists.txt).
#include "runtime/cpu/native_pool_weight_grad.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "ir/attrs.h"
#include "ir/channels_last.h"
#include "ir/error.h"
#include "runtime/cpu/host_isa.h"
#include "runtime/cpu/native_conv_pool.h"
#include "runtime/cpu/vector_state.h"
#include "runtime/cpu/window_max.h"

namespace weft::cpu {
namespace {

using ir::OpKind;
using ir::ValueId;

/// One image's geometry: x [H, W, C] channels-last, the pool's input c [OH, OW, O], its
/// gradient dy [PH, PW, O]; c and dy positioned by their ImageLayouts.
struct Geometry {
  int64_t height, width, channels, outChannels, kernelHeight, kernelWidth, padTop, padLeft;
  int64_t mapWidth, pooledHeight, pooledWidth;
  ImageLayout map, grad;
};

/// A window's four map values for sixteen channels, read from the stored map c.
struct StoredWindows16 {
  int64_t position, row;  ///< floats from one map position to the next, and one map row to the next
  /// The values of window (ph, pw) for the sixteen channels at `channels` (a pointer into the
  /// image's map: its channel block).
  __attribute__((target("avx512f"), always_inline)) void operator()(const float* channels, int64_t ph, int64_t pw,
                                                                     __m512 (&v)[4]) const {
    const float* corner = channels + 2 * ph * row + 2 * pw * position;
    v[0] = _mm512_loadu_ps(corner), v[1] = _mm512_loadu_ps(corner + position);
    v[2] = _mm512_loadu_ps(corner + row), v[3] = _mm512_loadu_ps(corner + row + position);
  }
};

/// One image added into `sums` [KH][KW][C][Blocks * 16]. K and C are the kernel's extent and
/// x's channels when known at compile time (0: read from `g`): then the loops unroll and one
/// block's sums stay in registers for the whole image. Winners are per lane, so the blocks of
/// 16 channels take one pass each over the windows. `windows` gives a window's four map
/// values: StoredWindows16 (`channelsOf(b)` a pointer into the map) or RecomputedWindows16 (a
/// channel offset).
template <int Blocks, int K, int C, class Windows, class Channels>
__attribute__((target("avx512f"))) void imageOf(const Geometry& g, const float* x, const Windows& windows,
                                                Channels channelsOf, const float* dy, float* sums) {
  const UpperHalvesClearedOnExit clearOnExit;  // SSE code runs after this kernel
  const int64_t kh0 = K ? K : g.kernelHeight, kw0 = K ? K : g.kernelWidth, channels = C ? C : g.channels;
  constexpr bool kInRegisters = K && C;
  constexpr int kHeld = kInRegisters ? K * K * C : 1;
  const int64_t gradPosition = g.grad.positionStride;
  for (int b = 0; b < Blocks; ++b, dy += g.grad.blockStride) {
    const auto mapChannels = channelsOf(b);
    __m512 held[kHeld];
    if constexpr (kInRegisters)
      for (int t = 0; t < kHeld; ++t) held[t] = _mm512_setzero_ps();
    for (int64_t ph = 0; ph < g.pooledHeight; ++ph)
      for (int64_t pw = 0; pw < g.pooledWidth; ++pw) {
        // Each position's share of dy: dy where the position won its window, else 0.
        __m512 v[4];
        windows(mapChannels, ph, pw, v);
        const __m512 v0 = v[0], v1 = v[1], v2 = v[2], v3 = v[3];
        const __mmask16 take1 = takesWindow16(v0, v1);
        const __m512 best1 = _mm512_mask_mov_ps(v0, take1, v1);
        const __mmask16 take2 = takesWindow16(best1, v2);
        const __m512 best2 = _mm512_mask_mov_ps(best1, take2, v2);
        const __mmask16 take3 = takesWindow16(best2, v3);
        const __m512 grad = _mm512_loadu_ps(dy + (ph * g.pooledWidth + pw) * gradPosition);
        const __m512 share[4] = {
            _mm512_maskz_mov_ps(static_cast<__mmask16>(~(take1 | take2 | take3)), grad),
            _mm512_maskz_mov_ps(static_cast<__mmask16>(take1 & ~(take2 | take3)), grad),
            _mm512_maskz_mov_ps(static_cast<__mmask16>(take2 & ~take3), grad), _mm512_maskz_mov_ps(take3, grad)};
        const bool inside = 2 * ph - g.padTop >= 0 && 2 * ph + 1 + kh0 - 1 - g.padTop < g.height &&
                            2 * pw - g.padLeft >= 0 && 2 * pw + 1 + kw0 - 1 - g.padLeft < g.width;
        if constexpr (kInRegisters) {
          if (inside) {  // no checks: per kernel row, the two x rows' K + 1 values under the window
            const float* corner = x + ((2 * ph - g.padTop) * g.width + 2 * pw - g.padLeft) * C;
#pragma GCC unroll 8
            for (int kh = 0; kh < K; ++kh)
#pragma GCC unroll 4
              for (int ch = 0; ch < C; ++ch) {
                __m512 patch[2][K + 1];
                for (int i = 0; i < 2; ++i)
                  for (int j = 0; j <= K; ++j) patch[i][j] = _mm512_set1_ps(corner[((kh + i) * g.width + j) * C + ch]);
#pragma GCC unroll 8
                for (int kw = 0; kw < K; ++kw)
                  for (int k = 0; k < 4; ++k)
                    held[(kh * K + kw) * C + ch] =
                        _mm512_fmadd_ps(share[k], patch[k / 2][k % 2 + kw], held[(kh * K + kw) * C + ch]);
              }
            continue;
          }
        }
#pragma GCC unroll 8
        for (int64_t kh = 0; kh < kh0; ++kh)
#pragma GCC unroll 8
          for (int64_t kw = 0; kw < kw0; ++kw)
#pragma GCC unroll 4
            for (int64_t ch = 0; ch < channels; ++ch) {
              const int64_t tap = (kh * kw0 + kw) * channels + ch;
              __m512 sum = kInRegisters ? held[kInRegisters ? tap : 0] : _mm512_loadu_ps(sums + (tap * Blocks + b) * 16);
#pragma GCC unroll 4
              for (int k = 0; k < 4; ++k) {
                const int64_t ih = 2 * ph + k / 2 + kh - g.padTop, iw = 2 * pw + k % 2 + kw - g.padLeft;
                if (ih < 0 || ih >= g.height || iw < 0 || iw >= g.width) continue;
                sum = _mm512_fmadd_ps(share[k], _mm512_set1_ps(x[(ih * g.width + iw) * channels + ch]), sum);
              }
              if constexpr (kInRegisters) held[tap] = sum;
              else _mm512_storeu_ps(sums + (tap * Blocks + b) * 16, sum);
            }
      }
    if constexpr (kInRegisters)
      for (int t = 0; t < kHeld; ++t) {
        float* at = sums + (t * Blocks + b) * 16;
        _mm512_storeu_ps(at, _mm512_add_ps(_mm512_loadu_ps(at), held[t]));
      }
  }
}

/// takesWindow on eight lanes, as all-ones lanes.
__attribute__((target("avx2"))) inline __m256 takesWindow8(__m256 best, __m256 v) {
  return _mm256_and_ps(_mm256_cmp_ps(best, best, _CMP_ORD_Q),
                       _mm256_or_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q), _mm256_cmp_ps(v, best, _CMP_GT_OQ)));
}

/// A window's four map values for eight channels, read from the stored map c.
struct StoredWindows {
  int64_t position, row;  ///< floats from one map position to the next, and one map row to the next
  /// The values of window (ph, pw) for the eight channels at `channels` (a pointer into the
  /// image's map: its channel offset).
  __attribute__((target("avx2,fma"), always_inline)) void operator()(const float* channels, int64_t ph, int64_t pw,
                                                                      __m256 (&v)[4]) const {
    const float* corner = channels + 2 * ph * row + 2 * pw * position;
    v[0] = _mm256_loadu_ps(corner), v[1] = _mm256_loadu_ps(corner + position);
    v[2] = _mm256_loadu_ps(corner + row), v[3] = _mm256_loadu_ps(corner + row + position);
  }
};

/// A window's four map values for eight channels computed again from x as the conv-pool
/// step computes them (runConvPool: bias + x * w over the taps in the same order, then the
/// ReLU), so that the winners are the same. The first window of a pooled row computes the
/// two map rows under it into `rows`, eight positions at a time: the four of one window
/// alone were four chains of dependent FMAs, too few to keep both FMA pipes busy.
template <int K, int C>
struct RecomputedWindows {
  const Geometry& g;
  const float* x;     ///< the image's x [H, W, C]
  const float* taps;  ///< the conv's weight as [KH][KW][C][O]
  const float* bias;  ///< O values
  bool relu;
  float* rows;  ///< 2 x 2PW x 8 floats: the map rows under the current pooled row

  /// The values of window (ph, pw) for the eight result channels from `o0` on.
  __attribute__((target("avx2,fma"), always_inline)) void operator()(int64_t o0, int64_t ph, int64_t pw,
                                                                      __m256 (&v)[4]) const {
    const int64_t across = 2 * g.pooledWidth;
    if (pw == 0)
      for (int r = 0; r < 2; ++r) mapRow(o0, 2 * ph + r, rows + r * across * 8);
    const float* at = rows + 2 * pw * 8;
    v[0] = _mm256_loadu_ps(at), v[1] = _mm256_loadu_ps(at + 8);
    v[2] = _mm256_loadu_ps(at + across * 8), v[3] = _mm256_loadu_ps(at + across * 8 + 8);
  }

  /// Map row `mh`'s first 2PW positions, eight channels from `o0` on, into `out`.
  __attribute__((target("avx2,fma"), noinline)) void mapRow(int64_t o0, int64_t mh, float* out) const {
    const int64_t o = g.outChannels, kh0 = K ? K : g.kernelHeight, kw0 = K ? K : g.kernelWidth;
    const int64_t channels = C ? C : g.channels, across = 2 * g.pooledWidth;
    const bool rowsInside = mh - g.padTop >= 0 && mh - g.padTop + kh0 - 1 < g.height;
    int64_t m0 = 0;
    for (; rowsInside && m0 + 8 <= across && m0 - g.padLeft + 7 + kw0 - 1 < g.width; m0 += 8) {
      if (m0 - g.padLeft < 0) break;
      __m256 sums[8];
#pragma GCC unroll 8
      for (int q = 0; q < 8; ++q) sums[q] = _mm256_loadu_ps(bias + o0);
      const float* corner = x + ((mh - g.padTop) * g.width + m0 - g.padLeft) * channels;
#pragma GCC unroll 8
      for (int64_t kh = 0; kh < kh0; ++kh)
#pragma GCC unroll 8
        for (int64_t kw = 0; kw < kw0; ++kw)
#pragma GCC unroll 4
          for (int64_t c = 0; c < channels; ++c) {
            const __m256 w = _mm256_loadu_ps(taps + ((kh * kw0 + kw) * channels + c) * o + o0);
#pragma GCC unroll 8
            for (int q = 0; q < 8; ++q)
              sums[q] =
                  _mm256_fmadd_ps(_mm256_broadcast_ss(corner + (kh * g.width + kw + q) * channels + c), w, sums[q]);
          }
#pragma GCC unroll 8
      for (int q = 0; q < 8; ++q) _mm256_storeu_ps(out + (m0 + q) * 8, relu ? relu8(sums[q]) : sums[q]);
    }
    for (int64_t m = m0; m < across; ++m) {  // positions by the image's edges, their taps checked
      __m256 sum = _mm256_loadu_ps(bias + o0);
      for (int64_t kh = 0; kh < kh0; ++kh) {
        const int64_t ih = mh + kh - g.padTop;
        if (ih < 0 || ih >= g.height) continue;
        for (int64_t kw = 0; kw < kw0; ++kw) {
          const int64_t iw = m + kw - g.padLeft;
          if (iw < 0 || iw >= g.width) continue;
          for (int64_t c = 0; c < channels; ++c)
            sum = _mm256_fmadd_ps(_mm256_broadcast_ss(x + (ih * g.width + iw) * channels + c),
                                  _mm256_loadu_ps(taps + ((kh * kw0 + kw) * channels + c) * o + o0), sum);
        }
      }
      _mm256_storeu_ps(out + m * 8, relu ? relu8(sum) : sum);
    }
  }
};

/// `imageOf` the stored map.
template <int Blocks, int K, int C>
__attribute__((target("avx512f"))) void image(const Geometry& g, const float* x, const float* c, const float* dy,
                                              float* sums) {
  const StoredWindows16 windows{g.map.positionStride, g.mapWidth * g.map.positionStride};
  imageOf<Blocks, K, C>(
      g, x, windows, [&](int b) { return c + b * g.map.blockStride; }, dy, sums);
}

/// RecomputedWindows on sixteen channels (AVX-512): the same FMAs in the same order, so the
/// same values as the conv-pool step's, sixteen result channels a pass instead of eight.
template <int K, int C>
struct RecomputedWindows16 {
  const Geometry& g;
  const float* x;     ///< the image's x [H, W, C]
  const float* taps;  ///< the conv's weight as [KH][KW][C][O]
  const float* bias;  ///< O values
  bool relu;
  float* rows;  ///< 2 x 2PW x 16 floats: the map rows under the current pooled row

  /// The values of window (ph, pw) for the sixteen result channels from `o0` on.
  __attribute__((target("avx512f"), always_inline)) void operator()(int64_t o0, int64_t ph, int64_t pw,
                                                                     __m512 (&v)[4]) const {
    const int64_t across = 2 * g.pooledWidth;
    if (pw == 0)
      for (int r = 0; r < 2; ++r) mapRow(o0, 2 * ph + r, rows + r * across * 16);
    const float* at = rows + 2 * pw * 16;
    v[0] = _mm512_loadu_ps(at), v[1] = _mm512_loadu_ps(at + 16);
    v[2] = _mm512_loadu_ps(at + across * 16), v[3] = _mm512_loadu_ps(at + across * 16 + 16);
  }

  /// Map row `mh`'s first 2PW positions, sixteen channels from `o0` on, into `out`.
  __attribute__((target("avx512f"), noinline)) void mapRow(int64_t o0, int64_t mh, float* out) const {
    const int64_t o = g.outChannels, kh0 = K ? K : g.kernelHeight, kw0 = K ? K : g.kernelWidth;
    const int64_t channels = C ? C : g.channels, across = 2 * g.pooledWidth;
    const bool rowsInside = mh - g.padTop >= 0 && mh - g.padTop + kh0 - 1 < g.height;
    int64_t m0 = 0;
    for (; rowsInside && m0 + 8 <= across && m0 - g.padLeft + 7 + kw0 - 1 < g.width; m0 += 8) {
      if (m0 - g.padLeft < 0) break;
      __m512 sums[8];
#pragma GCC unroll 8
      for (int q = 0; q < 8; ++q) sums[q] = _mm512_loadu_ps(bias + o0);
      const float* corner = x + ((mh - g.padTop) * g.width + m0 - g.padLeft) * channels;
#pragma GCC unroll 8
      for (int64_t kh = 0; kh < kh0; ++kh)
#pragma GCC unroll 8
        for (int64_t kw = 0; kw < kw0; ++kw)
#pragma GCC unroll 4
          for (int64_t c = 0; c < channels; ++c) {
            const __m512 w = _mm512_loadu_ps(taps + ((kh * kw0 + kw) * channels + c) * o + o0);
#pragma GCC unroll 8
            for (int q = 0; q < 8; ++q)
              sums[q] = _mm512_fmadd_ps(_mm512_set1_ps(corner[(kh * g.width + kw + q) * channels + c]), w, sums[q]);
          }
#pragma GCC unroll 8
      for (int q = 0; q < 8; ++q) _mm512_storeu_ps(out + (m0 + q) * 16, relu ? relu16(sums[q]) : sums[q]);
    }
    for (int64_t m = m0; m < across; ++m) {  // positions by the image's edges, their taps checked
      __m512 sum = _mm512_loadu_ps(bias + o0);
      for (int64_t kh = 0; kh < kh0; ++kh) {
        const int64_t ih = mh + kh - g.padTop;
        if (ih < 0 || ih >= g.height) continue;
        for (int64_t kw = 0; kw < kw0; ++kw) {
          const int64_t iw = m + kw - g.padLeft;
          if (iw < 0 || iw >= g.width) continue;
          for (int64_t c = 0; c < channels; ++c)
            sum = _mm512_fmadd_ps(_mm512_set1_ps(x[(ih * g.width + iw) * channels + c]),
                                  _mm512_loadu_ps(taps + ((kh * kw0 + kw) * channels + c) * o + o0), sum);
        }
      }
      _mm512_storeu_ps(out + m * 16, relu ? relu16(sum) : sum);
    }
  }
};

/// One image of the step that computes the map's windows again from x, in AVX-512
/// (RecomputedWindows16, its rows at `rows`).
template <int Blocks, int K, int C>
__attribute__((target("avx512f"))) void imageRecomputed512(const Geometry& g, const float* x, const float* taps,
                                                           const float* bias, bool relu, const float* dy,
                                                           float* sums, float* rows) {
  const RecomputedWindows16<K, C> windows{g, x, taps, bias, relu, rows};
  imageOf<Blocks, K, C>(
      g, x, windows, [](int b) { return int64_t{16} * b; }, dy, sums);
}

/// `image` with AVX2: each block of 16 channels as two halves of eight, one pass each over
/// the windows (the sums of a 3x3 kernel over one channel, nine registers, held for a whole
/// image). `windows` gives a window's four map values: StoredWindows (`channels` a pointer
/// into the map) or RecomputedWindows (a channel offset).
template <int Blocks, int K, int C, class Windows, class Channels>
__attribute__((target("avx2,fma"))) void imageAvx2Of(const Geometry& g, const float* x, const Windows& windows,
                                                     Channels channelsOf, const float* dy, float* sums) {
  const UpperHalvesClearedOnExit clearOnExit;
  const int64_t kh0 = K ? K : g.kernelHeight, kw0 = K ? K : g.kernelWidth, channels = C ? C : g.channels;
  constexpr bool kInRegisters = K && C;
  constexpr int kHeld = kInRegisters ? K * K * C : 1;
  const int64_t gradPosition = g.grad.positionStride;
  for (int half = 0; half < 2 * Blocks; ++half) {
    const int b = half / 2;
    const auto mapChannels = channelsOf(b, half % 2);
    const float* grads = dy + b * g.grad.blockStride + 8 * (half % 2);
    float* out = sums + b * 16 + 8 * (half % 2);  // + tap * Blocks * 16
    __m256 held[kHeld];
#pragma GCC unroll 64
    for (int t = 0; t < kHeld; ++t) held[t] = _mm256_setzero_ps();
    for (int64_t ph = 0; ph < g.pooledHeight; ++ph)
      for (int64_t pw = 0; pw < g.pooledWidth; ++pw) {
        // Each position's share of dy: dy where the position won its window, else 0.
        __m256 v[4];
        windows(mapChannels, ph, pw, v);
        const __m256 take1 = takesWindow8(v[0], v[1]);
        const __m256 best1 = _mm256_blendv_ps(v[0], v[1], take1);
        const __m256 take2 = takesWindow8(best1, v[2]);
        const __m256 best2 = _mm256_blendv_ps(best1, v[2], take2);
        const __m256 take3 = takesWindow8(best2, v[3]);
        const __m256 grad = _mm256_loadu_ps(grads + (ph * g.pooledWidth + pw) * gradPosition);
        const __m256 later2 = _mm256_or_ps(take2, take3);
        const __m256 share[4] = {_mm256_andnot_ps(_mm256_or_ps(take1, later2), grad),
                                 _mm256_and_ps(_mm256_andnot_ps(later2, take1), grad),
                                 _mm256_and_ps(_mm256_andnot_ps(take3, take2), grad), _mm256_and_ps(take3, grad)};
        const bool inside = 2 * ph - g.padTop >= 0 && 2 * ph + 1 + kh0 - 1 - g.padTop < g.height &&
                            2 * pw - g.padLeft >= 0 && 2 * pw + 1 + kw0 - 1 - g.padLeft < g.width;
        if constexpr (kInRegisters) {
          if (inside) {  // no checks: x under each tap of the window's four positions
            const float* patch = x + ((2 * ph - g.padTop) * g.width + 2 * pw - g.padLeft) * C;
#pragma GCC unroll 8
            for (int kh = 0; kh < K; ++kh)
#pragma GCC unroll 4
              for (int ch = 0; ch < C; ++ch)
#pragma GCC unroll 8
                for (int kw = 0; kw < K; ++kw)
#pragma GCC unroll 4
                  for (int k = 0; k < 4; ++k)
                    held[(kh * K + kw) * C + ch] = _mm256_fmadd_ps(
                        share[k], _mm256_broadcast_ss(patch + ((kh + k / 2) * g.width + kw + k % 2) * C + ch),
                        held[(kh * K + kw) * C + ch]);
            continue;
          }
        }
#pragma GCC unroll 8
        for (int64_t kh = 0; kh < kh0; ++kh)
#pragma GCC unroll 8
          for (int64_t kw = 0; kw < kw0; ++kw)
#pragma GCC unroll 4
            for (int64_t ch = 0; ch < channels; ++ch) {
              const int64_t tap = (kh * kw0 + kw) * channels + ch;
              __m256 sum = kInRegisters ? held[kInRegisters ? tap : 0] : _mm256_loadu_ps(out + tap * Blocks * 16);
#pragma GCC unroll 4
              for (int k = 0; k < 4; ++k) {
                const int64_t ih = 2 * ph + k / 2 + kh - g.padTop, iw = 2 * pw + k % 2 + kw - g.padLeft;
                if (ih < 0 || ih >= g.height || iw < 0 || iw >= g.width) continue;
                sum = _mm256_fmadd_ps(share[k], _mm256_broadcast_ss(x + (ih * g.width + iw) * channels + ch), sum);
              }
              if constexpr (kInRegisters) held[tap] = sum;
              else _mm256_storeu_ps(out + tap * Blocks * 16, sum);
            }
      }
    if constexpr (kInRegisters)
#pragma GCC unroll 64
      for (int t = 0; t < kHeld; ++t) {
        float* at = out + t * Blocks * 16;
        _mm256_storeu_ps(at, _mm256_add_ps(_mm256_loadu_ps(at), held[t]));
      }
  }
}

/// `image` with AVX2 (imageAvx2Of the stored map).
template <int Blocks, int K, int C>
__attribute__((target("avx2,fma"))) void imageAvx2(const Geometry& g, const float* x, const float* c, const float* dy,
                                                   float* sums) {
  const StoredWindows windows{g.map.positionStride, g.mapWidth * g.map.positionStride};
  imageAvx2Of<Blocks, K, C>(
      g, x, windows, [&](int b, int half) { return c + b * g.map.blockStride + 8 * half; }, dy, sums);
}

/// The floats of RecomputedWindows16's rows (RecomputedWindows' take half of them).
int64_t recomputedRowFloats(const Geometry& g) { return 2 * 2 * g.pooledWidth * 16; }

/// One image of the step that computes the map's windows again from x (RecomputedWindows,
/// its rows at `rows`), on AVX2 (the choice, and so the memory plan, is the same on every
/// CPU with AVX2; AVX-512 ones run imageRecomputed512).
template <int Blocks, int K, int C>
__attribute__((target("avx2,fma"))) void imageRecomputedAvx2(const Geometry& g, const float* x, const float* taps,
                                                             const float* bias, bool relu, const float* dy,
                                                             float* sums, float* rows) {
  const RecomputedWindows<K, C> windows{g, x, taps, bias, relu, rows};
  imageAvx2Of<Blocks, K, C>(
      g, x, windows, [](int b, int half) { return int64_t{16} * b + 8 * half; }, dy, sums);
}

using ImageKernel = void (*)(const Geometry&, const float*, const float*, const float*, float*);

/// The image kernel for `g` (pickImageKernel), in AVX-512 or AVX2.
ImageKernel imageKernel(const Geometry& g) {
  if (hostHasAvx512())
    return pickImageKernel(g.outChannels, g.kernelHeight, g.kernelWidth, g.channels,
                           []<int Blocks, int K, int C>() -> ImageKernel { return &image<Blocks, K, C>; });
  return pickImageKernel(g.outChannels, g.kernelHeight, g.kernelWidth, g.channels,
                         []<int Blocks, int K, int C>() -> ImageKernel { return &imageAvx2<Blocks, K, C>; });
}

using RecomputingKernel = void (*)(const Geometry&, const float*, const float*, const float*, bool, const float*,
                                   float*, float*);

/// The image kernel of the step that computes the map again.
RecomputingKernel recomputingKernel(const Geometry& g) {
  if (hostHasAvx512())
    return pickImageKernel(g.outChannels, g.kernelHeight, g.kernelWidth, g.channels,
                           []<int Blocks, int K, int C>() -> RecomputingKernel {
                             return &imageRecomputed512<Blocks, K, C>;
                           });
  return pickImageKernel(g.outChannels, g.kernelHeight, g.kernelWidth, g.channels,
                         []<int Blocks, int K, int C>() -> RecomputingKernel {
                           return &imageRecomputedAvx2<Blocks, K, C>;
                         });
}

}  // namespace

ValueId poolWeightGradRecomputedConv(const ir::Graph& g, ValueId wgrad) {
  const ValueId dx = hostHasAvx2Fma() ? poolWeightGradSource(g, wgrad) : -1;
  if (dx < 0) return -1;
  const ValueId c = g.node(dx).operands[0];
  const std::vector<ValueId> readers = otherReaders(g, c, dx);
  if (readers.size() != 1 || readers[0] >= g.size() || convPoolSource(g, readers[0]) != c) return -1;
  const ir::Node &node = g.node(wgrad), &conv = g.node(c);
  const ConvEpilogue body = *convEpilogueOf(g, c);
  const auto& padding = ir::AttrReader(body.conv->attrs, body.conv->op).ints("padding");
  if (conv.operands[0] != node.operands[0] || g.type(conv.operands[1]).shape != node.type.shape ||
      padding != ir::AttrReader(node.attrs, node.op).ints("padding"))
    return -1;
  return c;
}

ValueId poolWeightGradSource(const ir::Graph& g, ValueId wgrad) {
  return hostHasAvx512() || hostHasAvx2Fma() ? poolWeightGradShape(g, wgrad) : -1;
}

ValueId poolWeightGradShape(const ir::Graph& g, ValueId wgrad) {
  const ir::Node& node = g.node(wgrad);
  if (node.op != OpKind::ConvWeightGrad || node.type.dtype != ir::DType::f32 ||
      !ir::isChannelsLast(node.op, node.attrs) || node.operands.size() != 2)
    return -1;
  ir::AttrReader attrs(node.attrs, node.op);
  const ir::TensorType& x = g.type(node.operands[0]);
  const bool unit = attrs.ints("stride") == std::vector<int64_t>{1, 1} && attrs.ints("dilation") == std::vector<int64_t>{1, 1};
  if (!unit || attrs.i("groups") != 1 || x.dtype != ir::DType::f32 || x.rank() != 4 ||
      x.shape[3] > kMaxPoolWeightGradInputs || node.type.shape[2] > 7 || node.type.shape[3] > 7)
    return -1;
  const ValueId dx = node.operands[1];
  const ir::Node& pool = g.node(dx);
  if (pool.op != OpKind::MaxPoolGrad || pool.type.dtype != ir::DType::f32 || pool.type.rank() != 4 ||
      !ir::isChannelsLast(pool.op, pool.attrs) || !otherReaders(g, dx, wgrad).empty())
    return -1;
  ir::AttrReader pooling(pool.attrs, pool.op);
  const int64_t channels = pool.type.shape[3];
  if (pooling.ints("window") != std::vector<int64_t>{2, 2} || pooling.ints("stride") != std::vector<int64_t>{2, 2} ||
      pooling.ints("padding") != std::vector<int64_t>{0, 0} || channels % 16 != 0 || channels > 64 ||
      g.type(pool.operands[1]).dtype != ir::DType::f32)
    return -1;
  return dx;
}

void runPoolWeightGrad(const NativeCall& call) {
  const ir::Graph& graph = call.graph;
  const ir::Node& node = graph.node(call.value);
  const ir::Node& pool = graph.node(node.operands[1]);
  const ir::Shape &x = graph.type(node.operands[0]).shape, &map = pool.type.shape;
  const ir::Shape& pooled = graph.type(pool.operands[1]).shape;
  const auto& padding = ir::AttrReader(node.attrs, node.op).ints("padding");
  if (call.isBlocked(node.operands[0]))
    throw Error("conv_weight_grad " + std::to_string(call.value) + ": its input is stored channel-blocked");
  const int64_t o = map[3];
  const Geometry g{x[1],      x[2],          x[3],          o,
                   node.type.shape[2], node.type.shape[3], padding[0], padding[1],
                   map[2],    pooled[1],     pooled[2],
                   ImageLayout(call.isBlocked(pool.operands[0]), map[1] * map[2], o),
                   ImageLayout(call.isBlocked(pool.operands[1]), pooled[1] * pooled[2], o)};
  const int64_t taps = g.kernelHeight * g.kernelWidth * g.channels, sums = taps * o;
  const int64_t images = x[0], inSize = x[1] * x[2] * x[3], mapSize = map[1] * map[2] * o;
  const int64_t gradSize = pooled[1] * pooled[2] * o;
  const int parts = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(images, omp_get_max_threads())));
  std::vector<float> partial(static_cast<size_t>(parts * sums), 0.0f);
  const auto* in = static_cast<const float*>(call.operands[0]);
  const auto* dy = static_cast<const float*>(call.operands.back());
  if (const ValueId c = poolWeightGradRecomputedConv(graph, call.value); c >= 0) {
    const ConvEpilogue body = *convEpilogueOf(graph, c);
    const ConvPoolWeights weights = convPoolWeights(graph, c, call.operands);  // as runConvPool has them
    const std::vector<float>&taps = weights.taps, &bias = weights.bias;
    const RecomputingKernel run = recomputingKernel(g);
    std::vector<float> rows(static_cast<size_t>(parts * recomputedRowFloats(g)));  // each part's
#pragma omp parallel for schedule(static, 1) num_threads(parts) if (parts > 1)
    for (int part = 0; part < parts; ++part)
      for (int64_t n = images * part / parts; n < images * (part + 1) / parts; ++n)
        run(g, in + n * inSize, taps.data(), bias.data(), body.relu, dy + n * gradSize, partial.data() + part * sums,
            rows.data() + part * recomputedRowFloats(g));
  } else {
    const ImageKernel run = imageKernel(g);
    const auto* stored = static_cast<const float*>(call.operands[1]);
#pragma omp parallel for schedule(static, 1) num_threads(parts) if (parts > 1)
    for (int part = 0; part < parts; ++part)
      for (int64_t n = images * part / parts; n < images * (part + 1) / parts; ++n)
        run(g, in + n * inSize, stored + n * mapSize, dy + n * gradSize, partial.data() + part * sums);
  }
  for (int part = 1; part < parts; ++part)  // in part order
    for (int64_t i = 0; i < sums; ++i) partial[static_cast<size_t>(i)] += partial[static_cast<size_t>(part * sums + i)];
  // The result [O, C, KH, KW] from the sums [KH][KW][C][O].
  auto* result = static_cast<float*>(call.result);
  const int64_t kernelTaps = g.kernelHeight * g.kernelWidth;
  for (int64_t out = 0; out < o; ++out)
    for (int64_t ch = 0; ch < g.channels; ++ch)
      for (int64_t k = 0; k < kernelTaps; ++k)
        result[(out * g.channels + ch) * kernelTaps + k] = partial[static_cast<size_t>((k * g.channels + ch) * o + out)];
}

}  // namespace weft::cpu
