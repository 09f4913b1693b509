// The native weight gradient of a convolution to few channels (see
// native_few_channel_weight_grad.h). x's channels are up to four masked AVX-512 registers;
// each spatial dim's taps are looked up in a table of x indices (-1: outside), so the inner
// loops do no divisions.
#include "runtime/cpu/native_few_channel_weight_grad.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "ir/attrs.h"
#include "ir/channels_last.h"
#include "runtime/cpu/host_isa.h"
#include "runtime/cpu/triangular_tiles.h"
#include "runtime/cpu/vector_state.h"

namespace weft::cpu {
namespace {

/// One image's geometry (2-D, channels-last) and, per dy index and tap, the x index it reads.
struct Geometry {
  int64_t height, width, channels;           ///< x: [height, width, channels]
  int64_t outHeight, outWidth, outChannels;  ///< dy: [outHeight, outWidth, outChannels]
  int64_t kernelHeight, kernelWidth;
  std::vector<int32_t> rowSource, columnSource;  ///< [oh * kernelHeight + kh], [ow * kernelWidth + kw]
  /// Where channel c of x's position p lies in an image: p * positionStride + (c / 16) *
  /// blockStride + c % 16 (channels-last: channels and 16; channel-blocked: 16 and H * W * 16).
  int64_t positionStride = 0, blockStride = 16;
};

/// The sources of one spatial dim: o * stride - padding + k * dilation, or -1 outside [0, extent).
std::vector<int32_t> sources(int64_t outExtent, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation,
                             int64_t extent) {
  std::vector<int32_t> table(static_cast<size_t>(outExtent * kernel));
  for (int64_t o = 0; o < outExtent; ++o)
    for (int64_t k = 0; k < kernel; ++k) {
      const int64_t i = o * stride - padding + k * dilation;
      table[static_cast<size_t>(o * kernel + k)] = i >= 0 && i < extent ? static_cast<int32_t>(i) : -1;
    }
  return table;
}

/// One image added into `acc` [O][KH][KW][16 * Tiles] (KW = the kernel's width).
template <int Tiles, int KW>
__attribute__((target("avx512f"))) void image(const Geometry& g, const float* x, const float* dy, float* acc) {
  const UpperHalvesClearedOnExit clearOnExit;  // SSE code runs after this kernel
  __mmask16 masks[Tiles];
  for (int t = 0; t < Tiles; ++t) {
    const int64_t left = std::clamp<int64_t>(g.channels - 16 * t, 0, 16);
    masks[t] = static_cast<__mmask16>((1u << left) - 1);
  }
  for (int64_t o = 0; o < g.outChannels; ++o)
    for (int64_t kh = 0; kh < g.kernelHeight; ++kh) {
      __m512 sums[KW][Tiles];
#pragma GCC unroll 4
      for (int k = 0; k < KW; ++k)
#pragma GCC unroll 4
        for (int t = 0; t < Tiles; ++t) sums[k][t] = _mm512_setzero_ps();
      for (int64_t oh = 0; oh < g.outHeight; ++oh) {
        const int32_t ih = g.rowSource[static_cast<size_t>(oh * g.kernelHeight + kh)];
        if (ih < 0) continue;
        const float* row = x + ih * g.width * g.positionStride;
        const float* grad = dy + oh * g.outWidth * g.outChannels + o;
        for (int64_t ow = 0; ow < g.outWidth; ++ow) {
          const __m512 v = _mm512_set1_ps(grad[ow * g.outChannels]);
          const int32_t* source = &g.columnSource[static_cast<size_t>(ow * KW)];
#pragma GCC unroll 4
          for (int k = 0; k < KW; ++k) {
            if (source[k] < 0) continue;
            const float* in = row + source[k] * g.positionStride;
#pragma GCC unroll 4
            for (int t = 0; t < Tiles; ++t)
              sums[k][t] = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(masks[t], in + t * g.blockStride), sums[k][t]);
          }
        }
      }
      float* target = acc + (o * g.kernelHeight + kh) * KW * 16 * Tiles;
#pragma GCC unroll 4
      for (int k = 0; k < KW; ++k)
#pragma GCC unroll 4
        for (int t = 0; t < Tiles; ++t) {
          float* at = target + (k * Tiles + t) * 16;
          _mm512_storeu_ps(at, _mm512_add_ps(_mm512_loadu_ps(at), sums[k][t]));
        }
    }
}

/// `image` with AVX2: registers of eight of x's channels, `Tiles` of them (KW x Tiles sums,
/// at most 12: x of up to 32 channels for a 3-wide kernel), into `acc` [O][KH][KW][16 *
/// tiles16] as `image` lays it out (tiles16: x's channels in sixteens).
template <int Tiles, int KW>
__attribute__((target("avx2,fma"))) void imageAvx2(const Geometry& g, const float* x, const float* dy, float* acc) {
  const UpperHalvesClearedOnExit clearOnExit;
  const int64_t tiles16 = (g.channels + 15) / 16;
  __m256i masks[Tiles];
  for (int t = 0; t < Tiles; ++t) masks[t] = lanesBefore8(8 * t, g.channels);
  for (int64_t o = 0; o < g.outChannels; ++o)
    for (int64_t kh = 0; kh < g.kernelHeight; ++kh) {
      __m256 sums[KW][Tiles];
#pragma GCC unroll 4
      for (int k = 0; k < KW; ++k)
#pragma GCC unroll 8
        for (int t = 0; t < Tiles; ++t) sums[k][t] = _mm256_setzero_ps();
      for (int64_t oh = 0; oh < g.outHeight; ++oh) {
        const int32_t ih = g.rowSource[static_cast<size_t>(oh * g.kernelHeight + kh)];
        if (ih < 0) continue;
        const float* row = x + ih * g.width * g.positionStride;
        const float* grad = dy + oh * g.outWidth * g.outChannels + o;
        for (int64_t ow = 0; ow < g.outWidth; ++ow) {
          const __m256 v = _mm256_broadcast_ss(grad + ow * g.outChannels);
          const int32_t* source = &g.columnSource[static_cast<size_t>(ow * KW)];
#pragma GCC unroll 4
          for (int k = 0; k < KW; ++k) {
            if (source[k] < 0) continue;
            const float* in = row + source[k] * g.positionStride;
#pragma GCC unroll 8
            for (int t = 0; t < Tiles; ++t) {  // channels 8t..: in their block of 16
              const float* at = in + (8 * t / 16) * g.blockStride + 8 * t % 16;
              sums[k][t] = _mm256_fmadd_ps(v, _mm256_maskload_ps(at, masks[t]), sums[k][t]);
            }
          }
        }
      }
      float* target = acc + (o * g.kernelHeight + kh) * KW * 16 * tiles16;
#pragma GCC unroll 4
      for (int k = 0; k < KW; ++k)
#pragma GCC unroll 8
        for (int t = 0; t < Tiles; ++t) {
          float* at = target + k * 16 * tiles16 + 8 * t;
          _mm256_storeu_ps(at, _mm256_add_ps(_mm256_loadu_ps(at), sums[k][t]));
        }
    }
}

using ImageKernel = void (*)(const Geometry&, const float*, const float*, float*);

/// The AVX2 image kernel for x's `channels` (at most kAvx2GradChannels) and kernels `width`
/// wide (at most 3).
ImageKernel imageKernelAvx2(int64_t channels, int64_t width) {
  auto ofWidth = [&]<int Tiles>() -> ImageKernel {
    return width == 1 ? &imageAvx2<Tiles, 1> : width == 2 ? &imageAvx2<Tiles, 2> : &imageAvx2<Tiles, 3>;
  };
  switch ((channels + 7) / 8) {
    case 1: return ofWidth.template operator()<1>();
    case 2: return ofWidth.template operator()<2>();
    case 3: return ofWidth.template operator()<3>();
    default: return ofWidth.template operator()<4>();
  }
}

template <int Tiles>
ImageKernel kernelOfWidth(int64_t width) {
  switch (width) {
    case 1: return &image<Tiles, 1>;
    case 2: return &image<Tiles, 2>;
    case 3: return &image<Tiles, 3>;
    default: return &image<Tiles, 4>;
  }
}

/// The image kernel for `tiles` registers of x's channels and kernels `width` wide.
ImageKernel imageKernel(int tiles, int64_t width) {
  switch (tiles) {
    case 1: return kernelOfWidth<1>(width);
    case 2: return kernelOfWidth<2>(width);
    case 3: return kernelOfWidth<3>(width);
    default: return kernelOfWidth<4>(width);
  }
}

/// Images run on the worker threads from this many multiply-adds.
constexpr int64_t kParallelWork = int64_t{1} << 18;

}  // namespace

bool runsFewChannelWeightGrad(const ir::Graph& g, ir::ValueId v) {
  const bool avx512 = hostHasAvx512(), avx2 = hostHasAvx2Fma();
  const ir::Node& node = g.node(v);
  if (!(avx512 || avx2) || node.op != ir::OpKind::ConvWeightGrad || node.type.dtype != ir::DType::f32 ||
      !ir::isChannelsLast(node.op, node.attrs) || node.operands.size() != 2)
    return false;
  const ir::TensorType &x = g.type(node.operands[0]), &dy = g.type(node.operands[1]);
  ir::AttrReader attrs(node.attrs, node.op);
  return x.dtype == ir::DType::f32 && dy.dtype == ir::DType::f32 && x.rank() == 4 && dy.rank() == 4 &&
         attrs.i("groups") == 1 && attrs.ints("kernel").size() == 2 && attrs.ints("kernel")[1] <= kMaxGradKernelWidth &&
         dy.shape[3] <= kFewGradChannels &&
         (avx512 ? x.shape[3] <= kVectorChannels
                 : x.shape[3] <= kAvx2GradChannels && attrs.ints("kernel")[1] <= kAvx2GradKernelWidth);
}

void runFewChannelWeightGrad(const NativeCall& call) {
  const ir::Node& node = call.graph.node(call.value);
  ir::AttrReader attrs(node.attrs, node.op);
  const ir::Shape &x = call.graph.type(node.operands[0]).shape, &dy = call.graph.type(node.operands[1]).shape;
  const auto &kernel = attrs.ints("kernel"), &stride = attrs.ints("stride"), &padding = attrs.ints("padding"),
             &dilation = attrs.ints("dilation");
  Geometry g{x[1], x[2], x[3], dy[1], dy[2], dy[3], kernel[0], kernel[1],
             sources(dy[1], kernel[0], stride[0], padding[0], dilation[0], x[1]),
             sources(dy[2], kernel[1], stride[1], padding[1], dilation[1], x[2])};
  const ImageLayout xAt(call.isBlocked(node.operands[0]), g.height * g.width, g.channels);  // blocked: 16k channels
  g.positionStride = xAt.positionStride;
  g.blockStride = xAt.blockStride;
  const int tiles = static_cast<int>(std::max<int64_t>(1, (g.channels + 15) / 16));
  const int64_t taps = g.kernelHeight * g.kernelWidth, sums = g.outChannels * taps * 16 * tiles;
  const int64_t images = x[0], inSize = g.height * g.width * g.channels, gradSize = g.outHeight * g.outWidth * g.outChannels;
  const bool parallel = images > 1 && images * gradSize * taps * g.channels >= kParallelWork;
  const int parts = parallel ? static_cast<int>(std::min<int64_t>(images, omp_get_max_threads())) : 1;
  std::vector<float> partial(static_cast<size_t>(parts * sums), 0.0f);
  const ImageKernel run = hostHasAvx512() ? imageKernel(tiles, g.kernelWidth) : imageKernelAvx2(g.channels, g.kernelWidth);
  const auto* in = static_cast<const float*>(call.operands[0]);
  const auto* grad = static_cast<const float*>(call.operands[1]);
#pragma omp parallel for schedule(static, 1) num_threads(parts) if (parts > 1)
  for (int part = 0; part < parts; ++part)
    for (int64_t n = images * part / parts; n < images * (part + 1) / parts; ++n)
      run(g, in + n * inSize, grad + n * gradSize, partial.data() + part * sums);
  for (int part = 1; part < parts; ++part)  // in part order
    for (int64_t i = 0; i < sums; ++i) partial[static_cast<size_t>(i)] += partial[static_cast<size_t>(part * sums + i)];
  // The result [O, C, KH, KW] from the sums [O][KH][KW][16 * tiles].
  auto* result = static_cast<float*>(call.result);
  for (int64_t o = 0; o < g.outChannels; ++o)
    for (int64_t c = 0; c < g.channels; ++c)
      for (int64_t k = 0; k < taps; ++k)
        result[(o * g.channels + c) * taps + k] = partial[static_cast<size_t>((o * taps + k) * 16 * tiles + c)];
}

}  // namespace weft::cpu
