// Kernels of the elementwise primitives: unary math, binary arithmetic with numpy
// broadcasting, comparisons, logic, select and cast. Floats are computed in double and
// rounded once to the result dtype; i32, i64 and bool are computed exactly in int64.
// f32 and f64 operands take typed fast paths that do the same math in double.
#include <cmath>
#include <limits>
#include <type_traits>

#include "backends/reference/fast_paths.h"
#include "backends/reference/kernels.h"
#include "backends/reference/tensor_util.h"

namespace weft::reference {

using ir::TensorData;

namespace {

/// Two's complement arithmetic without signed overflow.
int64_t wrapAdd(int64_t a, int64_t b) { return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b)); }
int64_t wrapSub(int64_t a, int64_t b) { return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b)); }
int64_t wrapMul(int64_t a, int64_t b) { return static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b)); }
int64_t wrapNeg(int64_t a) { return wrapSub(0, a); }

/// Applies `f` (double -> double) to every element of a float operand.
template <class F>
TensorData mapFloat(const KernelContext& ctx, F f) {
  const TensorData& x = ctx.in(0);
  TensorData out(ctx.outType());
  if (!mapFloats(x, out, f))
    for (int64_t i = 0; i < out.numel(); ++i) store(out, i, f(x.get(i)));
  return out;
}

/// A double result stored as Out: rounded for floats, `!= 0` for bool (uint8_t).
template <class Out>
Out convertTo(double v) {
  if constexpr (std::is_same_v<Out, uint8_t>) return v != 0;
  else return static_cast<Out>(v);
}

/// The typed fast path of zipNumeric: `f` applied in double along the broadcast rows of two
/// T operands, stored as Out (T itself, or uint8_t for a bool result).
template <class T, class Out, class FD>
void zipFloatRows(const TensorData& a, const TensorData& b, TensorData& out, FD f) {
  BroadcastWalk<2> walk(out.type.shape, {a.type.shape, b.type.shape});
  const T *pa = a.as<T>(), *pb = b.as<T>();
  Out* po = out.as<Out>();
  int64_t length = walk.rowLength();
  bool aMoves = walk.step(0) == 1, bMoves = walk.step(1) == 1;
  walk.forEachRow([&](int64_t first, const std::array<int64_t, 2>& at) {
    const T *ra = pa + at[0], *rb = pb + at[1];
    Out* ro = po + first;
    // One loop per step pattern, so that each inner loop is a plain one the compiler vectorizes.
    if (aMoves && bMoves) {
      for (int64_t i = 0; i < length; ++i)
        ro[i] = convertTo<Out>(f(static_cast<double>(ra[i]), static_cast<double>(rb[i])));
    } else if (bMoves) {
      double av = static_cast<double>(ra[0]);
      for (int64_t i = 0; i < length; ++i) ro[i] = convertTo<Out>(f(av, static_cast<double>(rb[i])));
    } else if (aMoves) {
      double bv = static_cast<double>(rb[0]);
      for (int64_t i = 0; i < length; ++i) ro[i] = convertTo<Out>(f(static_cast<double>(ra[i]), bv));
    } else {
      std::fill(ro, ro + length, convertTo<Out>(f(static_cast<double>(ra[0]), static_cast<double>(rb[0]))));
    }
  });
}

/// Applies `onFloat` to float operands and `onInt` (exact, int64) to integer operands.
template <class FD, class FI>
TensorData mapNumeric(const KernelContext& ctx, FD onFloat, FI onInt) {
  const TensorData& x = ctx.in(0);
  if (!isIntegral(x.type.dtype)) return mapFloat(ctx, onFloat);
  TensorData out(ctx.outType());
  for (int64_t i = 0; i < out.numel(); ++i) setInt(out, i, onInt(getInt(x, i)));
  return out;
}

/// Applies a binary function to broadcast operands: `onFloat` in double for float operands,
/// `onInt` exactly in int64 for i32, i64 and bool operands.
template <class FD, class FI>
TensorData zipNumeric(const KernelContext& ctx, FD onFloat, FI onInt) {
  const TensorData &a = ctx.in(0), &b = ctx.in(1);
  TensorData out(ctx.outType());
  bool boolResult = out.type.dtype == ir::DType::boolean;
  if (withFloatType(a.type.dtype, [&](auto tag) {
        using T = decltype(tag);
        if (boolResult) zipFloatRows<T, uint8_t>(a, b, out, onFloat);
        else zipFloatRows<T, T>(a, b, out, onFloat);
      }))
    return out;
  std::vector<int64_t> ia = broadcastSourceIndex(a.type.shape, out.type.shape);
  std::vector<int64_t> ib = broadcastSourceIndex(b.type.shape, out.type.shape);
  bool integral = isIntegral(a.type.dtype);
  for (size_t i = 0; i < ia.size(); ++i) {
    auto o = static_cast<int64_t>(i);
    if (integral) write(out, o, onInt(getInt(a, ia[i]), getInt(b, ib[i])));
    else write(out, o, onFloat(a.get(ia[i]), b.get(ib[i])));
  }
  return out;
}

/// A comparison: the same predicate for both number kinds; the result is bool.
template <class P>
TensorData compare(const KernelContext& ctx, P pred) {
  return zipNumeric(
      ctx, [&](double a, double b) { return pred(a, b) ? 1.0 : 0.0; },
      [&](int64_t a, int64_t b) { return int64_t{pred(a, b)}; });
}

double signOf(double x) { return std::isnan(x) ? x : static_cast<double>((x > 0) - (x < 0)); }

}  // namespace

// ---- unary -------------------------------------------------------------------------------

TensorData kernelNeg(const KernelContext& ctx) {
  return mapNumeric(ctx, [](double x) { return -x; }, wrapNeg);
}

TensorData kernelAbs(const KernelContext& ctx) {
  return mapNumeric(ctx, [](double x) { return std::fabs(x); },
                    [](int64_t x) { return x < 0 ? wrapNeg(x) : x; });
}

TensorData kernelExp(const KernelContext& ctx) { return mapFloat(ctx, [](double x) { return std::exp(x); }); }
TensorData kernelLog(const KernelContext& ctx) { return mapFloat(ctx, [](double x) { return std::log(x); }); }
TensorData kernelSqrt(const KernelContext& ctx) { return mapFloat(ctx, [](double x) { return std::sqrt(x); }); }
TensorData kernelRsqrt(const KernelContext& ctx) {
  return mapFloat(ctx, [](double x) { return 1.0 / std::sqrt(x); });
}
TensorData kernelTanh(const KernelContext& ctx) { return mapFloat(ctx, [](double x) { return std::tanh(x); }); }
TensorData kernelSin(const KernelContext& ctx) { return mapFloat(ctx, [](double x) { return std::sin(x); }); }
TensorData kernelCos(const KernelContext& ctx) { return mapFloat(ctx, [](double x) { return std::cos(x); }); }
TensorData kernelErf(const KernelContext& ctx) { return mapFloat(ctx, [](double x) { return std::erf(x); }); }
TensorData kernelFloor(const KernelContext& ctx) { return mapFloat(ctx, [](double x) { return std::floor(x); }); }

TensorData kernelSigmoid(const KernelContext& ctx) {
  // Written so that exp never overflows.
  return mapFloat(ctx, [](double x) {
    if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
    double e = std::exp(x);
    return e / (1.0 + e);
  });
}

TensorData kernelSign(const KernelContext& ctx) {
  return mapNumeric(ctx, signOf, [](int64_t x) { return int64_t{(x > 0) - (x < 0)}; });
}

TensorData kernelLogicalNot(const KernelContext& ctx) {
  return mapNumeric(ctx, [](double x) { return x == 0 ? 1.0 : 0.0; },
                    [](int64_t x) { return int64_t{x == 0}; });
}

TensorData kernelStopGradient(const KernelContext& ctx) { return ctx.in(0); }

TensorData kernelCast(const KernelContext& ctx) {
  const TensorData& x = ctx.in(0);
  TensorData out(ctx.outType());
  bool exact = isIntegral(x.type.dtype) && isIntegral(out.type.dtype);
  for (int64_t i = 0; i < out.numel(); ++i) {
    if (exact) setInt(out, i, getInt(x, i));  // i64 -> i32 wraps, anything -> bool is != 0
    else store(out, i, x.get(i));             // float -> int truncates toward zero
  }
  return out;
}

// ---- binary ------------------------------------------------------------------------------

TensorData kernelAdd(const KernelContext& ctx) {
  return zipNumeric(ctx, [](double a, double b) { return a + b; }, wrapAdd);
}

TensorData kernelSub(const KernelContext& ctx) {
  return zipNumeric(ctx, [](double a, double b) { return a - b; }, wrapSub);
}

TensorData kernelMul(const KernelContext& ctx) {
  return zipNumeric(ctx, [](double a, double b) { return a * b; }, wrapMul);
}

TensorData kernelDiv(const KernelContext& ctx) {
  // Integer division truncates toward zero, as C++ does; dividing by zero is an error.
  return zipNumeric(
      ctx, [](double a, double b) { return a / b; },
      [&](int64_t a, int64_t b) {
        if (b == 0) ctx.fail("integer division by zero");
        return b == -1 ? wrapNeg(a) : a / b;
      });
}

TensorData kernelPow(const KernelContext& ctx) {
  return zipNumeric(ctx, [](double a, double b) { return std::pow(a, b); },
                    [](int64_t, int64_t) -> int64_t { return 0; /* float only */ });
}

TensorData kernelMaximum(const KernelContext& ctx) {
  // NaN propagates, as in the IEEE maximum of PyTorch.
  return zipNumeric(
      ctx, [](double a, double b) { return std::isnan(a) || std::isnan(b) ? a + b : (a > b ? a : b); },
      [](int64_t a, int64_t b) { return a > b ? a : b; });
}

TensorData kernelMinimum(const KernelContext& ctx) {
  return zipNumeric(
      ctx, [](double a, double b) { return std::isnan(a) || std::isnan(b) ? a + b : (a < b ? a : b); },
      [](int64_t a, int64_t b) { return a < b ? a : b; });
}

TensorData kernelLogicalAnd(const KernelContext& ctx) {
  return compare(ctx, [](auto a, auto b) { return a != 0 && b != 0; });
}

TensorData kernelLogicalOr(const KernelContext& ctx) {
  return compare(ctx, [](auto a, auto b) { return a != 0 || b != 0; });
}

TensorData kernelEq(const KernelContext& ctx) { return compare(ctx, [](auto a, auto b) { return a == b; }); }
TensorData kernelNe(const KernelContext& ctx) { return compare(ctx, [](auto a, auto b) { return a != b; }); }
TensorData kernelLt(const KernelContext& ctx) { return compare(ctx, [](auto a, auto b) { return a < b; }); }
TensorData kernelLe(const KernelContext& ctx) { return compare(ctx, [](auto a, auto b) { return a <= b; }); }
TensorData kernelGt(const KernelContext& ctx) { return compare(ctx, [](auto a, auto b) { return a > b; }); }
TensorData kernelGe(const KernelContext& ctx) { return compare(ctx, [](auto a, auto b) { return a >= b; }); }

TensorData kernelSelect(const KernelContext& ctx) {
  const TensorData &cond = ctx.in(0), &onTrue = ctx.in(1), &onFalse = ctx.in(2);
  TensorData out(ctx.outType());
  if (withFloatType(out.type.dtype, [&](auto tag) {
        // Typed fast path: the same choice along broadcast rows.
        using T = decltype(tag);
        BroadcastWalk<3> walk(out.type.shape, {cond.type.shape, onTrue.type.shape, onFalse.type.shape});
        const uint8_t* pc = cond.as<uint8_t>();
        const T *pt = onTrue.as<T>(), *pf = onFalse.as<T>();
        T* po = out.as<T>();
        int64_t sc = walk.step(0), st = walk.step(1), sf = walk.step(2);
        walk.forEachRow([&](int64_t first, const std::array<int64_t, 3>& at) {
          for (int64_t i = 0; i < walk.rowLength(); ++i)
            po[first + i] = pc[at[0] + i * sc] ? pt[at[1] + i * st] : pf[at[2] + i * sf];
        });
      }))
    return out;
  std::vector<int64_t> ic = broadcastSourceIndex(cond.type.shape, out.type.shape);
  std::vector<int64_t> it = broadcastSourceIndex(onTrue.type.shape, out.type.shape);
  std::vector<int64_t> iff = broadcastSourceIndex(onFalse.type.shape, out.type.shape);
  for (size_t i = 0; i < ic.size(); ++i) {
    auto o = static_cast<int64_t>(i);
    if (getInt(cond, ic[i]) != 0) copyElement(out, o, onTrue, it[i]);
    else copyElement(out, o, onFalse, iff[i]);
  }
  return out;
}

}  // namespace weft::reference
