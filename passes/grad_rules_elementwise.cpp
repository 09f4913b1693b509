// Gradient rules of the elementwise ops. Unary rules multiply the cotangent g by the
// derivative, written with the forward result y where that is cheaper (exp, tanh, sigmoid,
// sqrt, rsqrt). Binary ops broadcast, so each operand's cotangent is summed back to the
// operand's shape. maximum/minimum split g evenly between equal operands (as PyTorch does);
// pow's exponent cotangent is g * y * log(a), taken as 0 where a == 0 and b >= 0; its base
// cotangent g * b * a^(b-1) is taken as 0 where b == 0.
#include <cmath>

#include "passes/grad_rules.h"

namespace weft::passes::grad {
namespace {

using ir::OpKind;
using ir::ValueId;

ValueId scalarLike(GradContext& c, double v) { return c.e.scalar(v, c.resultType().dtype); }

/// For a unary op: operand cotangent g * derivative.
Grads times(GradContext& c, ValueId derivative) { return {c.e.mul(c.cotangent, derivative)}; }

Grads neg(GradContext& c) { return {c.e.neg(c.cotangent)}; }

/// d|x| = sign(x), written with comparisons of a frozen x so it differentiates to 0.
Grads abs(GradContext& c) {
  Emitter& e = c.e;
  ValueId x = frozen(e, c.operand(0)), zero = scalarLike(c, 0);
  ir::DType t = c.resultType().dtype;
  ValueId sign = e.sub(indicator(e, e.op(OpKind::Gt, {x, zero}), t), indicator(e, e.op(OpKind::Lt, {x, zero}), t));
  return times(c, sign);
}

Grads exp(GradContext& c) { return times(c, c.result); }
Grads log(GradContext& c) { return {c.e.div(c.cotangent, c.operand(0))}; }
/// d sqrt(x) = 1 / (2 y).
Grads sqrt(GradContext& c) { return {c.e.div(c.cotangent, c.e.mul(c.result, scalarLike(c, 2)))}; }
/// d x^(-1/2) = -1/2 x^(-3/2) = -1/2 y^3.
Grads rsqrt(GradContext& c) {
  Emitter& e = c.e;
  ValueId cube = e.mul(e.mul(c.result, c.result), c.result);
  return times(c, e.mul(cube, scalarLike(c, -0.5)));
}
Grads tanh(GradContext& c) {
  Emitter& e = c.e;
  return times(c, e.sub(scalarLike(c, 1), e.mul(c.result, c.result)));
}
Grads sigmoid(GradContext& c) {
  Emitter& e = c.e;
  return times(c, e.mul(c.result, e.sub(scalarLike(c, 1), c.result)));
}
Grads sin(GradContext& c) { return times(c, c.e.op(OpKind::Cos, {c.operand(0)})); }
Grads cos(GradContext& c) { return {c.e.neg(c.e.mul(c.cotangent, c.e.op(OpKind::Sin, {c.operand(0)})))}; }
/// d erf(x) = 2/sqrt(pi) exp(-x^2).
Grads erf(GradContext& c) {
  Emitter& e = c.e;
  ValueId x = c.operand(0);
  ValueId gauss = e.exp(e.neg(e.mul(x, x)));
  return times(c, e.mul(gauss, scalarLike(c, 2.0 / std::sqrt(M_PI))));
}
/// Float to float only (integer values carry no gradient): cast the cotangent back.
Grads cast(GradContext& c) { return {c.e.cast(c.cotangent, c.operandTypes[0].dtype)}; }

// ---- binary ----------------------------------------------------------------------------

/// Sums each wanted operand cotangent back to its operand's shape.
Grads reduced(GradContext& c, std::optional<ValueId> lhs, std::optional<ValueId> rhs) {
  Grads r(2);
  if (c.wants(0) && lhs) r[0] = sumToShape(c.e, *lhs, c.operandShape(0));
  if (c.wants(1) && rhs) r[1] = sumToShape(c.e, *rhs, c.operandShape(1));
  return r;
}

Grads add(GradContext& c) { return reduced(c, c.cotangent, c.cotangent); }

Grads sub(GradContext& c) {
  std::optional<ValueId> rhs;
  if (c.wants(1)) rhs = c.e.neg(c.cotangent);
  return reduced(c, c.cotangent, rhs);
}

Grads mul(GradContext& c) {
  std::optional<ValueId> lhs, rhs;
  if (c.wants(0)) lhs = c.e.mul(c.cotangent, c.operand(1));
  if (c.wants(1)) rhs = c.e.mul(c.cotangent, c.operand(0));
  return reduced(c, lhs, rhs);
}

/// d(a/b) = g/b for a and -g a/b^2 = -(g/b) y for b.
Grads div(GradContext& c) {
  Emitter& e = c.e;
  ValueId overB = e.div(c.cotangent, c.operand(1));
  std::optional<ValueId> rhs;
  if (c.wants(1)) rhs = e.neg(e.mul(overB, c.result));
  return reduced(c, overB, rhs);
}

Grads pow(GradContext& c) {
  Emitter& e = c.e;
  ValueId a = c.operand(0), b = c.operand(1), zero = scalarLike(c, 0);
  std::optional<ValueId> lhs, rhs;
  if (c.wants(0)) {
    ValueId slope = e.mul(b, e.op(OpKind::Pow, {a, e.sub(b, scalarLike(c, 1))}));
    ValueId constantPower = e.op(OpKind::Eq, {frozen(e, b), zero});
    lhs = e.mul(c.cotangent, e.select(constantPower, zero, slope));
  }
  if (c.wants(1)) {
    ValueId slope = e.mul(c.result, e.log(a));
    ValueId fa = frozen(e, a), fb = frozen(e, b);
    ValueId zeroBase = e.op(OpKind::LogicalAnd, {e.op(OpKind::Eq, {fa, zero}), e.op(OpKind::Ge, {fb, zero})});
    rhs = e.mul(c.cotangent, e.select(zeroBase, zero, slope));
  }
  return reduced(c, lhs, rhs);
}

/// maximum (`isMax`) or minimum: the cotangent goes to the winning operand, half to each on a tie.
Grads extremum(GradContext& c, bool isMax) {
  Emitter& e = c.e;
  ValueId a = frozen(e, c.operand(0)), b = frozen(e, c.operand(1));
  ValueId one = scalarLike(c, 1), half = scalarLike(c, 0.5), zero = scalarLike(c, 0);
  ValueId tie = e.op(OpKind::Eq, {a, b});
  OpKind wins = isMax ? OpKind::Gt : OpKind::Lt;
  std::optional<ValueId> lhs, rhs;
  if (c.wants(0)) lhs = e.mul(c.cotangent, e.select(e.op(wins, {a, b}), one, e.select(tie, half, zero)));
  if (c.wants(1)) rhs = e.mul(c.cotangent, e.select(e.op(wins, {b, a}), one, e.select(tie, half, zero)));
  return reduced(c, lhs, rhs);
}

Grads maximum(GradContext& c) { return extremum(c, true); }
Grads minimum(GradContext& c) { return extremum(c, false); }

/// select(cond, t, f): t gets g where cond holds, f elsewhere; cond gets nothing.
Grads select(GradContext& c) {
  Emitter& e = c.e;
  ValueId cond = c.operand(0), zero = scalarLike(c, 0);
  Grads r(3);
  if (c.wants(1)) r[1] = sumToShape(e, e.select(cond, c.cotangent, zero), c.operandShape(1));
  if (c.wants(2)) r[2] = sumToShape(e, e.select(cond, zero, c.cotangent), c.operandShape(2));
  return r;
}

}  // namespace

void addElementwiseGradRules(std::map<OpKind, GradRule>& table) {
  table[OpKind::Neg] = neg;
  table[OpKind::Abs] = abs;
  table[OpKind::Exp] = exp;
  table[OpKind::Log] = log;
  table[OpKind::Sqrt] = sqrt;
  table[OpKind::Rsqrt] = rsqrt;
  table[OpKind::Tanh] = tanh;
  table[OpKind::Sigmoid] = sigmoid;
  table[OpKind::Sin] = sin;
  table[OpKind::Cos] = cos;
  table[OpKind::Erf] = erf;
  table[OpKind::Cast] = cast;
  table[OpKind::Add] = add;
  table[OpKind::Sub] = sub;
  table[OpKind::Mul] = mul;
  table[OpKind::Div] = div;
  table[OpKind::Pow] = pow;
  table[OpKind::Maximum] = maximum;
  table[OpKind::Minimum] = minimum;
  table[OpKind::Select] = select;
}

}  // namespace weft::passes::grad
