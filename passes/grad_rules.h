#pragma once
/// Gradient rules: one function per differentiable op, registered in a table keyed by OpKind
/// beside the op's family (grad_rules_elementwise.cpp, _reduce, _movement, _contraction,
/// _composite). A rule sees the forward node, its result and the result's cotangent and emits,
/// in primitives, one cotangent per operand it is asked for. Rules must be differentiable
/// themselves (autodiff runs over their output for second derivatives), so masks that are
/// piecewise constant read their float inputs through `frozen` (stop_gradient).
#include <map>
#include <optional>
#include <vector>

#include "ir/graph.h"
#include "passes/emitter.h"

namespace weft::passes::grad {

/// What a gradient rule sees. Types and the node are copies, so they stay valid while the
/// rule appends nodes to the graph.
struct GradContext {
  Emitter& e;                                ///< emits into the graph, stamped with the node's loc
  ir::Node node;                             ///< the forward node (a copy)
  ir::ValueId result;                        ///< the forward node's value
  ir::ValueId cotangent;                     ///< the cotangent of `result` (same type)
  std::vector<bool> wanted;                  ///< wanted[i]: operand i needs a cotangent
  std::vector<ir::TensorType> operandTypes;  ///< the operands' types

  /// Operand i's value.
  ir::ValueId operand(size_t i) const { return node.operands.at(i); }
  /// Operand i's shape.
  const ir::Shape& operandShape(size_t i) const { return operandTypes.at(i).shape; }
  /// True when operand i needs a cotangent.
  bool wants(size_t i) const { return i < wanted.size() && wanted[i]; }
  /// The result's type.
  const ir::TensorType& resultType() const { return node.type; }
  /// The node's attributes.
  ir::AttrReader attr() const { return ir::AttrReader(node.attrs, node.op); }
};

/// One cotangent per operand; nullopt for a zero (or not wanted) cotangent.
using Grads = std::vector<std::optional<ir::ValueId>>;
/// A gradient rule.
using GradRule = Grads (*)(GradContext& c);

/// Every gradient rule, keyed by op.
const std::map<ir::OpKind, GradRule>& gradRules();
/// The rule of `op`, or nullptr.
GradRule findGradRule(ir::OpKind op);

// ---- helpers shared by the rules -----------------------------------------------------

/// Sums a broadcast cotangent `g` back to `target` (numpy broadcasting in reverse): sums the
/// leading dims and the dims where `target` has extent 1, then reshapes. Returns `g` itself
/// when the shapes already agree.
ir::ValueId sumToShape(Emitter& e, ir::ValueId g, const ir::Shape& target);
/// A value of `type` whose every element is 0 (a broadcast scalar).
ir::ValueId zeros(Emitter& e, ir::TensorType type);
/// `x` read through stop_gradient: for masks whose derivative is zero almost everywhere.
ir::ValueId frozen(Emitter& e, ir::ValueId x);
/// cast(cond) to `dtype`: 1 where cond holds, else 0.
ir::ValueId indicator(Emitter& e, ir::ValueId cond, ir::DType dtype);
/// Reshapes `x` to `shape` unless it already has it.
ir::ValueId reshapeTo(Emitter& e, ir::ValueId x, const ir::Shape& shape);
/// Broadcasts `x` to `shape` unless it already has it.
ir::ValueId broadcastTo(Emitter& e, ir::ValueId x, const ir::Shape& shape);
/// The shape of `x` with `axes` kept as extent 1 (the keepdims shape of a reduction).
ir::Shape keptShape(const ir::Shape& x, const std::vector<int64_t>& axes);

/// Adds the rules of elementwise ops (grad_rules_elementwise.cpp).
void addElementwiseGradRules(std::map<ir::OpKind, GradRule>& table);
/// Adds the rules of reductions (grad_rules_reduce.cpp).
void addReduceGradRules(std::map<ir::OpKind, GradRule>& table);
/// Adds the rules of data-movement ops (grad_rules_movement.cpp).
void addMovementGradRules(std::map<ir::OpKind, GradRule>& table);
/// Adds the rules of matmul, conv, conv_transpose, pooling and their backward ops
/// (grad_rules_contraction.cpp).
void addContractionGradRules(std::map<ir::OpKind, GradRule>& table);
/// Adds direct rules of a few composites (grad_rules_composite.cpp); the others are
/// differentiated through their decomposition.
void addCompositeGradRules(std::map<ir::OpKind, GradRule>& table);
/// Adds the rules of batch, layer and group norm (grad_rules_norm.cpp).
void addNormGradRules(std::map<ir::OpKind, GradRule>& table);

}  // namespace weft::passes::grad
