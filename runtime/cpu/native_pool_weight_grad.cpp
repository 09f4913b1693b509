// The native pool-gradient weight gradient (see native_pool_weight_grad.h). Per image and
// block of 16 channels, per pool window: the window's winner among its four positions (first
// largest in window order, a NaN wins, as max_pool_grad picks it; or as the conv-pool step
// stored it) masks dy into four shares, one per position, of which each lane keeps one; each
// position then adds its share times x under every tap into the sums [KH][KW][C][O] (in
// registers for a 3x3 kernel over one channel; the file is compiled at -O3 for that, see
// runtime/CMakeLists.txt). With stored winners, a 3x3 kernel over one channel adds only the
// winner's x per lane, picked out of the window's 4x4 patch by a permutation.
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

/// Each of a window's four positions' share of dy for sixteen channels, from the stored map
/// c: dy where the position won its window, else 0.
struct StoredShares16 {
  const float* map;  ///< the image's map
  int64_t position, row, block;  ///< floats from one map position, row and channel block to the next
  static constexpr bool kWinners = false;

  /// The shares of window (ph, pw) in channel block `b` of `grad`.
  __attribute__((target("avx512f"), always_inline)) void operator()(int b, int64_t ph, int64_t pw, __m512 grad,
                                                                     __m512 (&share)[4]) const {
    const float* corner = map + b * block + 2 * ph * row + 2 * pw * position;
    const __m512 v0 = _mm512_loadu_ps(corner), v1 = _mm512_loadu_ps(corner + position);
    const __m512 v2 = _mm512_loadu_ps(corner + row), v3 = _mm512_loadu_ps(corner + row + position);
    const __mmask16 take1 = takesWindow16(v0, v1);
    const __m512 best1 = _mm512_mask_mov_ps(v0, take1, v1);
    const __mmask16 take2 = takesWindow16(best1, v2);
    const __m512 best2 = _mm512_mask_mov_ps(best1, take2, v2);
    const __mmask16 take3 = takesWindow16(best2, v3);
    share[0] = _mm512_maskz_mov_ps(static_cast<__mmask16>(~(take1 | take2 | take3)), grad);
    share[1] = _mm512_maskz_mov_ps(static_cast<__mmask16>(take1 & ~(take2 | take3)), grad);
    share[2] = _mm512_maskz_mov_ps(static_cast<__mmask16>(take2 & ~take3), grad);
    share[3] = _mm512_maskz_mov_ps(take3, grad);
  }
};

/// StoredShares16 from the winners the conv-pool step stored (convPoolWritesWinners).
struct WinnerShares16 {
  const uint8_t* winners;  ///< the image's winners [PH][PW][O]
  int64_t outChannels, pooledWidth;
  static constexpr bool kWinners = true;

  /// The winners of window (ph, pw) in channel block `b`, 0-3, as sixteen lanes.
  __attribute__((target("avx512f"), always_inline)) __m512i winnersOf(int b, int64_t ph, int64_t pw) const {
    const uint8_t* at = winners + (ph * pooledWidth + pw) * outChannels + 16 * b;
    // Masked forms throughout: GCC 12 warns that the unmasked ones' undefined source may be used.
    return _mm512_maskz_cvtepu8_epi32(0xFFFF, _mm_loadu_si128(reinterpret_cast<const __m128i*>(at)));
  }

  /// The shares of window (ph, pw) in channel block `b` of `grad`.
  __attribute__((target("avx512f"), always_inline)) void operator()(int b, int64_t ph, int64_t pw, __m512 grad,
                                                                     __m512 (&share)[4]) const {
    const __m512i winner = winnersOf(b, ph, pw);
    for (int k = 0; k < 4; ++k)
      share[k] = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(winner, _mm512_set1_epi32(k)), grad);
  }
};

/// One image added into `sums` [KH][KW][C][Blocks * 16]. K and C are the kernel's extent and
/// x's channels when known at compile time (0: read from `g`): then the loops unroll and one
/// block's sums stay in registers for the whole image. Winners are per lane, so the blocks of
/// 16 channels take one pass each over the windows. `sharesOf` splits a window's dy among its
/// four positions: StoredShares16 or WinnerShares16. With the winners, a 3x3 kernel over one
/// channel and the window inside the image, the window's 4x4 patch of x sits in one register
/// and each lane takes x under its own winner's taps out of it (vpermps): 9 FMAs a window
/// instead of 36.
template <int Blocks, int K, int C, class Shares>
__attribute__((target("avx512f"))) void imageOf(const Geometry& g, const float* x, const Shares& sharesOf,
                                                const float* dy, float* sums) {
  const UpperHalvesClearedOnExit clearOnExit;  // SSE code runs after this kernel
  const int64_t kh0 = K ? K : g.kernelHeight, kw0 = K ? K : g.kernelWidth, channels = C ? C : g.channels;
  constexpr bool kInRegisters = K && C;
  constexpr int kHeld = kInRegisters ? K * K * C : 1;
  const int64_t gradPosition = g.grad.positionStride;
  for (int b = 0; b < Blocks; ++b, dy += g.grad.blockStride) {
    __m512 held[kHeld];
    if constexpr (kInRegisters)
      for (int t = 0; t < kHeld; ++t) held[t] = _mm512_setzero_ps();
    for (int64_t ph = 0; ph < g.pooledHeight; ++ph)
      for (int64_t pw = 0; pw < g.pooledWidth; ++pw) {
        const __m512 grad = _mm512_loadu_ps(dy + (ph * g.pooledWidth + pw) * gradPosition);
        const bool inside = 2 * ph - g.padTop >= 0 && 2 * ph + 1 + kh0 - 1 - g.padTop < g.height &&
                            2 * pw - g.padLeft >= 0 && 2 * pw + 1 + kw0 - 1 - g.padLeft < g.width;
        if constexpr (Shares::kWinners && K == 3 && C == 1) {
          // Lane o's tap (kh, kw) reads patch[(kh + q / 2) * 4 + kw + q % 2] for winner q. A
          // patch holding an infinity or a NaN takes the shares below, whose zeros times it
          // make the NaNs the reference's scattered gradient makes.
          __m512 patch = _mm512_setzero_ps();
          if (inside) {
            const float* corner = x + (2 * ph - g.padTop) * g.width + 2 * pw - g.padLeft;
            patch = _mm512_castps128_ps512(_mm_loadu_ps(corner));
            patch = _mm512_insertf32x4(patch, _mm_loadu_ps(corner + g.width), 1);
            patch = _mm512_insertf32x4(patch, _mm_loadu_ps(corner + 2 * g.width), 2);
            patch = _mm512_insertf32x4(patch, _mm_loadu_ps(corner + 3 * g.width), 3);
          }
          const bool finite =
              _mm512_cmp_ps_mask(_mm512_sub_ps(patch, patch), _mm512_setzero_ps(), _CMP_EQ_OQ) == 0xFFFF;
          if (inside && finite) {
            const __m512i winner = sharesOf.winnersOf(b, ph, pw);
            const __m512i offset = _mm512_add_epi32(winner, _mm512_and_si512(winner, _mm512_set1_epi32(2)));
#pragma GCC unroll 3
            for (int kh = 0; kh < 3; ++kh)
#pragma GCC unroll 3
              for (int kw = 0; kw < 3; ++kw) {
                const __m512i at = _mm512_add_epi32(offset, _mm512_set1_epi32(kh * 4 + kw));
                const __m512 under = _mm512_maskz_permutexvar_ps(0xFFFF, at, patch);
                held[kh * 3 + kw] = _mm512_fmadd_ps(grad, under, held[kh * 3 + kw]);
              }
            continue;
          }
        }
        __m512 share[4];
        sharesOf(b, ph, pw, grad, share);
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

/// StoredShares16 on eight channels (AVX2), as all-ones lanes.
struct StoredShares {
  const float* map;  ///< the image's map
  int64_t position, row, block;  ///< floats from one map position, row and channel block to the next

  /// The shares of window (ph, pw) in the eight channels `half` of channel block `b` of `grad`.
  __attribute__((target("avx2,fma"), always_inline)) void operator()(int b, int half, int64_t ph, int64_t pw,
                                                                      __m256 grad, __m256 (&share)[4]) const {
    const float* corner = map + b * block + 8 * half + 2 * ph * row + 2 * pw * position;
    const __m256 v0 = _mm256_loadu_ps(corner), v1 = _mm256_loadu_ps(corner + position);
    const __m256 v2 = _mm256_loadu_ps(corner + row), v3 = _mm256_loadu_ps(corner + row + position);
    const __m256 take1 = takesWindow8(v0, v1);
    const __m256 best1 = _mm256_blendv_ps(v0, v1, take1);
    const __m256 take2 = takesWindow8(best1, v2);
    const __m256 best2 = _mm256_blendv_ps(best1, v2, take2);
    const __m256 take3 = takesWindow8(best2, v3);
    const __m256 later2 = _mm256_or_ps(take2, take3);
    share[0] = _mm256_andnot_ps(_mm256_or_ps(take1, later2), grad);
    share[1] = _mm256_and_ps(_mm256_andnot_ps(later2, take1), grad);
    share[2] = _mm256_and_ps(_mm256_andnot_ps(take3, take2), grad);
    share[3] = _mm256_and_ps(take3, grad);
  }
};

/// WinnerShares16 on eight channels (AVX2).
struct WinnerShares {
  const uint8_t* winners;  ///< the image's winners [PH][PW][O]
  int64_t outChannels, pooledWidth;

  /// The shares of window (ph, pw) in the eight channels `half` of channel block `b` of `grad`.
  __attribute__((target("avx2,fma"), always_inline)) void operator()(int b, int half, int64_t ph, int64_t pw,
                                                                      __m256 grad, __m256 (&share)[4]) const {
    const uint8_t* at = winners + (ph * pooledWidth + pw) * outChannels + 16 * b + 8 * half;
    const __m256i winner = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(at)));
    for (int k = 0; k < 4; ++k)
      share[k] = _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(winner, _mm256_set1_epi32(k))), grad);
  }
};

/// `imageOf` with AVX2: each block of 16 channels as two halves of eight, one pass each over
/// the windows (the sums of a 3x3 kernel over one channel, nine registers, held for a whole
/// image). `sharesOf` is StoredShares or WinnerShares.
template <int Blocks, int K, int C, class Shares>
__attribute__((target("avx2,fma"))) void imageAvx2Of(const Geometry& g, const float* x, const Shares& sharesOf,
                                                     const float* dy, float* sums) {
  const UpperHalvesClearedOnExit clearOnExit;
  const int64_t kh0 = K ? K : g.kernelHeight, kw0 = K ? K : g.kernelWidth, channels = C ? C : g.channels;
  constexpr bool kInRegisters = K && C;
  constexpr int kHeld = kInRegisters ? K * K * C : 1;
  const int64_t gradPosition = g.grad.positionStride;
  for (int half = 0; half < 2 * Blocks; ++half) {
    const int b = half / 2;
    const float* grads = dy + b * g.grad.blockStride + 8 * (half % 2);
    float* out = sums + b * 16 + 8 * (half % 2);  // + tap * Blocks * 16
    __m256 held[kHeld];
#pragma GCC unroll 64
    for (int t = 0; t < kHeld; ++t) held[t] = _mm256_setzero_ps();
    for (int64_t ph = 0; ph < g.pooledHeight; ++ph)
      for (int64_t pw = 0; pw < g.pooledWidth; ++pw) {
        const __m256 grad = _mm256_loadu_ps(grads + (ph * g.pooledWidth + pw) * gradPosition);
        __m256 share[4];
        sharesOf(b, half % 2, ph, pw, grad, share);
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

/// Where one image's map or winners start: the map c (f32) or the winners (bytes).
struct ImageSource {
  const float* map;
  const uint8_t* winners;
};

/// One image of the step, from the stored map or from the winners.
template <int Blocks, int K, int C>
__attribute__((target("avx512f"))) void image(const Geometry& g, const float* x, ImageSource source, const float* dy,
                                              float* sums) {
  if (source.winners) {
    imageOf<Blocks, K, C>(g, x, WinnerShares16{source.winners, g.outChannels, g.pooledWidth}, dy, sums);
  } else {
    const StoredShares16 shares{source.map, g.map.positionStride, g.mapWidth * g.map.positionStride, g.map.blockStride};
    imageOf<Blocks, K, C>(g, x, shares, dy, sums);
  }
}

/// `image` with AVX2.
template <int Blocks, int K, int C>
__attribute__((target("avx2,fma"))) void imageAvx2(const Geometry& g, const float* x, ImageSource source,
                                                   const float* dy, float* sums) {
  if (source.winners) {
    imageAvx2Of<Blocks, K, C>(g, x, WinnerShares{source.winners, g.outChannels, g.pooledWidth}, dy, sums);
  } else {
    const StoredShares shares{source.map, g.map.positionStride, g.mapWidth * g.map.positionStride, g.map.blockStride};
    imageAvx2Of<Blocks, K, C>(g, x, shares, dy, sums);
  }
}

using ImageKernel = void (*)(const Geometry&, const float*, ImageSource, const float*, float*);

/// The image kernel for `g` (pickImageKernel), in AVX-512 or AVX2.
ImageKernel imageKernel(const Geometry& g) {
  if (hostHasAvx512())
    return pickImageKernel(g.outChannels, g.kernelHeight, g.kernelWidth, g.channels,
                           []<int Blocks, int K, int C>() -> ImageKernel { return &image<Blocks, K, C>; });
  return pickImageKernel(g.outChannels, g.kernelHeight, g.kernelWidth, g.channels,
                         []<int Blocks, int K, int C>() -> ImageKernel { return &imageAvx2<Blocks, K, C>; });
}

}  // namespace

ValueId poolWeightGradWinners(const ir::Graph& g, ValueId wgrad) {
  const ValueId dx = poolWeightGradSource(g, wgrad);
  if (dx < 0) return -1;
  const ValueId c = g.node(dx).operands[0];
  const std::vector<ValueId> readers = otherReaders(g, c, dx);
  return readers.size() == 1 && readers[0] < g.size() && convPoolSource(g, readers[0]) == c ? c : -1;
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
  // The pool gradient's map operand holds the map, or the winners (poolWeightGradWinners).
  const bool winners = poolWeightGradWinners(graph, call.value) >= 0;
  if (winners && call.isBlocked(pool.operands[0]))
    throw Error("conv_weight_grad " + std::to_string(call.value) + ": its pool's winners are stored channel-blocked");
  const ImageKernel run = imageKernel(g);
  const void* stored = call.operands[1];
#pragma omp parallel for schedule(static, 1) num_threads(parts) if (parts > 1)
  for (int part = 0; part < parts; ++part)
    for (int64_t n = images * part / parts; n < images * (part + 1) / parts; ++n) {
      const ImageSource source = winners ? ImageSource{nullptr, static_cast<const uint8_t*>(stored) + n * gradSize}
                                         : ImageSource{static_cast<const float*>(stored) + n * mapSize, nullptr};
      run(g, in + n * inSize, source, dy + n * gradSize, partial.data() + part * sums);
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
