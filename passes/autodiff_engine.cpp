// The reverse sweep of autodiff. Nodes are visited from the highest seed down; a node on a
// differentiable path with a cotangent calls its gradient rule, or, for a composite without
// one, emits its decomposition and runs a nested sweep over just those new nodes (their
// operands are the nested sweep's wrt values and its leaves). Cotangents meeting at a value
// are summed with `add`.
#include "passes/autodiff_engine.h"

#include <algorithm>
#include <stdexcept>

#include "ir/channels_last.h"
#include "ir/error.h"
#include "ir/verifier.h"
#include "passes/autodiff.h"
#include "passes/decompositions.h"
#include "passes/grad_rules.h"

namespace weft::passes::grad {

using ir::ValueId;

Edge edgeKind(const ir::Graph& g, ValueId node, size_t operand) {
  const ir::Node& n = g.node(node);
  if (!ir::isFloat(n.type.dtype) || !ir::isFloat(g.type(n.operands.at(operand)).dtype)) return Edge::None;
  if (n.op == ir::OpKind::StopGradient) return Edge::None;
  return isDifferentiable(n.op) ? Edge::Gradient : Edge::Forbidden;
}

std::string describe(const ir::Graph& g, ValueId v) {
  const ir::Node& n = g.node(v);
  std::string d = std::string(ir::opName(n.op)) + " " + ir::valueRef(g, v);
  if (!n.loc.empty()) d += " (at " + n.loc + ")";
  return d;
}

namespace {

[[noreturn]] void forbidden(const ir::Graph& g, ValueId v, const std::string& target) {
  const ir::OpInfo& info = ir::opInfo(g.node(v).op);
  std::string why = info.has(ir::kNoGrad) ? "which is not differentiable"
                                          : "which has no gradient rule and no decomposition";
  throw Error("autodiff: cannot differentiate " + target + ": the path goes through " + describe(g, v) + ", " +
              why + "; wrap its operand in stop_gradient to cut the path on purpose");
}

}  // namespace

PathAnalysis analyzePaths(const ir::Graph& g, const std::vector<ValueId>& seeds, const std::vector<ValueId>& wrt,
                          ValueId lowest, const std::string& target) {
  auto size = static_cast<size_t>(g.size());
  PathAnalysis a{std::vector<char>(size, 0), std::vector<char>(size, 0)};
  ValueId highest = -1;
  for (ValueId s : seeds) highest = std::max(highest, s);
  for (ValueId w : wrt)
    if (ir::isFloat(g.type(w).dtype)) a.dependsOnWrt[static_cast<size_t>(w)] = 1;
  for (ValueId v = lowest; v <= highest; ++v) {
    if (a.dependsOnWrt[static_cast<size_t>(v)]) continue;
    const ir::Node& n = g.node(v);
    for (size_t p = 0; p < n.operands.size(); ++p)
      if (a.dependsOnWrt[static_cast<size_t>(n.operands[p])] && edgeKind(g, v, p) != Edge::None) {
        a.dependsOnWrt[static_cast<size_t>(v)] = 1;
        break;
      }
  }
  for (ValueId s : seeds)
    if (a.dependsOnWrt[static_cast<size_t>(s)]) a.onPath[static_cast<size_t>(s)] = 1;
  for (ValueId v = highest; v >= lowest && v >= 0; --v) {
    if (!a.onPath[static_cast<size_t>(v)]) continue;
    const ir::Node& n = g.node(v);
    for (size_t p = 0; p < n.operands.size(); ++p) {
      auto o = static_cast<size_t>(n.operands[p]);
      Edge edge = edgeKind(g, v, p);
      if (edge == Edge::None || !a.dependsOnWrt[o]) continue;
      if (edge == Edge::Forbidden) forbidden(g, v, target);
      a.onPath[o] = 1;
    }
  }
  return a;
}

namespace {

/// Differentiates a composite without a rule of its own through its decomposition.
Grads throughDecomposition(ir::Graph& g, const ir::Node& node, ValueId cotangent, const std::vector<bool>& wanted,
                           const std::string& target) {
  Emitter e(g, node.loc);
  ValueId start = g.size();
  ValueId recomputed = decompose(e, node, node.operands);
  std::vector<ValueId> leaves;
  for (size_t p = 0; p < node.operands.size(); ++p)
    if (wanted[p] && std::find(leaves.begin(), leaves.end(), node.operands[p]) == leaves.end())
      leaves.push_back(node.operands[p]);
  auto inner = backprop(g, {{recomputed, cotangent}}, leaves, start, target);
  Grads result(node.operands.size());
  std::vector<ValueId> done;
  for (size_t p = 0; p < node.operands.size(); ++p) {
    ValueId o = node.operands[p];
    if (!wanted[p] || std::find(done.begin(), done.end(), o) != done.end()) continue;
    done.push_back(o);
    result[p] = inner[static_cast<size_t>(std::find(leaves.begin(), leaves.end(), o) - leaves.begin())];
  }
  return result;
}

/// Calls the rule of node `v` (or differentiates its decomposition).
Grads applyRule(ir::Graph& g, ValueId v, ValueId cotangent, const std::vector<bool>& wanted, const std::string& target) {
  ir::Node node = g.node(v);
  if (ir::isChannelsLast(node.op, node.attrs))  // a layout the CPU pipeline picks after autodiff
    throw Error("autodiff: cannot differentiate " + target + ": " + describe(g, v) +
                " is channels_last, which has no gradient rule; differentiate the channels-first graph");
  if (GradRule rule = findGradRule(node.op)) {
    Emitter e(g, node.loc);
    std::vector<ir::TensorType> types;
    for (ValueId o : node.operands) types.push_back(g.type(o));
    GradContext ctx{e, node, v, cotangent, wanted, types};
    Grads grads = rule(ctx);
    grads.resize(node.operands.size());
    return grads;
  }
  if (findDecomposition(node.op)) return throughDecomposition(g, node, cotangent, wanted, target);
  throw std::logic_error("autodiff: no gradient rule for " + describe(g, v));
}

}  // namespace

std::vector<std::optional<ValueId>> backprop(ir::Graph& g, const std::vector<std::pair<ValueId, ValueId>>& seeds,
                                             const std::vector<ValueId>& wrt, ValueId lowest, const std::string& target) {
  std::vector<ValueId> seedValues;
  for (const auto& s : seeds) seedValues.push_back(s.first);
  PathAnalysis paths = analyzePaths(g, seedValues, wrt, lowest, target);
  std::vector<ValueId> cotangents(static_cast<size_t>(g.size()), -1);
  auto accumulate = [&](ValueId v, ValueId ct) {
    ValueId& slot = cotangents[static_cast<size_t>(v)];
    std::string loc = g.node(v).loc;  // a copy: adding a node may reallocate the graph
    slot = slot < 0 ? ct : g.addOp(ir::OpKind::Add, {slot, ct}, {}, "", loc);
  };
  ValueId highest = -1;
  for (const auto& [value, ct] : seeds) {
    if (paths.onPath[static_cast<size_t>(value)]) accumulate(value, ct);
    highest = std::max(highest, value);
  }
  for (ValueId v = highest; v >= lowest && v >= 0; --v) {
    ValueId ct = cotangents[static_cast<size_t>(v)];
    if (!paths.onPath[static_cast<size_t>(v)] || ct < 0) continue;
    const std::vector<ValueId> operands = g.node(v).operands;
    std::vector<bool> wanted(operands.size(), false);
    bool any = false;
    for (size_t p = 0; p < operands.size(); ++p) {
      wanted[p] = edgeKind(g, v, p) == Edge::Gradient && paths.dependsOnWrt[static_cast<size_t>(operands[p])];
      any = any || wanted[p];
    }
    if (!any) continue;
    Grads grads = applyRule(g, v, ct, wanted, target);
    for (size_t p = 0; p < operands.size(); ++p) {
      if (!wanted[p] || !grads[p]) continue;
      if (g.type(*grads[p]) != g.type(operands[p]))
        throw std::logic_error("autodiff: the gradient rule of " + describe(g, v) + " gave " +
                               g.type(*grads[p]).str() + " for operand " + std::to_string(p) + " of type " +
                               g.type(operands[p]).str());
      accumulate(operands[p], *grads[p]);
    }
  }
  std::vector<std::optional<ValueId>> result;
  for (ValueId w : wrt) {
    ValueId ct = cotangents[static_cast<size_t>(w)];
    result.push_back(ct < 0 ? std::nullopt : std::optional<ValueId>(ct));
  }
  return result;
}

}  // namespace weft::passes::grad
