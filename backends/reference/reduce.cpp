// Kernels of the reductions: reduce_sum/max/min, argmax/argmin, and the composites
// reduce_mean and logsumexp. Each input element is folded into the output element its
// non-reduced coordinates name; keepdims only changes the result's shape, not its layout.
// f32 and f64 inputs take typed fast paths that fold in the same order.
#include <cmath>
#include <limits>
#include <type_traits>

#include "backends/reference/fast_paths.h"
#include "backends/reference/kernels.h"
#include "backends/reference/tensor_util.h"

namespace weft::reference {

using ir::TensorData;

namespace {

/// The typed fast path of a fold: calls `visit(slot, value)` for every element of the E
/// tensor `x` in row-major order, `slot` being the output element it folds into. The walk
/// goes along rows that either fold into one slot or into consecutive slots.
template <class E, class Visit>
void visitFolded(const TensorData& x, const std::vector<int64_t>& axes, Visit visit) {
  ir::Shape kept = x.type.shape;
  for (int64_t a : axes) kept[static_cast<size_t>(a)] = 1;
  BroadcastWalk<1> walk(x.type.shape, {kept});
  const E* in = x.as<E>();
  int64_t length = walk.rowLength(), step = walk.step(0);
  walk.forEachRow([&](int64_t first, const std::array<int64_t, 1>& slot) {
    for (int64_t i = 0; i < length; ++i) visit(slot[0] + i * step, static_cast<double>(in[first + i]));
  });
}

/// Folds every element of operand 0 into its reduced slot with `combine(acc, x)`, starting
/// from `init`; T is double for floats and int64_t (exact) for integers.
template <class T, class Combine>
std::vector<T> foldAxes(const KernelContext& ctx, T init, Combine combine) {
  const TensorData& x = ctx.in(0);
  std::vector<T> acc(static_cast<size_t>(ctx.outType().numel()), init);
  if constexpr (std::is_same_v<T, double>) {
    if (withFloatType(x.type.dtype, [&](auto tag) {
          visitFolded<decltype(tag)>(x, ctx.attr().ints("axes"), [&](int64_t slot, double v) {
            acc[static_cast<size_t>(slot)] = combine(acc[static_cast<size_t>(slot)], v);
          });
        }))
      return acc;
  }
  std::vector<int64_t> target = reductionTargetIndex(x.type.shape, ctx.attr().ints("axes"));
  for (size_t i = 0; i < target.size(); ++i) {
    T& slot = acc[static_cast<size_t>(target[i])];
    slot = combine(slot, read<T>(x, static_cast<int64_t>(i)));
  }
  return acc;
}

/// Writes accumulated values into a tensor of the node's result type.
template <class T>
TensorData toResult(const KernelContext& ctx, const std::vector<T>& acc) {
  TensorData out(ctx.outType());
  if constexpr (std::is_same_v<T, double>) {
    if (withFloatType(out.type.dtype, [&](auto tag) { std::copy(acc.begin(), acc.end(), out.as<decltype(tag)>()); }))
      return out;
  }
  for (size_t i = 0; i < acc.size(); ++i) write(out, static_cast<int64_t>(i), acc[i]);
  return out;
}

/// The number of input elements folded into each output element.
int64_t reducedCount(const KernelContext& ctx) {
  int64_t n = 1;
  for (int64_t a : ctx.attr().ints("axes")) n *= ctx.in(0).type.shape[static_cast<size_t>(a)];
  return n;
}

int64_t wrapAdd(int64_t a, int64_t x) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(x));
}

double maxPropagatingNaN(double acc, double x) { return std::isnan(x) || x > acc ? x : acc; }
double minPropagatingNaN(double acc, double x) { return std::isnan(x) || x < acc ? x : acc; }

/// argmax (`wantMax`) or argmin over one axis of operand 0, whose elements `at(index)` reads
/// as T; the first occurrence wins and NaN counts as the extreme (as in PyTorch).
template <class T, class At>
TensorData argExtremeOf(const KernelContext& ctx, bool wantMax, At at) {
  const TensorData& x = ctx.in(0);
  AxisSplit s = splitAround(x.type.shape, ctx.attr().i("axis"));
  if (s.size == 0 && s.outer * s.inner > 0) ctx.fail("cannot take the arg-extreme of an empty axis");
  TensorData out(ctx.outType());
  for (int64_t o = 0; o < s.outer; ++o)
    for (int64_t in = 0; in < s.inner; ++in) {
      int64_t base = o * s.size * s.inner + in, best = 0;
      T bestValue = at(base);
      for (int64_t k = 1; k < s.size; ++k) {
        T v = at(base + k * s.inner);
        bool better = wantMax ? v > bestValue : v < bestValue;
        if constexpr (std::is_same_v<T, double>)
          better = !std::isnan(bestValue) && (better || std::isnan(v));
        if (better) {
          best = k;
          bestValue = v;
        }
      }
      setInt(out, o * s.inner + in, best);
    }
  return out;
}

/// argExtremeOf with a typed reader for f32 and f64 and the generic one otherwise.
template <class T>
TensorData argExtreme(const KernelContext& ctx, bool wantMax) {
  const TensorData& x = ctx.in(0);
  if constexpr (std::is_same_v<T, double>) {
    TensorData fast;
    if (withFloatType(x.type.dtype, [&](auto tag) {
          const auto* typed = x.as<decltype(tag)>();
          fast = argExtremeOf<T>(ctx, wantMax, [&](int64_t i) { return static_cast<double>(typed[i]); });
        }))
      return fast;
  }
  return argExtremeOf<T>(ctx, wantMax, [&](int64_t i) { return read<T>(x, i); });
}

}  // namespace

TensorData kernelReduceSum(const KernelContext& ctx) {
  if (isIntegral(ctx.in(0).type.dtype))
    return toResult(ctx, foldAxes<int64_t>(ctx, 0, wrapAdd));
  return toResult(ctx, foldAxes<double>(ctx, 0.0, [](double a, double x) { return a + x; }));
}

TensorData kernelReduceMax(const KernelContext& ctx) {
  if (isIntegral(ctx.in(0).type.dtype))
    return toResult(ctx, foldAxes<int64_t>(ctx, std::numeric_limits<int64_t>::min(),
                                           [](int64_t a, int64_t x) { return x > a ? x : a; }));
  return toResult(ctx, foldAxes<double>(ctx, -INFINITY, maxPropagatingNaN));
}

TensorData kernelReduceMin(const KernelContext& ctx) {
  if (isIntegral(ctx.in(0).type.dtype))
    return toResult(ctx, foldAxes<int64_t>(ctx, std::numeric_limits<int64_t>::max(),
                                           [](int64_t a, int64_t x) { return x < a ? x : a; }));
  return toResult(ctx, foldAxes<double>(ctx, INFINITY, minPropagatingNaN));
}

TensorData kernelArgmax(const KernelContext& ctx) {
  return isIntegral(ctx.in(0).type.dtype) ? argExtreme<int64_t>(ctx, true) : argExtreme<double>(ctx, true);
}

TensorData kernelArgmin(const KernelContext& ctx) {
  return isIntegral(ctx.in(0).type.dtype) ? argExtreme<int64_t>(ctx, false) : argExtreme<double>(ctx, false);
}

TensorData kernelReduceMean(const KernelContext& ctx) {
  int64_t count = reducedCount(ctx);
  if (isIntegral(ctx.in(0).type.dtype)) {
    // Integer mean: the exact sum divided by the count, truncated toward zero.
    if (count == 0 && ctx.outType().numel() > 0) ctx.fail("the integer mean of zero elements is undefined");
    std::vector<int64_t> sum = foldAxes<int64_t>(ctx, 0, wrapAdd);
    for (int64_t& s : sum) s /= count;
    return toResult(ctx, sum);
  }
  std::vector<double> sum = foldAxes<double>(ctx, 0.0, [](double a, double x) { return a + x; });
  for (double& s : sum) s /= static_cast<double>(count);
  return toResult(ctx, sum);
}

TensorData kernelLogSumExp(const KernelContext& ctx) {
  // log(sum(exp(x - m))) + m with m the maximum, so that exp never overflows.
  const TensorData& x = ctx.in(0);
  std::vector<double> peak = foldAxes<double>(ctx, -INFINITY, maxPropagatingNaN);
  std::vector<double> sum(peak.size(), 0.0);
  auto addShifted = [&](int64_t slot, double v) {
    auto t = static_cast<size_t>(slot);
    if (std::isfinite(peak[t])) sum[t] += std::exp(v - peak[t]);
  };
  const auto& axes = ctx.attr().ints("axes");
  if (!withFloatType(x.type.dtype, [&](auto tag) { visitFolded<decltype(tag)>(x, axes, addShifted); })) {
    std::vector<int64_t> target = reductionTargetIndex(x.type.shape, axes);
    for (size_t i = 0; i < target.size(); ++i) addShifted(target[i], x.get(static_cast<int64_t>(i)));
  }
  std::vector<double> result(peak.size());
  for (size_t t = 0; t < peak.size(); ++t)
    result[t] = std::isfinite(peak[t]) ? std::log(sum[t]) + peak[t] : peak[t];  // +-inf or NaN stays
  return toResult(ctx, result);
}

}  // namespace weft::reference
