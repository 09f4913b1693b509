// Kernels of the activation composites, written directly from their definitions (they are
// the oracle the decompositions are tested against): relu, leaky_relu, gelu, silu, softplus,
// softmax and log_softmax.
#include <cmath>
#include <numbers>

#include "backends/reference/fast_paths.h"
#include "backends/reference/kernels.h"
#include "backends/reference/tensor_util.h"

namespace weft::reference {

using ir::TensorData;

namespace {

/// Applies `f` to every element of operand 0, in double.
template <class F>
TensorData mapValues(const KernelContext& ctx, F f) {
  const TensorData& x = ctx.in(0);
  TensorData out(ctx.outType());
  if (!mapFloats(x, out, f))
    for (int64_t i = 0, n = out.numel(); i < n; ++i) store(out, i, f(x.get(i)));
  return out;
}

double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  double e = std::exp(x);
  return e / (1.0 + e);
}

/// softmax (or log_softmax when `takeLog`) along the node's `axis`.
TensorData softmaxAlongAxis(const KernelContext& ctx, bool takeLog) {
  const TensorData& x = ctx.in(0);
  AxisSplit s = splitAround(x.type.shape, ctx.attr().i("axis"));
  TensorData out(ctx.outType());
  for (int64_t o = 0; o < s.outer; ++o)
    for (int64_t in = 0; in < s.inner; ++in) {
      int64_t base = o * s.size * s.inner + in;
      double peak = -INFINITY;
      for (int64_t k = 0; k < s.size; ++k) peak = std::fmax(peak, x.get(base + k * s.inner));
      double total = 0;
      for (int64_t k = 0; k < s.size; ++k) total += std::exp(x.get(base + k * s.inner) - peak);
      for (int64_t k = 0; k < s.size; ++k) {
        double shifted = x.get(base + k * s.inner) - peak;
        store(out, base + k * s.inner, takeLog ? shifted - std::log(total) : std::exp(shifted) / total);
      }
    }
  return out;
}

}  // namespace

TensorData kernelRelu(const KernelContext& ctx) {
  return mapValues(ctx, [](double x) { return std::isnan(x) || x > 0 ? x : 0.0; });
}

TensorData kernelLeakyRelu(const KernelContext& ctx) {
  double alpha = ctx.attr().f("alpha");
  return mapValues(ctx, [alpha](double x) { return x > 0 ? x : alpha * x; });
}

TensorData kernelGelu(const KernelContext& ctx) {
  if (ctx.attr().i("approximate") != 0) {
    const double c = std::sqrt(2.0 / std::numbers::pi);
    return mapValues(ctx, [c](double x) { return 0.5 * x * (1.0 + std::tanh(c * (x + 0.044715 * x * x * x))); });
  }
  return mapValues(ctx, [](double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); });
}

TensorData kernelSilu(const KernelContext& ctx) {
  return mapValues(ctx, [](double x) { return x * sigmoid(x); });
}

TensorData kernelSoftplus(const KernelContext& ctx) {
  // log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)), which never overflows.
  return mapValues(ctx, [](double x) { return std::fmax(x, 0.0) + std::log1p(std::exp(-std::fabs(x))); });
}

TensorData kernelSoftmax(const KernelContext& ctx) { return softmaxAlongAxis(ctx, false); }

TensorData kernelLogSoftmax(const KernelContext& ctx) { return softmaxAlongAxis(ctx, true); }

}  // namespace weft::reference
