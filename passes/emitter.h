#pragma once
/// Emitter: short calls for appending ops to a graph, all stamped with one source location.
/// Decompositions and rewrites use it so that their code reads like the math it builds.
#include <string>
#include <vector>

#include "ir/graph.h"

namespace weft::passes {

/// Appends ops to a graph; every node it makes gets the emitter's `loc`.
class Emitter {
 public:
  /// Emits into `g`; new nodes carry `loc`.
  explicit Emitter(ir::Graph& g, std::string loc = "") : g_(g), loc_(std::move(loc)) {}

  /// The graph being built.
  ir::Graph& graph() { return g_; }
  /// The type of value `v` of the graph being built.
  const ir::TensorType& type(ir::ValueId v) const { return g_.type(v); }
  /// The shape of value `v`.
  const ir::Shape& shape(ir::ValueId v) const { return g_.type(v).shape; }
  /// The rank of value `v`.
  int64_t rank(ir::ValueId v) const { return g_.type(v).rank(); }

  /// Any op; its type comes from the type rule.
  ir::ValueId op(ir::OpKind kind, std::vector<ir::ValueId> operands, ir::Attrs attrs = {});
  /// A rank-0 constant of dtype `dtype` holding `value` (broadcasts in binary ops).
  ir::ValueId scalar(double value, ir::DType dtype);
  /// A rank-0 constant of the dtype of `like`.
  ir::ValueId scalarLike(double value, ir::ValueId like) { return scalar(value, type(like).dtype); }

  /// a + b (binary ops broadcast numpy-style).
  ir::ValueId add(ir::ValueId a, ir::ValueId b) { return op(ir::OpKind::Add, {a, b}); }
  /// a - b.
  ir::ValueId sub(ir::ValueId a, ir::ValueId b) { return op(ir::OpKind::Sub, {a, b}); }
  /// a * b.
  ir::ValueId mul(ir::ValueId a, ir::ValueId b) { return op(ir::OpKind::Mul, {a, b}); }
  /// a / b.
  ir::ValueId div(ir::ValueId a, ir::ValueId b) { return op(ir::OpKind::Div, {a, b}); }
  /// max(a, b) elementwise.
  ir::ValueId maximum(ir::ValueId a, ir::ValueId b) { return op(ir::OpKind::Maximum, {a, b}); }
  /// -x.
  ir::ValueId neg(ir::ValueId x) { return op(ir::OpKind::Neg, {x}); }
  /// |x|.
  ir::ValueId abs(ir::ValueId x) { return op(ir::OpKind::Abs, {x}); }
  /// e^x.
  ir::ValueId exp(ir::ValueId x) { return op(ir::OpKind::Exp, {x}); }
  /// ln x.
  ir::ValueId log(ir::ValueId x) { return op(ir::OpKind::Log, {x}); }
  /// 1 / sqrt(x).
  ir::ValueId rsqrt(ir::ValueId x) { return op(ir::OpKind::Rsqrt, {x}); }
  /// cond ? onTrue : onFalse, elementwise with broadcasting.
  ir::ValueId select(ir::ValueId cond, ir::ValueId onTrue, ir::ValueId onFalse) {
    return op(ir::OpKind::Select, {cond, onTrue, onFalse});
  }
  /// `x` converted to `dtype`.
  ir::ValueId cast(ir::ValueId x, ir::DType dtype);

  /// reduce_sum over explicit `axes`.
  ir::ValueId reduceSum(ir::ValueId x, std::vector<int64_t> axes, bool keepdims);
  /// reduce_max over explicit `axes`.
  ir::ValueId reduceMax(ir::ValueId x, std::vector<int64_t> axes, bool keepdims);
  /// The sum over `axes` divided by the number of elements reduced.
  ir::ValueId reduceMean(ir::ValueId x, const std::vector<int64_t>& axes, bool keepdims);
  /// Reshapes `x` to `shape`.
  ir::ValueId reshape(ir::ValueId x, ir::Shape shape);
  /// Transposes `x` by `perm` (result dim i is operand dim perm[i]).
  ir::ValueId transpose(ir::ValueId x, std::vector<int64_t> perm);
  /// An iota of `shape` counting along `axis`.
  ir::ValueId iota(ir::Shape shape, int64_t axis, ir::DType dtype);

 private:
  ir::Graph& g_;
  std::string loc_;
};

/// The dims 0..rank-1 in order.
std::vector<int64_t> allAxes(int64_t rank);

}  // namespace weft::passes
