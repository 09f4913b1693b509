// The native deconvolution to few channels (see native_deconv.h). Per image: blocks of
// input positions (8 at a time for one register of taps, fewer for more) accumulate
// x[p, c] * w[c, 0:taps] over the channels in registers (the block's independent FMA chains
// hide their latency), then each position's values are added to the output positions its taps
// reach. The output image is zeroed first: positions no tap reaches stay zero.
#include "runtime/cpu/native_deconv.h"

#include <immintrin.h>

#include <algorithm>

#include "ir/attrs.h"
#include "ir/channels_last.h"

namespace weft::cpu {
namespace {

/// One image's geometry (2-D, channels-last).
struct DeconvGeometry {
  int64_t height, width, channels;        ///< x: [height, width, channels]
  int64_t outHeight, outWidth, outChannels;  ///< the result: [outHeight, outWidth, outChannels]
  int64_t kernelHeight, kernelWidth;
  int64_t stride[2], padding[2], dilation[2];
  int64_t taps() const { return outChannels * kernelHeight * kernelWidth; }
};

/// Adds the `taps` values of input position (h, w) to the output positions they reach.
void scatter(const DeconvGeometry& g, int64_t h, int64_t w, const float* values, float* y) {
  const int64_t kernelTaps = g.kernelHeight * g.kernelWidth;
  for (int64_t kh = 0; kh < g.kernelHeight; ++kh) {
    const int64_t oh = h * g.stride[0] - g.padding[0] + kh * g.dilation[0];
    if (oh < 0 || oh >= g.outHeight) continue;
    for (int64_t kw = 0; kw < g.kernelWidth; ++kw) {
      const int64_t ow = w * g.stride[1] - g.padding[1] + kw * g.dilation[1];
      if (ow < 0 || ow >= g.outWidth) continue;
      float* target = y + (oh * g.outWidth + ow) * g.outChannels;
      for (int64_t o = 0; o < g.outChannels; ++o) target[o] += values[o * kernelTaps + kh * g.kernelWidth + kw];
    }
  }
}

/// One image with `Tiles` registers of taps per position and `Block` positions at a time.
template <int Tiles, int Block>
__attribute__((target("avx512f"))) void deconvImage(const DeconvGeometry& g, const float* x, const float* w,
                                                    float* y) {
  const int64_t taps = g.taps(), positions = g.height * g.width;
  std::fill(y, y + g.outHeight * g.outWidth * g.outChannels, 0.0f);
  __mmask16 masks[Tiles];
  for (int t = 0; t < Tiles; ++t) {
    const int64_t left = std::clamp<int64_t>(taps - 16 * t, 0, 16);
    masks[t] = static_cast<__mmask16>((1u << left) - 1);
  }
  alignas(64) float values[Block][Tiles * 16];
  for (int64_t p0 = 0; p0 < positions; p0 += Block) {
    const int64_t count = std::min<int64_t>(Block, positions - p0);
    // The block loops are unrolled so that the accumulators stay in registers.
    __m512 acc[Block][Tiles];
#pragma GCC unroll 8
    for (int b = 0; b < Block; ++b)
#pragma GCC unroll 4
      for (int t = 0; t < Tiles; ++t) acc[b][t] = _mm512_setzero_ps();
    const float* rows[Block];  // a block past the last position reads row 0 again (never scattered)
#pragma GCC unroll 8
    for (int b = 0; b < Block; ++b) rows[b] = x + (p0 + (b < count ? b : 0)) * g.channels;
    for (int64_t c = 0; c < g.channels; ++c) {
      __m512 weights[Tiles];
#pragma GCC unroll 4
      for (int t = 0; t < Tiles; ++t) weights[t] = _mm512_maskz_loadu_ps(masks[t], w + c * taps + 16 * t);
#pragma GCC unroll 8
      for (int b = 0; b < Block; ++b) {
        const __m512 v = _mm512_set1_ps(rows[b][c]);
#pragma GCC unroll 4
        for (int t = 0; t < Tiles; ++t) acc[b][t] = _mm512_fmadd_ps(v, weights[t], acc[b][t]);
      }
    }
#pragma GCC unroll 8
    for (int b = 0; b < Block; ++b)
#pragma GCC unroll 4
      for (int t = 0; t < Tiles; ++t) _mm512_store_ps(values[b] + 16 * t, acc[b][t]);
    for (int64_t b = 0; b < count; ++b) {
      const int64_t p = p0 + b;
      scatter(g, p / g.width, p % g.width, values[b], y);
    }
  }
}

using ImageKernel = void (*)(const DeconvGeometry&, const float*, const float*, float*);

/// The image kernel for `taps` values per position (at most kNativeDeconvTaps).
ImageKernel imageKernel(int64_t taps) {
  if (taps <= 16) return &deconvImage<1, 8>;
  if (taps <= 32) return &deconvImage<2, 4>;
  if (taps <= 48) return &deconvImage<3, 2>;
  return &deconvImage<4, 2>;
}

}  // namespace

bool runsNativeDeconv(const ir::Graph& g, ir::ValueId v) {
  const ir::Node& node = g.node(v);
  if (node.op != ir::OpKind::ConvTranspose || !ir::isChannelsLast(node.op, node.attrs)) return false;
  if (node.type.dtype != ir::DType::f32 || node.type.rank() != 4) return false;
  const ir::Shape& w = g.type(node.operands[1]).shape;
  ir::AttrReader attrs(node.attrs, node.op);
  const int64_t outChannels = node.type.shape[3];
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  return avx512 && attrs.i("groups") == 1 && w.size() == 4 && outChannels <= kNativeDeconvChannels &&
         outChannels * w[2] * w[3] <= kNativeDeconvTaps && g.type(node.operands[0]).dtype == ir::DType::f32;
}

void runNativeDeconv(const NativeCall& call) {
  const ir::Node& node = call.graph.node(call.value);
  ir::AttrReader attrs(node.attrs, node.op);
  const ir::Shape &x = call.graph.type(node.operands[0]).shape, &w = call.graph.type(node.operands[1]).shape;
  const ir::Shape& out = node.type.shape;
  const auto &stride = attrs.ints("stride"), &padding = attrs.ints("padding"), &dilation = attrs.ints("dilation");
  const DeconvGeometry g{x[1],      x[2],      x[3],       out[1],     out[2],     out[3],     w[2],
                         w[3],      {stride[0], stride[1]}, {padding[0], padding[1]}, {dilation[0], dilation[1]}};
  const auto* in = static_cast<const float*>(call.operands[0]);
  const auto* weight = static_cast<const float*>(call.operands[1]);
  auto* result = static_cast<float*>(call.result);
  const int64_t inSize = g.height * g.width * g.channels, outSize = g.outHeight * g.outWidth * g.outChannels;
  const ImageKernel image = imageKernel(g.taps());
#pragma omp parallel for schedule(static) if (x[0] * inSize * g.taps() >= (int64_t{1} << 18))
  for (int64_t n = 0; n < x[0]; ++n) image(g, in + n * inSize, weight, result + n * outSize);
}

}  // namespace weft::cpu
