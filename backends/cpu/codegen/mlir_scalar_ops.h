#pragma once
/// Internal to weft_codegen, included only by mlir_emitter.cpp (it includes MLIR headers):
/// the scalar semantics of elementwise ops and reductions as arith/math ops, matching the
/// reference interpreter (ints wrap, float -> int casts saturate, comparisons of bools are
/// unsigned, maximum/minimum propagate NaN).
#include <cmath>
#include <limits>

#include "ir/error.h"
#include "ir/ops.h"
#include "ir/types.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/IR/Builders.h"

namespace weft::cpu::codegen {

namespace arith = mlir::arith;
namespace math = mlir::math;

/// Builds scalar ops at the builder's insertion point.
class ScalarOps {
 public:
  using Value = mlir::Value;
  using DType = ir::DType;
  using OpKind = ir::OpKind;

  /// Ops go where `builder` inserts, at `loc`.
  ScalarOps(mlir::OpBuilder& builder, mlir::Location loc) : b_(builder), loc_(loc) {}

  /// The element type of a buffer of dtype `t` (bool is a byte).
  mlir::Type storageType(DType t) {
    switch (t) {
      case DType::f32: return b_.getF32Type();
      case DType::f64: return b_.getF64Type();
      case DType::i32: return b_.getI32Type();
      case DType::i64: return b_.getI64Type();
      case DType::boolean: return b_.getI8Type();
      case DType::bf16: break;
    }
    throw Error("generated kernels do not support dtype " + std::string(ir::dtypeName(t)));
  }
  /// The type of a value of dtype `t` in registers (bool is i1).
  mlir::Type valueType(DType t) { return t == DType::boolean ? b_.getI1Type() : storageType(t); }

  /// The scalar `v` as a value of dtype `t` (floats rounded, ints truncated, bool v != 0).
  Value scalar(double v, DType t) {
    mlir::Type type = valueType(t);
    if (ir::isFloat(t)) return b_.create<arith::ConstantOp>(loc_, b_.getFloatAttr(type, v));
    if (t == DType::boolean) return b_.create<arith::ConstantOp>(loc_, b_.getIntegerAttr(type, v != 0 ? 1 : 0));
    return b_.create<arith::ConstantOp>(loc_, b_.getIntegerAttr(type, static_cast<int64_t>(v)));
  }
  /// The integer `v` as a value of dtype `t`.
  Value intScalar(int64_t v, DType t) { return b_.create<arith::ConstantOp>(loc_, b_.getIntegerAttr(valueType(t), v)); }
  /// A float comparison.
  Value cmpf(arith::CmpFPredicate p, Value a, Value c) { return b_.create<arith::CmpFOp>(loc_, p, a, c); }
  /// An integer comparison.
  Value cmpi(arith::CmpIPredicate p, Value a, Value c) { return b_.create<arith::CmpIOp>(loc_, p, a, c); }
  /// `c ? t : f`.
  Value select(Value c, Value t, Value f) { return b_.create<arith::SelectOp>(loc_, c, t, f); }

  /// `x` of dtype `from` converted as the reference does: floats round, float -> int
  /// truncates and saturates (NaN -> 0), ints wrap, anything -> bool is `!= 0`.
  Value convert(Value x, DType from, DType to) {
    if (from == to) return x;
    mlir::Type type = valueType(to);
    bool fromFloat = ir::isFloat(from), toFloat = ir::isFloat(to);
    if (to == DType::boolean)
      return fromFloat ? cmpf(arith::CmpFPredicate::UNE, x, scalar(0, from))
                       : cmpi(arith::CmpIPredicate::ne, x, intScalar(0, from));
    if (from == DType::boolean)
      return toFloat ? Value(b_.create<arith::UIToFPOp>(loc_, type, x))
                     : Value(b_.create<arith::ExtUIOp>(loc_, type, x));
    if (fromFloat && toFloat)
      return ir::dtypeSize(to) > ir::dtypeSize(from) ? Value(b_.create<arith::ExtFOp>(loc_, type, x))
                                                     : Value(b_.create<arith::TruncFOp>(loc_, type, x));
    if (!fromFloat && !toFloat)
      return ir::dtypeSize(to) > ir::dtypeSize(from) ? Value(b_.create<arith::ExtSIOp>(loc_, type, x))
                                                     : Value(b_.create<arith::TruncIOp>(loc_, type, x));
    if (!fromFloat) return b_.create<arith::SIToFPOp>(loc_, type, x);
    double limit = std::ldexp(1.0, to == DType::i32 ? 31 : 63);  // -limit is the minimum, limit - 1 the maximum
    Value truncated = b_.create<arith::FPToSIOp>(loc_, type, x);
    bool narrow = to == DType::i32;
    int64_t lowest = narrow ? std::numeric_limits<int32_t>::min() : std::numeric_limits<int64_t>::min();
    int64_t highest = narrow ? std::numeric_limits<int32_t>::max() : std::numeric_limits<int64_t>::max();
    Value result = select(cmpf(arith::CmpFPredicate::OLT, x, scalar(-limit, from)), intScalar(lowest, to), truncated);
    result = select(cmpf(arith::CmpFPredicate::OGE, x, scalar(limit, from)), intScalar(highest, to), result);
    return select(cmpf(arith::CmpFPredicate::UNO, x, x), intScalar(0, to), result);
  }

  /// log for f32. The math dialect's approximation clamps its argument to the smallest normal
  /// float, so a denormal x (kept with WEFT_DENORMALS=keep) is first scaled by 2^24 and 24 ln 2
  /// taken off: log(1e-40) is -92.1, not -87.3. Flushed runs read denormals as 0 (-inf).
  Value logF32(Value x) {
    const float smallestNormal = std::numeric_limits<float>::min();
    Value tiny = cmpf(arith::CmpFPredicate::OLT, x, scalar(smallestNormal, DType::f32));
    Value scaled = select(tiny, b_.create<arith::MulFOp>(loc_, x, scalar(16777216.0, DType::f32)), x);
    Value log = b_.create<math::LogOp>(loc_, scaled);
    return select(tiny, b_.create<arith::SubFOp>(loc_, log, scalar(24 * 0.69314718055994531, DType::f32)), log);
  }

  /// pow for f32 as exp(y * log|x|), with the sign of odd integer powers of negative x, NaN for
  /// other powers of negative finite x (those of -inf are +inf or +0), and 1 when y == 0 or
  /// x == 1 (as std::pow).
  Value powF32(Value x, Value y) {
    Value magnitude = b_.create<math::ExpOp>(loc_, b_.create<arith::MulFOp>(loc_, y, logF32(b_.create<math::AbsFOp>(loc_, x))));
    Value floorY = b_.create<math::FloorOp>(loc_, y);
    Value isInteger = cmpf(arith::CmpFPredicate::OEQ, floorY, y);
    Value halfFloor = b_.create<math::FloorOp>(loc_, b_.create<arith::MulFOp>(loc_, y, scalar(0.5, DType::f32)));
    Value isOdd = cmpf(arith::CmpFPredicate::UNE, b_.create<arith::AddFOp>(loc_, halfFloor, halfFloor), floorY);
    Value minusInf = cmpf(arith::CmpFPredicate::OEQ, x, scalar(-INFINITY, DType::f32));
    Value ofNegative = select(isInteger, select(isOdd, b_.create<arith::NegFOp>(loc_, magnitude), magnitude),
                              select(minusInf, magnitude, scalar(std::nan(""), DType::f32)));
    Value result = select(cmpf(arith::CmpFPredicate::OLT, x, scalar(0, DType::f32)), ofNegative, magnitude);
    Value trivial = b_.create<arith::OrIOp>(loc_, cmpf(arith::CmpFPredicate::OEQ, y, scalar(0, DType::f32)),
                                            cmpf(arith::CmpFPredicate::OEQ, x, scalar(1, DType::f32)));
    return select(trivial, scalar(1, DType::f32), result);
  }

  /// sin or cos for f32. The math dialect's approximation reduces the argument with one f32
  /// multiple of pi/2 (absolute errors near 7e-7 at |x| = 10, so large relative errors near
  /// zeros); here x - k * pi/2 is computed in three fma steps (Cody-Waite, exact for
  /// |k| < 2^16), then the quadrant selects +-sin or +-cos of the reduced argument, each a
  /// minimax polynomial on [-pi/4, pi/4] (Cephes sinf/cosf coefficients).
  Value sinCosF32(Value x, bool isCos) {
    auto c = [&](double v) { return scalar(v, DType::f32); };
    auto mul = [&](Value p, Value q) -> Value { return b_.create<arith::MulFOp>(loc_, p, q); };
    auto add = [&](Value p, Value q) -> Value { return b_.create<arith::AddFOp>(loc_, p, q); };
    auto fma = [&](Value p, Value q, Value r) -> Value { return b_.create<math::FmaOp>(loc_, p, q, r); };
    Value k = b_.create<math::FloorOp>(loc_, fma(x, c(0.63661977236758134), c(0.5)));
    Value r = fma(k, c(-1.5703125), x);
    r = fma(k, c(-4.837512969970703125e-4), r);
    r = fma(k, c(-7.54978995489188216e-8), r);
    Value z = mul(r, r);
    Value sinPoly = fma(fma(z, c(-1.9515295891e-4), c(8.3321608736e-3)), z, c(-1.6666654611e-1));
    Value sinR = fma(mul(r, z), sinPoly, r);
    Value cosPoly = fma(fma(z, c(2.443315711809948e-5), c(-1.388731625493765e-3)), z, c(4.166664568298827e-2));
    Value cosR = fma(mul(z, z), cosPoly, fma(z, c(-0.5), c(1)));
    // quadrant = k mod 4 (exact in f32); cos(x) = sin(x + pi/2) is one quadrant further.
    Value quadrant = b_.create<arith::SubFOp>(loc_, k, mul(c(4), b_.create<math::FloorOp>(loc_, mul(k, c(0.25)))));
    if (isCos) quadrant = add(quadrant, c(1));
    Value odd = b_.create<arith::OrIOp>(loc_, cmpf(arith::CmpFPredicate::OEQ, quadrant, c(1)),
                                        cmpf(arith::CmpFPredicate::OEQ, quadrant, c(3)));
    Value negative = cmpf(arith::CmpFPredicate::OGE, quadrant, c(2));
    negative = b_.create<arith::AndIOp>(loc_, negative, cmpf(arith::CmpFPredicate::OLT, quadrant, c(4)));
    Value v = select(odd, cosR, sinR);
    return select(negative, b_.create<arith::NegFOp>(loc_, v), v);
  }

  /// sign(x): -1, 0 or 1 (NaN stays NaN).
  Value sign(Value x, DType t) {
    if (ir::isFloat(t)) {
      Value zeroOrNaN = select(cmpf(arith::CmpFPredicate::UNO, x, x), x, scalar(0, t));
      return select(cmpf(arith::CmpFPredicate::OGT, x, scalar(0, t)), scalar(1, t),
                    select(cmpf(arith::CmpFPredicate::OLT, x, scalar(0, t)), scalar(-1, t), zeroOrNaN));
    }
    return select(cmpi(arith::CmpIPredicate::sgt, x, intScalar(0, t)), intScalar(1, t),
                  select(cmpi(arith::CmpIPredicate::slt, x, intScalar(0, t)), intScalar(-1, t), intScalar(0, t)));
  }

  /// A comparison op (eq ... ge) of two values of dtype `t`: ordered for floats except ne,
  /// signed for ints, unsigned for bools.
  Value compare(OpKind op, Value a, Value c, DType t) {
    using F = arith::CmpFPredicate;
    using I = arith::CmpIPredicate;
    bool isBool = t == DType::boolean;
    if (ir::isFloat(t)) {
      F p = op == OpKind::Eq ? F::OEQ : op == OpKind::Ne ? F::UNE : op == OpKind::Lt ? F::OLT
            : op == OpKind::Le ? F::OLE : op == OpKind::Gt ? F::OGT : F::OGE;
      return cmpf(p, a, c);
    }
    I p = op == OpKind::Eq ? I::eq : op == OpKind::Ne ? I::ne
          : op == OpKind::Lt ? (isBool ? I::ult : I::slt) : op == OpKind::Le ? (isBool ? I::ule : I::sle)
          : op == OpKind::Gt ? (isBool ? I::ugt : I::sgt) : (isBool ? I::uge : I::sge);
    return cmpi(p, a, c);
  }

  /// Elementwise op `op` on `a` (operand dtype `t`; for select, the branches' dtype), giving
  /// a value of dtype `result`.
  Value elementwise(OpKind op, llvm::ArrayRef<Value> a, DType t, DType result) {
    bool fl = ir::isFloat(t);
    auto unaryFloat = [&](auto tag) -> Value { return b_.create<decltype(tag)>(loc_, a[0]); };
    switch (op) {
      case OpKind::Neg: return fl ? Value(b_.create<arith::NegFOp>(loc_, a[0])) : negateInt(a[0], t);
      case OpKind::Abs:
        if (fl) return b_.create<math::AbsFOp>(loc_, a[0]);
        return select(cmpi(arith::CmpIPredicate::slt, a[0], intScalar(0, t)), negateInt(a[0], t), a[0]);
      case OpKind::Exp: return unaryFloat(math::ExpOp());
      case OpKind::Log: return t == DType::f32 ? logF32(a[0]) : unaryFloat(math::LogOp());
      case OpKind::Sqrt: return unaryFloat(math::SqrtOp());
      case OpKind::Tanh: return unaryFloat(math::TanhOp());
      case OpKind::Sin: return t == DType::f32 ? sinCosF32(a[0], false) : unaryFloat(math::SinOp());
      case OpKind::Cos: return t == DType::f32 ? sinCosF32(a[0], true) : unaryFloat(math::CosOp());
      case OpKind::Erf: return unaryFloat(math::ErfOp());
      case OpKind::Floor: return unaryFloat(math::FloorOp());
      case OpKind::Rsqrt: return b_.create<arith::DivFOp>(loc_, scalar(1, t), b_.create<math::SqrtOp>(loc_, a[0]));
      case OpKind::Sigmoid: {
        Value e = b_.create<math::ExpOp>(loc_, b_.create<arith::NegFOp>(loc_, a[0]));
        return b_.create<arith::DivFOp>(loc_, scalar(1, t), b_.create<arith::AddFOp>(loc_, scalar(1, t), e));
      }
      case OpKind::Sign: return sign(a[0], t);
      case OpKind::LogicalNot: return b_.create<arith::XOrIOp>(loc_, a[0], intScalar(1, DType::boolean));
      case OpKind::StopGradient: return a[0];
      case OpKind::Cast: return convert(a[0], t, result);
      case OpKind::Add: return binary<arith::AddFOp, arith::AddIOp>(fl, a[0], a[1]);
      case OpKind::Sub: return binary<arith::SubFOp, arith::SubIOp>(fl, a[0], a[1]);
      case OpKind::Mul: return binary<arith::MulFOp, arith::MulIOp>(fl, a[0], a[1]);
      case OpKind::Div: return b_.create<arith::DivFOp>(loc_, a[0], a[1]);
      case OpKind::Pow: return t == DType::f32 ? powF32(a[0], a[1]) : Value(b_.create<math::PowFOp>(loc_, a[0], a[1]));
      case OpKind::Maximum: return binary<arith::MaximumFOp, arith::MaxSIOp>(fl, a[0], a[1]);
      case OpKind::Minimum: return binary<arith::MinimumFOp, arith::MinSIOp>(fl, a[0], a[1]);
      case OpKind::LogicalAnd: return b_.create<arith::AndIOp>(loc_, a[0], a[1]);
      case OpKind::LogicalOr: return b_.create<arith::OrIOp>(loc_, a[0], a[1]);
      case OpKind::Eq: case OpKind::Ne: case OpKind::Lt: case OpKind::Le: case OpKind::Gt: case OpKind::Ge:
        return compare(op, a[0], a[1], t);
      case OpKind::Select: return select(a[0], a[1], a[2]);
      default: break;
    }
    throw Error("generated kernels cannot emit " + std::string(ir::opName(op)));
  }

  /// The identity of reduction `op` (reduce_sum/max/min) in dtype `t`.
  Value initial(OpKind op, DType t) {
    bool isMax = op == OpKind::ReduceMax, isMin = op == OpKind::ReduceMin;
    if (ir::isFloat(t)) return scalar(isMax ? -INFINITY : isMin ? INFINITY : 0.0, t);
    bool wide = t == DType::i64;
    int64_t lowest = wide ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int32_t>::min();
    int64_t highest = wide ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int32_t>::max();
    return intScalar(isMax ? lowest : isMin ? highest : 0, t);
  }

  /// `acc` combined with `x` by reduction `op`; NaN propagates through max and min.
  Value combine(OpKind op, Value acc, Value x, DType t) {
    bool fl = ir::isFloat(t);
    switch (op) {
      case OpKind::ReduceMax:
        return fl ? Value(b_.create<arith::MaximumFOp>(loc_, acc, x, arith::FastMathFlags::nsz))
                  : Value(b_.create<arith::MaxSIOp>(loc_, acc, x));
      case OpKind::ReduceMin:
        return fl ? Value(b_.create<arith::MinimumFOp>(loc_, acc, x, arith::FastMathFlags::nsz))
                  : Value(b_.create<arith::MinSIOp>(loc_, acc, x));
      default:  // sums may be reassociated, so that LLVM vectorizes them
        return fl ? Value(b_.create<arith::AddFOp>(loc_, acc, x, arith::FastMathFlags::reassoc))
                  : Value(b_.create<arith::AddIOp>(loc_, acc, x));
    }
  }


 private:
  /// FloatOp on floats, IntOp on integers.
  template <class FloatOp, class IntOp>
  Value binary(bool isFloat, Value a, Value c) {
    return isFloat ? Value(b_.create<FloatOp>(loc_, a, c)) : Value(b_.create<IntOp>(loc_, a, c));
  }
  /// 0 - x, wrapping.
  Value negateInt(Value x, DType t) { return b_.create<arith::SubIOp>(loc_, intScalar(0, t), x); }

  mlir::OpBuilder& b_;
  mlir::Location loc_;
};

}  // namespace weft::cpu::codegen
