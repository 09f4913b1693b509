// Kernels of the windowed ops over [N, C, spatial...] tensors: conv, conv_transpose,
// max_pool and avg_pool, for any number of spatial dimensions. All four share one table that
// says which input position each (output position, kernel position) pair reads.
#include <cmath>

#include "backends/reference/kernels.h"
#include "backends/reference/tensor_util.h"

namespace weft::reference {

using ir::Shape;
using ir::TensorData;

namespace {

/// For a window sliding over a spatial grid: `source[p * kernelSize + k]` is the row-major
/// position in the `input` grid that output position p reads through kernel position k,
/// or -1 where that falls into the padding.
struct WindowTable {
  int64_t inputSize, outputSize, kernelSize;
  std::vector<int64_t> source;
};

/// The spatial part (dims 2...) of a shape.
Shape spatial(const Shape& s) { return Shape(s.begin() + 2, s.end()); }

/// Input coordinate d of output p through kernel k: p * stride - padding + k * dilation.
WindowTable windowTable(const Shape& input, const Shape& output, const Shape& kernel,
                        const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
                        const std::vector<int64_t>& dilation) {
  WindowTable t{ir::numElements(input), ir::numElements(output), ir::numElements(kernel), {}};
  t.source.reserve(static_cast<size_t>(t.outputSize * t.kernelSize));
  if (t.outputSize == 0 || t.kernelSize == 0) return t;
  std::vector<int64_t> inStrides = ir::rowMajorStrides(input);
  IndexCounter out(output);
  do {
    IndexCounter k(kernel);
    do {
      int64_t at = 0;
      for (size_t d = 0; d < input.size() && at >= 0; ++d) {
        int64_t c = out.index()[d] * stride[d] - padding[d] + k.index()[d] * dilation[d];
        at = (c < 0 || c >= input[d]) ? -1 : at + c * inStrides[d];
      }
      t.source.push_back(at);
    } while (k.next());
  } while (out.next());
  return t;
}

/// max_pool (`isMax`) or avg_pool: padding reads -inf for max and 0 for the average, which
/// always divides by the full window size.
TensorData pool(const KernelContext& ctx, bool isMax) {
  const TensorData& x = ctx.in(0);
  const auto& window = ctx.attr().ints("window");
  std::vector<int64_t> ones(window.size(), 1);
  WindowTable t = windowTable(spatial(x.type.shape), spatial(ctx.outType().shape), window,
                              ctx.attr().ints("stride"), ctx.attr().ints("padding"), ones);
  std::vector<double> in = toDoubles(x);
  TensorData out(ctx.outType());
  int64_t planes = x.type.shape[0] * x.type.shape[1];
  for (int64_t plane = 0; plane < planes; ++plane)
    for (int64_t p = 0; p < t.outputSize; ++p) {
      double acc = isMax ? -INFINITY : 0.0;
      for (int64_t k = 0; k < t.kernelSize; ++k) {
        int64_t src = t.source[static_cast<size_t>(p * t.kernelSize + k)];
        double v = src < 0 ? (isMax ? -INFINITY : 0.0) : in[static_cast<size_t>(plane * t.inputSize + src)];
        if (isMax) acc = (std::isnan(v) || v > acc) ? v : acc;
        else acc += v;
      }
      store(out, plane * t.outputSize + p, isMax ? acc : acc / static_cast<double>(t.kernelSize));
    }
  return out;
}

}  // namespace

TensorData kernelConv(const KernelContext& ctx) {
  // out[n, o, p] = sum over c in o's group and kernel positions k of
  //                w[o, c, k] * x[n, group * C/groups + c, source(p, k)].
  const TensorData &x = ctx.in(0), &w = ctx.in(1);
  const Shape &xs = x.type.shape, &ws = w.type.shape;
  WindowTable t = windowTable(spatial(xs), spatial(ctx.outType().shape), spatial(ws), ctx.attr().ints("stride"),
                              ctx.attr().ints("padding"), ctx.attr().ints("dilation"));
  std::vector<double> in = toDoubles(x), weight = toDoubles(w);
  int64_t batch = xs[0], channels = xs[1], outChannels = ws[0], groupChannels = ws[1];
  int64_t outPerGroup = outChannels / ctx.attr().i("groups");
  TensorData out(ctx.outType());
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t o = 0; o < outChannels; ++o) {
      int64_t firstChannel = (o / outPerGroup) * groupChannels;
      for (int64_t p = 0; p < t.outputSize; ++p) {
        double sum = 0;
        for (int64_t c = 0; c < groupChannels; ++c) {
          const double* plane = in.data() + (n * channels + firstChannel + c) * t.inputSize;
          const double* kernel = weight.data() + (o * groupChannels + c) * t.kernelSize;
          const int64_t* source = t.source.data() + p * t.kernelSize;
          for (int64_t k = 0; k < t.kernelSize; ++k)
            if (source[k] >= 0) sum += kernel[k] * plane[source[k]];
        }
        store(out, (n * outChannels + o) * t.outputSize + p, sum);
      }
    }
  return out;
}

TensorData kernelConvTranspose(const KernelContext& ctx) {
  // The adjoint of conv: every x[n, c, p] scatters x * w[c, o, k] to the output position
  // p * stride - padding + k * dilation of each output channel o in c's group.
  const TensorData &x = ctx.in(0), &w = ctx.in(1);
  const Shape &xs = x.type.shape, &ws = w.type.shape;
  WindowTable t = windowTable(spatial(ctx.outType().shape), spatial(xs), spatial(ws), ctx.attr().ints("stride"),
                              ctx.attr().ints("padding"), ctx.attr().ints("dilation"));
  std::vector<double> in = toDoubles(x), weight = toDoubles(w);
  int64_t batch = xs[0], channels = xs[1], outPerGroup = ws[1];
  int64_t inPerGroup = channels / ctx.attr().i("groups");
  int64_t outChannels = ctx.outType().shape[1];
  // Here the table's "output" grid is x's and its "input" grid is the result's.
  std::vector<double> acc(static_cast<size_t>(ctx.outType().numel()), 0.0);
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t ol = 0; ol < outPerGroup; ++ol) {
        int64_t o = (c / inPerGroup) * outPerGroup + ol;
        double* target = acc.data() + (n * outChannels + o) * t.inputSize;
        const double* kernel = weight.data() + (c * outPerGroup + ol) * t.kernelSize;
        for (int64_t p = 0; p < t.outputSize; ++p) {
          double value = in[static_cast<size_t>((n * channels + c) * t.outputSize + p)];
          const int64_t* source = t.source.data() + p * t.kernelSize;
          for (int64_t k = 0; k < t.kernelSize; ++k)
            if (source[k] >= 0) target[source[k]] += value * kernel[k];
        }
      }
  return fromDoubles(ctx.outType(), acc);
}

TensorData kernelMaxPool(const KernelContext& ctx) { return pool(ctx, true); }

TensorData kernelAvgPool(const KernelContext& ctx) { return pool(ctx, false); }

}  // namespace weft::reference
