// The gradient-rule table and the helpers the rules share.
#include "passes/grad_rules.h"

namespace weft::passes::grad {

using ir::ValueId;

const std::map<ir::OpKind, GradRule>& gradRules() {
  static const std::map<ir::OpKind, GradRule> table = [] {
    std::map<ir::OpKind, GradRule> t;
    addElementwiseGradRules(t);
    addReduceGradRules(t);
    addMovementGradRules(t);
    addContractionGradRules(t);
    addCompositeGradRules(t);
    addNormGradRules(t);
    return t;
  }();
  return table;
}

GradRule findGradRule(ir::OpKind op) {
  auto it = gradRules().find(op);
  return it == gradRules().end() ? nullptr : it->second;
}

ValueId sumToShape(Emitter& e, ValueId g, const ir::Shape& target) {
  ir::Shape shape = e.shape(g);
  if (shape == target) return g;
  size_t lead = shape.size() - target.size();
  std::vector<int64_t> axes;
  for (size_t d = 0; d < shape.size(); ++d)
    if (d < lead || (target[d - lead] == 1 && shape[d] != 1)) axes.push_back(static_cast<int64_t>(d));
  ValueId summed = axes.empty() ? g : e.reduceSum(g, axes, true);
  return reshapeTo(e, summed, target);
}

// `type` is taken by value: emitting may reallocate the graph it might refer into.
ValueId zeros(Emitter& e, ir::TensorType type) { return broadcastTo(e, e.scalar(0, type.dtype), type.shape); }

ValueId frozen(Emitter& e, ValueId x) { return e.op(ir::OpKind::StopGradient, {x}); }

ValueId indicator(Emitter& e, ValueId cond, ir::DType dtype) { return e.cast(cond, dtype); }

ValueId reshapeTo(Emitter& e, ValueId x, const ir::Shape& shape) {
  return e.shape(x) == shape ? x : e.reshape(x, shape);
}

ValueId broadcastTo(Emitter& e, ValueId x, const ir::Shape& shape) {
  return e.shape(x) == shape ? x : e.op(ir::OpKind::Broadcast, {x}, {{"shape", shape}});
}

ir::Shape keptShape(const ir::Shape& x, const std::vector<int64_t>& axes) {
  ir::Shape kept = x;
  for (int64_t a : axes) kept[static_cast<size_t>(a)] = 1;
  return kept;
}

}  // namespace weft::passes::grad
