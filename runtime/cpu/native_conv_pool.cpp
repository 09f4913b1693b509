// The native conv + max pool step (see native_conv_pool.h). Per image, per pooled position:
// the window's four conv positions accumulate bias + x * w over the kernel taps and input
// channels in AVX-512 registers (16 result channels each; the four side by side, so that
// their FMAs overlap instead of waiting on one another), or AVX2 ones (a block of 16 result
// channels at a time), their maximum (and ReLU, which commutes with it) is stored once, and
// where a weight gradient's pool step reads them, each window's winner (a byte per channel).
#include "runtime/cpu/native_conv_pool.h"

#include <immintrin.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "ir/attrs.h"
#include "ir/channels_last.h"
#include "ir/error.h"
#include "runtime/cpu/host_isa.h"
#include "runtime/cpu/native_pool_weight_grad.h"
#include "runtime/cpu/vector_state.h"
#include "runtime/cpu/window_max.h"

namespace weft::cpu {
namespace {

using ir::OpKind;
using ir::ValueId;

/// One image's geometry: x [H, W, C] channels-last, the conv [OH, OW, O], the pool [PH, PW, O].
struct Geometry {
  int64_t height, width, channels, outChannels, kernelHeight, kernelWidth, padTop, padLeft;
  int64_t pooledHeight, pooledWidth;
};

/// Where one image's values go: position p, channel block b at p * positionStride + b * blockStride.
struct ImageOut {
  float* at;
  int64_t positionStride, blockStride;
};

/// Weight vector `b` of tap `tap`: from the registers `preloaded` when K and C are known,
/// else loaded from `w` ([taps][o]).
template <int Blocks, int K, int C>
__attribute__((target("avx512f"))) inline __m512 weightOf(const __m512* preloaded, const float* w, int64_t o,
                                                          int64_t tap, int b) {
  if constexpr (K && C) return preloaded[tap * Blocks + b];
  else return _mm512_loadu_ps(w + tap * o + 16 * b);
}

/// The winners of sixteen channels' window (0-3: the position of window order that
/// max_pool_grad gives the window's gradient to) as bytes at `codes`, from its four conv
/// values before the ReLU and `pooled`, the window's maximum as the pool stores it: the first
/// position whose value reaches it, or the first when the ReLU made them all 0. That is the
/// rule the pool gradient applies to the map (takesWindow16 over the ReLU's values), which
/// channels holding a NaN take as it is (a NaN wins its window). lenet's conv-pool step took
/// 0.234 ms with the rule for every window, 0.162 without winners (AMD EPYC, fastest of 4).
__attribute__((target("avx512f"), always_inline)) inline void storeWinners16(__m512 v0, __m512 v1, __m512 v2,
                                                                            __m512 v3, __m512 pooled, bool relu,
                                                                            uint8_t* codes) {
  __m512i winner = _mm512_setzero_si512();
  if (_mm512_cmp_ps_mask(pooled, pooled, _CMP_UNORD_Q) == 0) {
    __mmask16 first = _mm512_cmp_ps_mask(v0, pooled, _CMP_GE_OQ);
    if (relu) first |= _mm512_cmp_ps_mask(pooled, _mm512_setzero_ps(), _CMP_LE_OQ);
    winner = _mm512_set1_epi32(3);
    winner = _mm512_mask_mov_epi32(winner, _mm512_cmp_ps_mask(v2, pooled, _CMP_GE_OQ), _mm512_set1_epi32(2));
    winner = _mm512_mask_mov_epi32(winner, _mm512_cmp_ps_mask(v1, pooled, _CMP_GE_OQ), _mm512_set1_epi32(1));
    winner = _mm512_maskz_mov_epi32(static_cast<__mmask16>(~first), winner);
  } else {
    const __m512 values[4] = {v0, v1, v2, v3};
    __m512 best = relu ? relu16(v0) : v0;
    for (int q = 1; q < 4; ++q) {
      const __m512 v = relu ? relu16(values[q]) : values[q];
      const __mmask16 takes = takesWindow16(best, v);
      best = _mm512_mask_mov_ps(best, takes, v);
      winner = _mm512_mask_mov_epi32(winner, takes, _mm512_set1_epi32(q));
    }
  }
  // (masked: GCC 12 warns that the unmasked form's undefined source may be used)
  _mm_storeu_si128(reinterpret_cast<__m128i*>(codes), _mm512_maskz_cvtepi32_epi8(0xFFFF, winner));
}

/// storeWinners16 for eight channels with AVX2.
__attribute__((target("avx2"), always_inline)) inline void storeWinners8(const __m256 (&values)[4], __m256 pooled,
                                                                        bool relu, uint8_t* codes) {
  __m256i winner = _mm256_setzero_si256();
  if (_mm256_movemask_ps(_mm256_cmp_ps(pooled, pooled, _CMP_UNORD_Q)) == 0) {
    __m256 first = _mm256_cmp_ps(values[0], pooled, _CMP_GE_OQ);
    if (relu) first = _mm256_or_ps(first, _mm256_cmp_ps(pooled, _mm256_setzero_ps(), _CMP_LE_OQ));
    winner = _mm256_set1_epi32(3);
    winner = _mm256_blendv_epi8(winner, _mm256_set1_epi32(2),
                                _mm256_castps_si256(_mm256_cmp_ps(values[2], pooled, _CMP_GE_OQ)));
    winner = _mm256_blendv_epi8(winner, _mm256_set1_epi32(1),
                                _mm256_castps_si256(_mm256_cmp_ps(values[1], pooled, _CMP_GE_OQ)));
    winner = _mm256_andnot_si256(_mm256_castps_si256(first), winner);
  } else {
    __m256 best = relu ? relu8(values[0]) : values[0];
    for (int q = 1; q < 4; ++q) {
      const __m256 v = relu ? relu8(values[q]) : values[q];
      const __m256 takes = takesWindow8(best, v);
      best = _mm256_blendv_ps(best, v, takes);
      winner = _mm256_blendv_epi8(winner, _mm256_set1_epi32(q), _mm256_castps_si256(takes));
    }
  }
  const __m128i words = _mm_packus_epi32(_mm256_castsi256_si128(winner), _mm256_extracti128_si256(winner, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(codes), _mm_packus_epi16(words, words));
}

/// One image: `w` as [KH][KW][C][O], `bias` O values (zeros without one), the pool's result
/// at `out` and, when `conv.at` is set, the conv's at `conv`, when `winners` is, each
/// window's winners there ([PH][PW][O] bytes, storeWinners16). K and C are the kernel's extent
/// and the input channels when known at compile time (0: read from `g`), so that the taps'
/// loops unroll and the accumulators stay in registers.
template <int Blocks, int K, int C>
__attribute__((target("avx512f"))) void image(const Geometry& g, const float* x, const float* w, const float* bias,
                                              bool relu, ImageOut out, ImageOut conv, uint8_t* winners) {
  const UpperHalvesClearedOnExit clearOnExit;  // SSE code runs after this kernel
  const int64_t o = g.outChannels, kh0 = K ? K : g.kernelHeight, kw0 = K ? K : g.kernelWidth;
  const int64_t channels = C ? C : g.channels;
  // With the kernel's extent and channels known, every weight vector stays in a register.
  constexpr int kPreloaded = K && C ? K * K * C * Blocks : 1;
  __m512 preloaded[kPreloaded];
  if constexpr (K && C)
    for (int t = 0; t < kPreloaded; ++t) preloaded[t] = _mm512_loadu_ps(w + (t / Blocks) * o + 16 * (t % Blocks));
  for (int64_t ph = 0; ph < g.pooledHeight; ++ph)
    for (int64_t pw = 0; pw < g.pooledWidth; ++pw) {
      __m512 best[Blocks];
      for (int b = 0; b < Blocks; ++b) best[b] = _mm512_set1_ps(-__builtin_inff());
      // Every tap of the window's four positions inside the image: no checks per tap.
      const bool inside = 2 * ph - g.padTop >= 0 && 2 * ph + 1 + kh0 - 1 - g.padTop < g.height &&
                          2 * pw - g.padLeft >= 0 && 2 * pw + 1 + kw0 - 1 - g.padLeft < g.width;
      // The window's four conv positions (i, j) = (q / 2, q % 2), accumulated side by side
      // inside the image (independent chains of FMAs), one after another at its border.
      __m512 acc[4][Blocks];
      for (int q = 0; q < 4; ++q)
        for (int b = 0; b < Blocks; ++b) acc[q][b] = _mm512_loadu_ps(bias + 16 * b);
      if (inside) {
        const float* corner = x + ((2 * ph - g.padTop) * g.width + (2 * pw - g.padLeft)) * channels;
#pragma GCC unroll 8
        for (int64_t kh = 0; kh < kh0; ++kh)
#pragma GCC unroll 8
          for (int64_t kw = 0; kw < kw0; ++kw)
#pragma GCC unroll 4
            for (int64_t c = 0; c < channels; ++c) {
              const int64_t tap = (kh * kw0 + kw) * channels + c;
#pragma GCC unroll 4
              for (int q = 0; q < 4; ++q) {
                const __m512 v = _mm512_set1_ps(corner[((kh + q / 2) * g.width + kw + q % 2) * channels + c]);
#pragma GCC unroll 4
                for (int b = 0; b < Blocks; ++b) acc[q][b] = _mm512_fmadd_ps(v, weightOf<Blocks, K, C>(preloaded, w, o, tap, b), acc[q][b]);
              }
            }
      } else {
        for (int q = 0; q < 4; ++q)
          for (int64_t kh = 0; kh < kh0; ++kh) {
            const int64_t ih = 2 * ph + q / 2 + kh - g.padTop;
            if (ih < 0 || ih >= g.height) continue;
            for (int64_t kw = 0; kw < kw0; ++kw) {
              const int64_t iw = 2 * pw + q % 2 + kw - g.padLeft;
              if (iw < 0 || iw >= g.width) continue;
              const float* xs = x + (ih * g.width + iw) * channels;
              for (int64_t c = 0; c < channels; ++c) {
                const __m512 v = _mm512_set1_ps(xs[c]);
                const int64_t tap = (kh * kw0 + kw) * channels + c;
                for (int b = 0; b < Blocks; ++b) acc[q][b] = _mm512_fmadd_ps(v, weightOf<Blocks, K, C>(preloaded, w, o, tap, b), acc[q][b]);
              }
            }
          }
      }
      for (int q = 0; q < 4; ++q) {
        for (int b = 0; b < Blocks; ++b) best[b] = windowMax16(best[b], acc[q][b]);
        if (conv.at) {
          const int64_t oh = 2 * ph + q / 2, ow = 2 * pw + q % 2;
          float* at = conv.at + (oh * 2 * g.pooledWidth + ow) * conv.positionStride;  // the map is 2 PH x 2 PW
          for (int b = 0; b < Blocks; ++b) _mm512_storeu_ps(at + b * conv.blockStride, relu ? relu16(acc[q][b]) : acc[q][b]);
        }
      }
      float* target = out.at + (ph * g.pooledWidth + pw) * out.positionStride;
      for (int b = 0; b < Blocks; ++b) {
        const __m512 pooled = relu ? relu16(best[b]) : best[b];
        _mm512_storeu_ps(target + b * out.blockStride, pooled);
        if (winners)
          storeWinners16(acc[0][b], acc[1][b], acc[2][b], acc[3][b], pooled, relu,
                         winners + (ph * g.pooledWidth + pw) * o + 16 * b);
      }
    }
}

/// windowMax16 on eight lanes: vmaxps keeps `best` on ties and NaNs, a NaN `v` is blended in.
__attribute__((target("avx2"))) inline __m256 windowMax8(__m256 best, __m256 v) {
  return _mm256_blendv_ps(_mm256_max_ps(v, best), v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

/// `image` with AVX2: the result's 16-channel blocks one at a time, each as two vectors of
/// eight for the window's four positions (8 accumulators); per tap the block's two weight
/// vectors are loaded once for the four positions (AVX2's 16 registers hold no kernel's
/// preloaded weights).
template <int Blocks, int K, int C>
__attribute__((target("avx2,fma"))) void imageAvx2(const Geometry& g, const float* x, const float* w,
                                                   const float* bias, bool relu, ImageOut out, ImageOut conv,
                                                   uint8_t* winners) {
  const UpperHalvesClearedOnExit clearOnExit;
  const int64_t o = g.outChannels, kh0 = K ? K : g.kernelHeight, kw0 = K ? K : g.kernelWidth;
  const int64_t channels = C ? C : g.channels;
  auto at = [](const ImageOut& image, int64_t position, int64_t channel) {  // channel: a multiple of 8
    return image.at + position * image.positionStride + (channel / 16) * image.blockStride + channel % 16;
  };
  for (int64_t ph = 0; ph < g.pooledHeight; ++ph)
    for (int64_t pw = 0; pw < g.pooledWidth; ++pw) {
      const bool inside = 2 * ph - g.padTop >= 0 && 2 * ph + 1 + kh0 - 1 - g.padTop < g.height &&
                          2 * pw - g.padLeft >= 0 && 2 * pw + 1 + kw0 - 1 - g.padLeft < g.width;
      const float* corner = x + ((2 * ph - g.padTop) * g.width + (2 * pw - g.padLeft)) * channels;
      for (int b = 0; b < Blocks; ++b) {
        const float* wb = w + 16 * b;
        __m256 acc[4][2];
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) {
          acc[q][0] = _mm256_loadu_ps(bias + 16 * b);
          acc[q][1] = _mm256_loadu_ps(bias + 16 * b + 8);
        }
        if (inside) {
#pragma GCC unroll 8
          for (int64_t kh = 0; kh < kh0; ++kh)
#pragma GCC unroll 8
            for (int64_t kw = 0; kw < kw0; ++kw)
#pragma GCC unroll 4
              for (int64_t c = 0; c < channels; ++c) {
                const int64_t tap = (kh * kw0 + kw) * channels + c;
                const __m256 w0 = _mm256_loadu_ps(wb + tap * o), w1 = _mm256_loadu_ps(wb + tap * o + 8);
#pragma GCC unroll 4
                for (int q = 0; q < 4; ++q) {
                  const __m256 v = _mm256_broadcast_ss(corner + ((kh + q / 2) * g.width + kw + q % 2) * channels + c);
                  acc[q][0] = _mm256_fmadd_ps(v, w0, acc[q][0]);
                  acc[q][1] = _mm256_fmadd_ps(v, w1, acc[q][1]);
                }
              }
        } else {
#pragma GCC unroll 4
          for (int q = 0; q < 4; ++q)
            for (int64_t kh = 0; kh < kh0; ++kh) {
              const int64_t ih = 2 * ph + q / 2 + kh - g.padTop;
              if (ih < 0 || ih >= g.height) continue;
              for (int64_t kw = 0; kw < kw0; ++kw) {
                const int64_t iw = 2 * pw + q % 2 + kw - g.padLeft;
                if (iw < 0 || iw >= g.width) continue;
                const float* xs = x + (ih * g.width + iw) * channels;
                for (int64_t c = 0; c < channels; ++c) {
                  const __m256 v = _mm256_broadcast_ss(xs + c);
                  const int64_t tap = (kh * kw0 + kw) * channels + c;
                  acc[q][0] = _mm256_fmadd_ps(v, _mm256_loadu_ps(wb + tap * o), acc[q][0]);
                  acc[q][1] = _mm256_fmadd_ps(v, _mm256_loadu_ps(wb + tap * o + 8), acc[q][1]);
                }
              }
            }
        }
        // Every loop over the accumulators unrolled: indexed at run time they would live in memory.
        __m256 best[2] = {_mm256_set1_ps(-__builtin_inff()), _mm256_set1_ps(-__builtin_inff())};
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) {
#pragma GCC unroll 2
          for (int h = 0; h < 2; ++h) best[h] = windowMax8(best[h], acc[q][h]);
          if (conv.at) {
            const int64_t position = (2 * ph + q / 2) * 2 * g.pooledWidth + 2 * pw + q % 2;  // the map is 2 PH x 2 PW
#pragma GCC unroll 2
            for (int h = 0; h < 2; ++h)
              _mm256_storeu_ps(at(conv, position, 16 * b + 8 * h), relu ? relu8(acc[q][h]) : acc[q][h]);
          }
        }
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
          const __m256 pooled = relu ? relu8(best[h]) : best[h];
          _mm256_storeu_ps(at(out, ph * g.pooledWidth + pw, 16 * b + 8 * h), pooled);
          if (winners)
            storeWinners8({acc[0][h], acc[1][h], acc[2][h], acc[3][h]}, pooled, relu,
                          winners + (ph * g.pooledWidth + pw) * o + 16 * b + 8 * h);
        }
      }
    }
}

using ImageKernel = void (*)(const Geometry&, const float*, const float*, const float*, bool, ImageOut, ImageOut,
                             uint8_t*);

/// `image` of a 3x3 kernel over one channel, one block of 16 result channels at a time: its 9
/// weight vectors, 4 sums and the winners fit in registers, where all blocks at once kept 18
/// weight vectors and 8 sums and spilled (on the AMD EPYC Zen 4 of stop 50, lenet's conv-pool
/// step 0.256-0.266 -> 0.220-0.232 ms in training, 0.204 -> 0.187 in inference, fastest
/// per-step means of 6 alternating runs).
template <int Blocks>
__attribute__((target("avx512f"))) void imageByBlock(const Geometry& g, const float* x, const float* w,
                                                     const float* bias, bool relu, ImageOut out, ImageOut conv,
                                                     uint8_t* winners) {
  const ImageKernel block = &image<1, 3, 1>;
  for (int b = 0; b < Blocks; ++b)
    block(g, x, w + 16 * b, bias + 16 * b, relu,
          ImageOut{out.at + b * out.blockStride, out.positionStride, out.blockStride},
          ImageOut{conv.at ? conv.at + b * conv.blockStride : nullptr, conv.positionStride, conv.blockStride},
          winners ? winners + 16 * b : nullptr);
}

/// The image kernel for `g` (pickImageKernel), in AVX-512 (a 3x3 kernel over one channel by
/// blocks: imageByBlock) or AVX2.
ImageKernel imageKernel(const Geometry& g) {
  if (hostHasAvx512())
    return pickImageKernel(g.outChannels, g.kernelHeight, g.kernelWidth, g.channels,
                           []<int Blocks, int K, int C>() -> ImageKernel {
                             if constexpr (K == 3 && C == 1) return &imageByBlock<Blocks>;
                             else return &image<Blocks, K, C>;
                           });
  return pickImageKernel(g.outChannels, g.kernelHeight, g.kernelWidth, g.channels,
                         []<int Blocks, int K, int C>() -> ImageKernel { return &imageAvx2<Blocks, K, C>; });
}

}  // namespace

ValueId convPoolSource(const ir::Graph& g, ValueId pool) { return hostHasAvx512() || hostHasAvx2Fma() ? convPoolShape(g, pool) : -1; }

ValueId convPoolShape(const ir::Graph& g, ValueId pool) {
  const ir::Node& node = g.node(pool);
  if (node.op != OpKind::MaxPool || node.type.dtype != ir::DType::f32 || node.type.rank() != 4 ||
      !ir::isChannelsLast(node.op, node.attrs))
    return -1;
  ir::AttrReader pooling(node.attrs, node.op);
  if (pooling.ints("window") != std::vector<int64_t>{2, 2} || pooling.ints("stride") != std::vector<int64_t>{2, 2} ||
      pooling.ints("padding") != std::vector<int64_t>{0, 0})
    return -1;
  const ValueId c = node.operands[0];
  const std::optional<ConvEpilogue> body = convEpilogueOf(g, c);
  if (!body || body->residual >= 0 || g.node(c).op != OpKind::Fused) return -1;
  // Other readers (a training step's pool and ReLU gradients) come after the pool, and its
  // windows cover the whole map, so that the step can write it.
  const bool covered = g.type(c).shape[1] % 2 == 0 && g.type(c).shape[2] % 2 == 0;
  for (ValueId reader : otherReaders(g, c, pool))
    if (!covered || reader < pool || reader == g.size()) return -1;  // g.size(): an output
  const ir::Node& conv = *body->conv;
  ir::AttrReader attrs(conv.attrs, conv.op);
  const ir::TensorType &x = g.type(g.node(c).operands[0]), &w = g.type(g.node(c).operands[1]);
  const int64_t outChannels = g.type(c).shape.back();
  const bool unit = attrs.ints("stride") == std::vector<int64_t>{1, 1} && attrs.ints("dilation") == std::vector<int64_t>{1, 1};
  if (!ir::isChannelsLast(conv.op, conv.attrs) || attrs.i("groups") != 1 || !unit || x.dtype != ir::DType::f32 ||
      w.dtype != ir::DType::f32 || x.rank() != 4 || w.rank() != 4 || x.shape[3] > kMaxConvPoolInputs ||
      outChannels % 16 != 0 || outChannels > 64 || w.shape[2] > 7 || w.shape[3] > 7)
    return -1;
  return c;
}

ConvPoolWeights convPoolWeights(const ir::Graph& g, ValueId conv, const std::vector<const void*>& operands) {
  const ConvEpilogue body = *convEpilogueOf(g, conv);
  const ir::Shape& w = g.type(g.node(conv).operands[1]).shape;  // [O, C, KH, KW]
  const int64_t outChannels = w[0], channels = w[1], kernelTaps = w[2] * w[3];
  ConvPoolWeights weights{std::vector<float>(static_cast<size_t>(kernelTaps * channels * outChannels)),
                          std::vector<float>(static_cast<size_t>(outChannels), 0.0f)};
  const auto* weight = static_cast<const float*>(operands[1]);
  for (int64_t o = 0; o < outChannels; ++o)
    for (int64_t ch = 0; ch < channels; ++ch)
      for (int64_t k = 0; k < kernelTaps; ++k)
        weights.taps[static_cast<size_t>((k * channels + ch) * outChannels + o)] =
            weight[(o * channels + ch) * kernelTaps + k];
  if (body.bias >= 0) {
    const auto* b = static_cast<const float*>(operands[static_cast<size_t>(body.bias)]);
    const bool single = g.type(g.node(conv).operands[static_cast<size_t>(body.bias)]).numel() == 1;
    for (int64_t o = 0; o < outChannels; ++o) weights.bias[static_cast<size_t>(o)] = b[single ? 0 : o];
  }
  return weights;
}

bool convPoolWritesWinners(const ir::Graph& g, ValueId pool) {
  const ValueId c = convPoolSource(g, pool);
  if (c < 0) return false;
  const std::vector<ValueId> readers = otherReaders(g, c, pool);
  if (readers.size() != 1 || readers[0] >= g.size() || g.node(readers[0]).op != OpKind::MaxPoolGrad) return false;
  const std::vector<ValueId> weightGrad = otherReaders(g, readers[0], -1);
  return weightGrad.size() == 1 && weightGrad[0] < g.size() && poolWeightGradWinners(g, weightGrad[0]) == c;
}

bool convPoolWritesConv(const ir::Graph& g, ValueId pool) {
  const ValueId c = convPoolSource(g, pool);
  return c >= 0 && !otherReaders(g, c, pool).empty() && !convPoolWritesWinners(g, pool);
}

void runConvPool(const NativeCall& call) {
  const ir::Graph& g = call.graph;
  const ValueId c = g.node(call.value).operands[0];
  const ConvEpilogue body = *convEpilogueOf(g, c);
  const ir::Shape &x = g.type(g.node(c).operands[0]).shape, &w = g.type(g.node(c).operands[1]).shape;
  const ir::Shape &conv = g.type(c).shape, &pooled = g.node(call.value).type.shape;
  const auto& padding = ir::AttrReader(body.conv->attrs, body.conv->op).ints("padding");
  if (call.isBlocked(g.node(c).operands[0]))
    throw Error("max_pool " + std::to_string(call.value) + ": its convolution's input is stored channel-blocked");
  const Geometry geo{x[1], x[2], x[3], conv[3], w[2], w[3], padding[0], padding[1], pooled[1], pooled[2]};
  const ConvPoolWeights weights = convPoolWeights(g, c, call.operands);
  const std::vector<float>&taps = weights.taps, &bias = weights.bias;
  const ImageLayout out(call.isBlocked(call.value), geo.pooledHeight * geo.pooledWidth, geo.outChannels);
  const ImageLayout convOut(call.isBlocked(c), conv[1] * conv[2], geo.outChannels);
  // With readers of its own, the conv's value is the last operand (convPoolWritesConv), or
  // its windows' winners are (convPoolWritesWinners).
  const size_t convOperands = g.node(c).operands.size();
  void* written = call.operands.size() > convOperands ? const_cast<void*>(call.operands.back()) : nullptr;
  const bool winnersOnly = written && convPoolWritesWinners(g, call.value);
  auto* convMap = winnersOnly ? nullptr : static_cast<float*>(written);
  auto* winners = winnersOnly ? static_cast<uint8_t*>(written) : nullptr;
  const int64_t inSize = geo.height * geo.width * geo.channels, outSize = ir::numElements(pooled) / pooled[0];
  const int64_t convSize = ir::numElements(conv) / conv[0];
  const ImageKernel kernel = imageKernel(geo);
  const auto* in = static_cast<const float*>(call.operands[0]);
  auto* result = static_cast<float*>(call.result);
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < x[0]; ++n)
    kernel(geo, in + n * inSize, taps.data(), bias.data(), body.relu,
           ImageOut{result + n * outSize, out.positionStride, out.blockStride},
           ImageOut{convMap ? convMap + n * convSize : nullptr, convOut.positionStride, convOut.blockStride},
           winners ? winners + n * outSize : nullptr);
}

}  // namespace weft::cpu
