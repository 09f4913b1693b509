// Graph inputs and outputs, sources, elementwise math and reductions.
#include <cmath>

#include "frontend/emit.h"
#include "frontend/ops.h"

namespace weft {

using detail::emit;
using detail::flag;
using ir::OpKind;

// ---- graph interface ------------------------------------------------------------------

Tensor input(const std::string& name, const Shape& shape, SrcLoc loc) {
  GraphBuilder& b = currentBuilder(loc);
  return input(name, shape, b.floatType(), loc);
}

Tensor input(const std::string& name, const Shape& shape, DType dtype, SrcLoc loc) {
  GraphBuilder& b = currentBuilder(loc);
  return Tensor(&b, b.addInput(name, {dtype, shape}, loc));
}

void output(const std::string& name, const Tensor& t, SrcLoc loc) {
  GraphBuilder& b = detail::builderOf("output", {t}, loc);
  b.addOutput(name, t.id(), loc);
}

// ---- sources --------------------------------------------------------------------------

Tensor scalar(double value, SrcLoc loc) { return scalar(value, currentBuilder(loc).floatType(), loc); }

Tensor scalar(double value, DType dtype, SrcLoc loc) {
  GraphBuilder& b = currentBuilder(loc);
  return Tensor(&b, b.scalarConstant(value, dtype, loc));
}

Tensor constant(const std::vector<double>& values, const Shape& shape, DType dtype, SrcLoc loc) {
  GraphBuilder& b = currentBuilder(loc);
  ir::TensorType t{dtype, shape};
  for (int64_t d : shape)
    if (d < 0) failAt(loc, "constant: shape " + ir::shapeStr(shape) + " has a negative extent");
  if (static_cast<int64_t>(values.size()) != t.numel())
    failAt(loc, "constant: " + std::to_string(values.size()) + " values do not fill " + t.str());
  auto data = std::make_shared<ir::TensorData>(t);
  for (size_t i = 0; i < values.size(); ++i) data->set(static_cast<int64_t>(i), values[i]);
  return Tensor(&b, b.addConstant(std::move(data), loc));
}

Tensor full(const Shape& shape, double value, DType dtype, SrcLoc loc) {
  return broadcast_to(scalar(value, dtype, loc), shape, loc);
}

Tensor zeros(const Shape& shape, SrcLoc loc) { return full(shape, 0, currentBuilder(loc).floatType(), loc); }
Tensor ones(const Shape& shape, SrcLoc loc) { return full(shape, 1, currentBuilder(loc).floatType(), loc); }

Tensor iota(const Shape& shape, int64_t axis, DType dtype, SrcLoc loc) {
  int64_t a = axis < 0 ? axis + static_cast<int64_t>(shape.size()) : axis;
  return emit(OpKind::Iota, {}, {{"shape", shape}, {"axis", a}, {"dtype", dtype}}, loc);
}

Tensor random_uniform(const Shape& shape, double low, double high, SrcLoc loc) {
  GraphBuilder& b = currentBuilder(loc);
  return emit(OpKind::RandomUniform, {},
              {{"shape", shape}, {"dtype", b.floatType()}, {"seed", b.nextRandomSeed()}, {"low", low}, {"high", high}},
              loc);
}

Tensor random_normal(const Shape& shape, double mean, double std, SrcLoc loc) {
  GraphBuilder& b = currentBuilder(loc);
  return emit(OpKind::RandomNormal, {},
              {{"shape", shape}, {"dtype", b.floatType()}, {"seed", b.nextRandomSeed()}, {"mean", mean}, {"std", std}},
              loc);
}

// ---- elementwise unary ----------------------------------------------------------------

Tensor neg(const Tensor& x, SrcLoc loc) { return emit(OpKind::Neg, {x}, {}, loc); }
Tensor abs(const Tensor& x, SrcLoc loc) { return emit(OpKind::Abs, {x}, {}, loc); }
Tensor exp(const Tensor& x, SrcLoc loc) { return emit(OpKind::Exp, {x}, {}, loc); }
Tensor log(const Tensor& x, SrcLoc loc) { return emit(OpKind::Log, {x}, {}, loc); }
Tensor sqrt(const Tensor& x, SrcLoc loc) { return emit(OpKind::Sqrt, {x}, {}, loc); }
Tensor rsqrt(const Tensor& x, SrcLoc loc) { return emit(OpKind::Rsqrt, {x}, {}, loc); }
Tensor tanh(const Tensor& x, SrcLoc loc) { return emit(OpKind::Tanh, {x}, {}, loc); }
Tensor sigmoid(const Tensor& x, SrcLoc loc) { return emit(OpKind::Sigmoid, {x}, {}, loc); }
Tensor sin(const Tensor& x, SrcLoc loc) { return emit(OpKind::Sin, {x}, {}, loc); }
Tensor cos(const Tensor& x, SrcLoc loc) { return emit(OpKind::Cos, {x}, {}, loc); }
Tensor erf(const Tensor& x, SrcLoc loc) { return emit(OpKind::Erf, {x}, {}, loc); }
Tensor sign(const Tensor& x, SrcLoc loc) { return emit(OpKind::Sign, {x}, {}, loc); }
Tensor floor(const Tensor& x, SrcLoc loc) { return emit(OpKind::Floor, {x}, {}, loc); }
Tensor logical_not(const Tensor& x, SrcLoc loc) { return emit(OpKind::LogicalNot, {x}, {}, loc); }
Tensor stop_gradient(const Tensor& x, SrcLoc loc) { return emit(OpKind::StopGradient, {x}, {}, loc); }
Tensor cast(const Tensor& x, DType dtype, SrcLoc loc) { return emit(OpKind::Cast, {x}, {{"dtype", dtype}}, loc); }
Tensor square(const Tensor& x, SrcLoc loc) { return emit(OpKind::Mul, {x, x}, {}, loc); }

// ---- elementwise binary ---------------------------------------------------------------
namespace {

/// A scalar operand as a rank-0 constant of `like`'s dtype; refuses values the dtype
/// cannot hold exactly (0.5 for an int tensor, 2 for a bool one).
Tensor scalarLike(double v, const Tensor& like, std::string_view op, const SrcLoc& loc) {
  DType dt = like.dtype();
  bool exact = ir::isFloat(dt) || (dt == DType::boolean ? (v == 0 || v == 1) : std::isfinite(v) && std::trunc(v) == v);
  if (!exact)
    failAt(loc, std::string(op) + ": the scalar " + std::to_string(v) + " cannot be used with a " +
                    std::string(ir::dtypeName(dt)) + " tensor; cast one side first");
  return Tensor(&like.builder(), like.builder().scalarConstant(v, dt, loc));
}

Tensor binary(OpKind op, const Operand& a, const Operand& b, const SrcLoc& loc) {
  std::string_view name = ir::opName(op);
  if (!a.isTensor() && !b.isTensor()) failAt(loc, std::string(name) + ": needs a tensor operand, got two scalars");
  const Tensor& like = a.isTensor() ? a.tensor() : b.tensor();
  Tensor lhs = a.isTensor() ? a.tensor() : scalarLike(a.scalar(), like, name, loc);
  Tensor rhs = b.isTensor() ? b.tensor() : scalarLike(b.scalar(), like, name, loc);
  return emit(op, {lhs, rhs}, {}, loc);
}

}  // namespace

Tensor add(const Operand& a, const Operand& b, SrcLoc loc) { return binary(OpKind::Add, a, b, loc); }
Tensor sub(const Operand& a, const Operand& b, SrcLoc loc) { return binary(OpKind::Sub, a, b, loc); }
Tensor mul(const Operand& a, const Operand& b, SrcLoc loc) { return binary(OpKind::Mul, a, b, loc); }
Tensor div(const Operand& a, const Operand& b, SrcLoc loc) { return binary(OpKind::Div, a, b, loc); }
Tensor pow(const Operand& a, const Operand& b, SrcLoc loc) { return binary(OpKind::Pow, a, b, loc); }
Tensor maximum(const Operand& a, const Operand& b, SrcLoc loc) { return binary(OpKind::Maximum, a, b, loc); }
Tensor minimum(const Operand& a, const Operand& b, SrcLoc loc) { return binary(OpKind::Minimum, a, b, loc); }
Tensor logical_and(const Operand& a, const Operand& b, SrcLoc loc) { return binary(OpKind::LogicalAnd, a, b, loc); }
Tensor logical_or(const Operand& a, const Operand& b, SrcLoc loc) { return binary(OpKind::LogicalOr, a, b, loc); }
Tensor eq(const Operand& a, const Operand& b, SrcLoc loc) { return binary(OpKind::Eq, a, b, loc); }
Tensor ne(const Operand& a, const Operand& b, SrcLoc loc) { return binary(OpKind::Ne, a, b, loc); }
Tensor lt(const Operand& a, const Operand& b, SrcLoc loc) { return binary(OpKind::Lt, a, b, loc); }
Tensor le(const Operand& a, const Operand& b, SrcLoc loc) { return binary(OpKind::Le, a, b, loc); }
Tensor gt(const Operand& a, const Operand& b, SrcLoc loc) { return binary(OpKind::Gt, a, b, loc); }
Tensor ge(const Operand& a, const Operand& b, SrcLoc loc) { return binary(OpKind::Ge, a, b, loc); }

Tensor where(const Tensor& cond, const Operand& onTrue, const Operand& onFalse, SrcLoc loc) {
  GraphBuilder& b = detail::builderOf("select", {cond}, loc);
  auto branch = [&](const Operand& o, const Operand& other) {
    if (o.isTensor()) return o.tensor();
    if (other.isTensor()) return scalarLike(o.scalar(), other.tensor(), "select", loc);
    return Tensor(&b, b.scalarConstant(o.scalar(), b.floatType(), loc));
  };
  return emit(OpKind::Select, {cond, branch(onTrue, onFalse), branch(onFalse, onTrue)}, {}, loc);
}

Tensor clamp(const Tensor& x, double lo, double hi, SrcLoc loc) {
  return minimum(maximum(x, lo, loc), hi, loc);
}

// ---- reductions -----------------------------------------------------------------------
namespace {

std::vector<int64_t> reductionAxes(const Tensor& x, const Axes& axes, OpKind op, const SrcLoc& loc) {
  detail::builderOf(ir::opName(op), {x}, loc);
  if (axes.all()) return detail::range(x.rank());
  std::vector<int64_t> out;
  for (int64_t a : axes.list()) out.push_back(detail::normAxis(a, x.rank(), ir::opName(op), {x}, loc));
  return out;
}

Tensor reduce(OpKind op, const Tensor& x, const Axes& axes, bool keepdims, const SrcLoc& loc) {
  return emit(op, {x}, {{"axes", reductionAxes(x, axes, op, loc)}, {"keepdims", flag(keepdims)}}, loc);
}

Tensor argReduce(OpKind op, const Tensor& x, int64_t axis, bool keepdims, const SrcLoc& loc) {
  detail::builderOf(ir::opName(op), {x}, loc);
  int64_t a = detail::normAxis(axis, x.rank(), ir::opName(op), {x}, loc);
  return emit(op, {x}, {{"axis", a}, {"keepdims", flag(keepdims)}}, loc);
}

}  // namespace

Tensor sum(const Tensor& x, Axes axes, bool keepdims, SrcLoc loc) { return reduce(OpKind::ReduceSum, x, axes, keepdims, loc); }
Tensor mean(const Tensor& x, Axes axes, bool keepdims, SrcLoc loc) { return reduce(OpKind::ReduceMean, x, axes, keepdims, loc); }
Tensor max(const Tensor& x, Axes axes, bool keepdims, SrcLoc loc) { return reduce(OpKind::ReduceMax, x, axes, keepdims, loc); }
Tensor min(const Tensor& x, Axes axes, bool keepdims, SrcLoc loc) { return reduce(OpKind::ReduceMin, x, axes, keepdims, loc); }
Tensor logsumexp(const Tensor& x, Axes axes, bool keepdims, SrcLoc loc) {
  return reduce(OpKind::LogSumExp, x, axes, keepdims, loc);
}
Tensor argmax(const Tensor& x, int64_t axis, bool keepdims, SrcLoc loc) {
  return argReduce(OpKind::Argmax, x, axis, keepdims, loc);
}
Tensor argmin(const Tensor& x, int64_t axis, bool keepdims, SrcLoc loc) {
  return argReduce(OpKind::Argmin, x, axis, keepdims, loc);
}

}  // namespace weft
