// Kernels of the windowed ops over [N, C, spatial...] tensors: conv, conv_transpose,
// max_pool and avg_pool, for any number of spatial dimensions. All four share one table that
// says which input position each (output position, kernel position) pair reads.
// f32 and f64 take typed fast paths: conv and conv_transpose as matrix products over the
// table (im2col / col2im), the pools as the same loops over typed buffers.
#include <cmath>

#include "backends/reference/fast_paths.h"
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

/// The window table of a node with stride, padding and dilation attributes, over the
/// spatial dims of `input` and `output` with the given spatial kernel extents.
WindowTable convTable(const KernelContext& ctx, const Shape& input, const Shape& output, const Shape& kernel) {
  return windowTable(spatial(input), spatial(output), kernel, ctx.attr().ints("stride"), ctx.attr().ints("padding"),
                     ctx.attr().ints("dilation"));
}

/// The im2col matrix of one group of one sample: row c * kernelSize + k, column p holds
/// the input that output position p reads through kernel position k of channel c (0 in the
/// padding). `planes` points at the group's first input channel.
template <class T>
void gatherColumns(const WindowTable& t, const T* planes, int64_t channels, std::vector<T>& columns) {
  columns.resize(static_cast<size_t>(channels * t.kernelSize * t.outputSize));
  T* to = columns.data();
  for (int64_t c = 0; c < channels; ++c) {
    const T* plane = planes + c * t.inputSize;
    for (int64_t k = 0; k < t.kernelSize; ++k)
      for (int64_t p = 0; p < t.outputSize; ++p) {
        int64_t src = t.source[static_cast<size_t>(p * t.kernelSize + k)];
        *to++ = src < 0 ? T(0) : plane[src];
      }
  }
}

/// The typed fast path of conv: per sample and group, out = weight [O/groups, C/groups * K]
/// times the im2col matrix [C/groups * K, P]. Each output sums over (c, k) in the generic
/// order; unlike the generic loop it also adds the zero products of padded positions (which
/// only matters for an infinite or NaN weight).
template <class T>
TensorData fastConv(const KernelContext& ctx) {
  const TensorData &x = ctx.in(0), &w = ctx.in(1);
  const Shape &xs = x.type.shape, &ws = w.type.shape;
  WindowTable t = convTable(ctx, xs, ctx.outType().shape, spatial(ws));
  int64_t groups = ctx.attr().i("groups"), channels = xs[1], outChannels = ws[0], groupChannels = ws[1];
  int64_t outPerGroup = outChannels / groups, depth = groupChannels * t.kernelSize;
  TensorData out(ctx.outType());
  const T *in = x.as<T>(), *weight = w.as<T>();
  T* result = out.as<T>();
  double work = static_cast<double>(ctx.outType().numel()) * static_cast<double>(depth);
  parallelFor(xs[0], work, [&](int64_t first, int64_t last) {
    std::vector<T> columns;
    for (int64_t n = first; n < last; ++n)
      for (int64_t g = 0; g < groups; ++g) {
        gatherColumns(t, in + (n * channels + g * groupChannels) * t.inputSize, groupChannels, columns);
        multiplyMatrices(weight + g * outPerGroup * depth, columns.data(),
                         result + (n * outChannels + g * outPerGroup) * t.outputSize, outPerGroup, depth,
                         t.outputSize);
      }
  });
  return out;
}

/// The typed fast path of conv_transpose: per sample and group, the columns
/// [O/groups * K, P] = weight^T [O/groups * K, C/groups] times x [C/groups, P] (in double),
/// then each column entry is added to the output position it lands on (col2im). The sums are
/// grouped differently from the generic scatter, so results agree up to rounding.
template <class T>
TensorData fastConvTranspose(const KernelContext& ctx) {
  const TensorData &x = ctx.in(0), &w = ctx.in(1);
  const Shape &xs = x.type.shape, &ws = w.type.shape;
  // The table's "output" grid is x's and its "input" grid is the result's.
  WindowTable t = convTable(ctx, ctx.outType().shape, xs, spatial(ws));
  int64_t groups = ctx.attr().i("groups"), channels = xs[1], outPerGroup = ws[1];
  int64_t inPerGroup = channels / groups, outChannels = ctx.outType().shape[1];
  int64_t depth = outPerGroup * t.kernelSize;
  // Each group's weight [C/groups, O/groups * K] transposed to [O/groups * K, C/groups].
  std::vector<T> weightT = transposeMatrices(w.as<T>(), groups, inPerGroup, depth);
  std::vector<double> acc(static_cast<size_t>(ctx.outType().numel()), 0.0);
  const T* in = x.as<T>();
  double work = static_cast<double>(x.numel()) * static_cast<double>(depth);
  parallelFor(xs[0], work, [&](int64_t first, int64_t last) {
    std::vector<double> columns(static_cast<size_t>(depth * t.outputSize));
    for (int64_t n = first; n < last; ++n)
      for (int64_t g = 0; g < groups; ++g) {
        multiplyMatrices(weightT.data() + g * depth * inPerGroup, in + (n * channels + g * inPerGroup) * t.outputSize,
                         columns.data(), depth, inPerGroup, t.outputSize);
        for (int64_t ol = 0; ol < outPerGroup; ++ol) {
          double* target = acc.data() + (n * outChannels + g * outPerGroup + ol) * t.inputSize;
          for (int64_t k = 0; k < t.kernelSize; ++k) {
            const double* column = columns.data() + (ol * t.kernelSize + k) * t.outputSize;
            for (int64_t p = 0; p < t.outputSize; ++p) {
              int64_t dst = t.source[static_cast<size_t>(p * t.kernelSize + k)];
              if (dst >= 0) target[dst] += column[p];
            }
          }
        }
      }
  });
  TensorData out(ctx.outType());
  std::copy(acc.begin(), acc.end(), out.as<T>());
  return out;
}

/// The typed fast path of conv_weight_grad: per group, dw [O/groups, C/groups * K] =
/// dy [O/groups, N * P] times the im2col rows [N * P, C/groups * K] of all samples, so that
/// each weight sums over (n, p) in the generic order (plus the zero products of padding).
template <class T>
TensorData fastConvWeightGrad(const KernelContext& ctx) {
  const TensorData &x = ctx.in(0), &dy = ctx.in(1);
  const Shape &xs = x.type.shape, &ds = dy.type.shape;
  WindowTable t = convTable(ctx, xs, ds, ctx.attr().ints("kernel"));
  int64_t groups = ctx.attr().i("groups"), batch = xs[0], channels = xs[1], outChannels = ds[1];
  int64_t groupChannels = channels / groups, outPerGroup = outChannels / groups;
  int64_t depth = groupChannels * t.kernelSize, positions = batch * t.outputSize;
  TensorData out(ctx.outType());
  const T *in = x.as<T>(), *grad = dy.as<T>();
  std::vector<T> grads(static_cast<size_t>(outPerGroup * positions)), rows(static_cast<size_t>(positions * depth));
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t ol = 0; ol < outPerGroup; ++ol)
      for (int64_t n = 0; n < batch; ++n)
        std::copy_n(grad + (n * outChannels + g * outPerGroup + ol) * t.outputSize, t.outputSize,
                    grads.data() + ol * positions + n * t.outputSize);
    T* to = rows.data();
    for (int64_t n = 0; n < batch; ++n)
      for (int64_t p = 0; p < t.outputSize; ++p)
        for (int64_t c = 0; c < groupChannels; ++c) {
          const T* plane = in + (n * channels + g * groupChannels + c) * t.inputSize;
          const int64_t* source = t.source.data() + p * t.kernelSize;
          for (int64_t k = 0; k < t.kernelSize; ++k) *to++ = source[k] < 0 ? T(0) : plane[source[k]];
        }
    multiplyMatrices(grads.data(), rows.data(), out.as<T>() + g * outPerGroup * depth, outPerGroup, positions, depth);
  }
  return out;
}

/// The typed fast path of max_pool_grad: the generic loop over typed buffers. The first
/// position holding a window's maximum (padding reads -inf, the first NaN wins) receives
/// the window's dy; a maximum in the padding drops it.
template <class T>
TensorData fastMaxPoolGrad(const KernelContext& ctx) {
  const TensorData &x = ctx.in(0), &dy = ctx.in(1);
  const auto& window = ctx.attr().ints("window");
  WindowTable t = windowTable(spatial(x.type.shape), spatial(dy.type.shape), window, ctx.attr().ints("stride"),
                              ctx.attr().ints("padding"), std::vector<int64_t>(window.size(), 1));
  const T *in = x.as<T>(), *grad = dy.as<T>();
  std::vector<double> acc(static_cast<size_t>(x.numel()), 0.0);
  int64_t planes = x.type.shape[0] * x.type.shape[1];
  for (int64_t plane = 0; plane < planes; ++plane)
    for (int64_t p = 0; p < t.outputSize; ++p) {
      const int64_t* source = t.source.data() + p * t.kernelSize;
      int64_t winner = -1;
      double best = 0;
      for (int64_t k = 0; k < t.kernelSize; ++k) {
        double v = source[k] < 0 ? -INFINITY : static_cast<double>(in[plane * t.inputSize + source[k]]);
        if (k == 0 || (!std::isnan(best) && (std::isnan(v) || v > best))) {
          best = v;
          winner = source[k];
        }
      }
      if (winner >= 0)
        acc[static_cast<size_t>(plane * t.inputSize + winner)] += static_cast<double>(grad[plane * t.outputSize + p]);
    }
  TensorData out(ctx.outType());
  std::copy(acc.begin(), acc.end(), out.as<T>());
  return out;
}

/// The typed fast path of the pools: the generic loop over typed buffers.
template <class T>
TensorData fastPool(const KernelContext& ctx, const WindowTable& t, bool isMax) {
  const TensorData& x = ctx.in(0);
  TensorData out(ctx.outType());
  const T* in = x.as<T>();
  T* result = out.as<T>();
  int64_t planes = x.type.shape[0] * x.type.shape[1];
  for (int64_t plane = 0; plane < planes; ++plane)
    for (int64_t p = 0; p < t.outputSize; ++p) {
      const int64_t* source = t.source.data() + p * t.kernelSize;
      double acc = isMax ? -INFINITY : 0.0;
      for (int64_t k = 0; k < t.kernelSize; ++k) {
        double v = source[k] < 0 ? (isMax ? -INFINITY : 0.0) : static_cast<double>(in[plane * t.inputSize + source[k]]);
        if (isMax) acc = (std::isnan(v) || v > acc) ? v : acc;
        else acc += v;
      }
      result[plane * t.outputSize + p] = static_cast<T>(isMax ? acc : acc / static_cast<double>(t.kernelSize));
    }
  return out;
}

/// max_pool (`isMax`) or avg_pool: padding reads -inf for max and 0 for the average, which
/// always divides by the full window size.
TensorData pool(const KernelContext& ctx, bool isMax) {
  const TensorData& x = ctx.in(0);
  const auto& window = ctx.attr().ints("window");
  std::vector<int64_t> ones(window.size(), 1);
  WindowTable t = windowTable(spatial(x.type.shape), spatial(ctx.outType().shape), window,
                              ctx.attr().ints("stride"), ctx.attr().ints("padding"), ones);
  TensorData fast;
  if (withFloatType(x.type.dtype, [&](auto tag) { fast = fastPool<decltype(tag)>(ctx, t, isMax); })) return fast;
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
  if (isChannelsLast(ctx)) return viaChannelsFirst(ctx, kernelConv);
  // out[n, o, p] = sum over c in o's group and kernel positions k of
  //                w[o, c, k] * x[n, group * C/groups + c, source(p, k)].
  TensorData fast;
  if (withFloatType(ctx.in(0).type.dtype, [&](auto tag) { fast = fastConv<decltype(tag)>(ctx); })) return fast;
  const TensorData &x = ctx.in(0), &w = ctx.in(1);
  const Shape &xs = x.type.shape, &ws = w.type.shape;
  WindowTable t = convTable(ctx, xs, ctx.outType().shape, spatial(ws));
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
  if (isChannelsLast(ctx)) return viaChannelsFirst(ctx, kernelConvTranspose);
  // The adjoint of conv: every x[n, c, p] scatters x * w[c, o, k] to the output position
  // p * stride - padding + k * dilation of each output channel o in c's group.
  TensorData fast;
  if (withFloatType(ctx.in(0).type.dtype, [&](auto tag) { fast = fastConvTranspose<decltype(tag)>(ctx); }))
    return fast;
  const TensorData &x = ctx.in(0), &w = ctx.in(1);
  const Shape &xs = x.type.shape, &ws = w.type.shape;
  WindowTable t = convTable(ctx, ctx.outType().shape, xs, spatial(ws));
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

bool tryFastConvWeightGrad(const KernelContext& ctx, TensorData& out) {
  return withFloatType(ctx.in(0).type.dtype, [&](auto tag) { out = fastConvWeightGrad<decltype(tag)>(ctx); });
}

bool tryFastMaxPoolGrad(const KernelContext& ctx, TensorData& out) {
  return withFloatType(ctx.in(0).type.dtype, [&](auto tag) { out = fastMaxPoolGrad<decltype(tag)>(ctx); });
}

TensorData kernelMaxPool(const KernelContext& ctx) {
  if (isChannelsLast(ctx)) return viaChannelsFirst(ctx, kernelMaxPool);
  return pool(ctx, true);
}

TensorData kernelAvgPool(const KernelContext& ctx) {
  if (isChannelsLast(ctx)) return viaChannelsFirst(ctx, kernelAvgPool);
  return pool(ctx, false);
}

}  // namespace weft::reference
