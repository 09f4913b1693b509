// Kernels of the backward primitives that autodiff emits: conv_weight_grad (the weight
// gradient of conv) and max_pool_grad (routes each pooled cotangent to its window's first
// maximum). Both walk the same (position, kernel offset) -> input position table as the
// forward windowed kernels.
#include <cmath>

#include "backends/reference/fast_paths.h"
#include "backends/reference/kernels.h"
#include "backends/reference/tensor_util.h"

namespace weft::reference {

using ir::Shape;
using ir::TensorData;

namespace {

/// `source[p * kernelSize + k]`: the row-major position in the `input` grid that position p
/// of the `positions` grid reads through kernel offset k (p * stride - padding + k * dilation
/// per dim), or -1 where that falls into the padding.
struct Windows {
  int64_t inputSize, positionCount, kernelSize;
  std::vector<int64_t> source;
};

Windows windows(const Shape& input, const Shape& positions, const Shape& kernel, const std::vector<int64_t>& stride,
                const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation) {
  Windows w{ir::numElements(input), ir::numElements(positions), ir::numElements(kernel), {}};
  if (w.positionCount == 0 || w.kernelSize == 0) return w;
  w.source.reserve(static_cast<size_t>(w.positionCount * w.kernelSize));
  std::vector<int64_t> strides = ir::rowMajorStrides(input);
  IndexCounter p(positions);
  do {
    IndexCounter k(kernel);
    do {
      int64_t at = 0;
      for (size_t d = 0; d < input.size() && at >= 0; ++d) {
        int64_t c = p.index()[d] * stride[d] - padding[d] + k.index()[d] * dilation[d];
        at = (c < 0 || c >= input[d]) ? -1 : at + c * strides[d];
      }
      w.source.push_back(at);
    } while (k.next());
  } while (p.next());
  return w;
}

Shape spatialOf(const Shape& s) { return Shape(s.begin() + 2, s.end()); }

/// True when `v` beats the best value so far under argmax's rule: greater, or the first NaN.
bool beats(double v, double best, bool haveBest) {
  if (!haveBest) return true;
  if (std::isnan(best)) return false;
  return std::isnan(v) || v > best;
}

}  // namespace

TensorData kernelConvWeightGrad(const KernelContext& ctx) {
  if (isChannelsLast(ctx)) return viaChannelsFirst(ctx, kernelConvWeightGrad);
  if (TensorData fast; tryFastConvWeightGrad(ctx, fast)) return fast;
  // dw[o, c, k] = sum over n and dy positions p of dy[n, o, p] * x[n, group(o) * C/groups + c, source(p, k)].
  const TensorData &x = ctx.in(0), &dy = ctx.in(1);
  const Shape &xs = x.type.shape, &ds = dy.type.shape;
  const auto& kernel = ctx.attr().ints("kernel");
  Windows t = windows(spatialOf(xs), spatialOf(ds), kernel, ctx.attr().ints("stride"), ctx.attr().ints("padding"),
                      ctx.attr().ints("dilation"));
  std::vector<double> in = toDoubles(x), grad = toDoubles(dy);
  int64_t batch = xs[0], channels = xs[1], outChannels = ds[1];
  int64_t groups = ctx.attr().i("groups");
  int64_t groupChannels = channels / groups, outPerGroup = outChannels / groups;
  std::vector<double> acc(static_cast<size_t>(ctx.outType().numel()), 0.0);
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t o = 0; o < outChannels; ++o) {
      int64_t firstChannel = (o / outPerGroup) * groupChannels;
      const double* dyPlane = grad.data() + (n * outChannels + o) * t.positionCount;
      for (int64_t c = 0; c < groupChannels; ++c) {
        const double* plane = in.data() + (n * channels + firstChannel + c) * t.inputSize;
        double* target = acc.data() + (o * groupChannels + c) * t.kernelSize;
        for (int64_t p = 0; p < t.positionCount; ++p) {
          const int64_t* source = t.source.data() + p * t.kernelSize;
          for (int64_t k = 0; k < t.kernelSize; ++k)
            if (source[k] >= 0) target[k] += dyPlane[p] * plane[source[k]];
        }
      }
    }
  return fromDoubles(ctx.outType(), acc);
}

TensorData kernelMaxPoolGrad(const KernelContext& ctx) {
  if (isChannelsLast(ctx)) return viaChannelsFirst(ctx, kernelMaxPoolGrad);
  if (TensorData fast; tryFastMaxPoolGrad(ctx, fast)) return fast;
  // For every window: the first position holding its maximum (padding reads -inf; NaN wins
  // as in argmax) receives the window's dy; a maximum that lies in the padding drops it.
  const TensorData &x = ctx.in(0), &dy = ctx.in(1);
  const auto& window = ctx.attr().ints("window");
  std::vector<int64_t> ones(window.size(), 1);
  Windows t = windows(spatialOf(x.type.shape), spatialOf(dy.type.shape), window, ctx.attr().ints("stride"),
                      ctx.attr().ints("padding"), ones);
  std::vector<double> in = toDoubles(x), grad = toDoubles(dy);
  std::vector<double> acc(static_cast<size_t>(x.numel()), 0.0);
  int64_t planes = x.type.shape[0] * x.type.shape[1];
  for (int64_t plane = 0; plane < planes; ++plane)
    for (int64_t p = 0; p < t.positionCount; ++p) {
      const int64_t* source = t.source.data() + p * t.kernelSize;
      int64_t winner = -1;
      double best = 0;
      for (int64_t k = 0; k < t.kernelSize; ++k) {
        double v = source[k] < 0 ? -INFINITY : in[static_cast<size_t>(plane * t.inputSize + source[k])];
        if (beats(v, best, k > 0)) {
          best = v;
          winner = source[k];
        }
      }
      if (winner >= 0) acc[static_cast<size_t>(plane * t.inputSize + winner)] += grad[static_cast<size_t>(plane * t.positionCount + p)];
    }
  return fromDoubles(ctx.outType(), acc);
}

}  // namespace weft::reference
