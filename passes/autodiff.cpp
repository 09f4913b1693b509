// The autodiff API: validates a request, explains values that get no gradient (an error when
// the only connection is through a non-differentiable op or an integer value, a note when
// there is none or only through stop_gradient), runs the reverse sweep on a copy of the graph
// (so a failure leaves the caller's graph untouched) and names gradient outputs.
#include "passes/autodiff.h"

#include <algorithm>
#include <set>
#include <stdexcept>

#include "ir/error.h"
#include "ir/verifier.h"
#include "passes/autodiff_engine.h"
#include "passes/decompositions.h"
#include "passes/grad_rules.h"

namespace weft::passes {

using grad::Edge;
using ir::ValueId;

bool hasGradRule(ir::OpKind op) { return grad::findGradRule(op) != nullptr; }

bool isDifferentiable(ir::OpKind op) {
  return ir::opInfo(op).has(ir::kDiff) && (hasGradRule(op) || findDecomposition(op) != nullptr);
}

namespace {

void checkValue(const ir::Graph& g, ValueId v, const char* role) {
  if (v < 0 || v >= g.size())
    throw Error("autodiff: the " + std::string(role) + " %" + std::to_string(v) + " is not a value of graph @" +
                g.name());
}

void validate(const ir::Graph& g, const GradRequest& req) {
  checkValue(g, req.output, "output");
  const ir::TensorType& out = g.type(req.output);
  std::string what = ir::valueRef(g, req.output);
  if (!ir::isFloat(out.dtype))
    throw Error("autodiff: cannot differentiate " + what + " of type " + out.str() + ": only float values have gradients");
  if (req.cotangent) {
    checkValue(g, *req.cotangent, "cotangent");
    if (g.type(*req.cotangent) != out)
      throw Error("autodiff: the cotangent " + ir::valueRef(g, *req.cotangent) + " has type " +
                  g.type(*req.cotangent).str() + ", but " + what + " has type " + out.str());
  } else if (out.numel() != 1) {
    throw Error("autodiff: " + what + " has type " + out.str() +
                "; a gradient needs a single-element output, or a cotangent of that type (vector-Jacobian product)");
  }
  for (ValueId w : req.wrt) {
    checkValue(g, w, "value to differentiate with respect to,");
    if (!ir::isFloat(g.type(w).dtype))
      throw Error("autodiff: cannot differentiate " + what + " with respect to " + ir::valueRef(g, w) + " of type " +
                  g.type(w).str() + ": integer and bool values carry no gradient");
  }
}

/// Ancestors of `output`; with `throughStops` false, stop_gradient nodes are not expanded.
std::vector<char> ancestors(const ir::Graph& g, ValueId output, bool throughStops) {
  std::vector<char> reach(static_cast<size_t>(g.size()), 0);
  reach[static_cast<size_t>(output)] = 1;
  for (ValueId v = output; v >= 0; --v) {
    const ir::Node& n = g.node(v);
    if (!reach[static_cast<size_t>(v)] || (!throughStops && n.op == ir::OpKind::StopGradient)) continue;
    for (ValueId o : n.operands) reach[static_cast<size_t>(o)] = 1;
  }
  return reach;
}

/// For a wrt value connected to the output (without stop_gradient) but by no differentiable
/// path: names the node nearest the output where such a connection stops carrying gradients.
[[noreturn]] void explainBlocked(const ir::Graph& g, ValueId w, const std::vector<char>& reach, const std::string& target) {
  std::vector<char> carries(static_cast<size_t>(g.size()), 0);
  carries[static_cast<size_t>(w)] = 1;
  ValueId blocker = -1;
  Edge blockerEdge = Edge::None;
  for (ValueId v = w + 1; v < g.size(); ++v) {
    const ir::Node& n = g.node(v);
    for (size_t p = 0; p < n.operands.size(); ++p) {
      if (!carries[static_cast<size_t>(n.operands[p])]) continue;
      Edge edge = grad::edgeKind(g, v, p);
      if (edge == Edge::Gradient) {
        carries[static_cast<size_t>(v)] = 1;
      } else if (reach[static_cast<size_t>(v)] && n.op != ir::OpKind::StopGradient) {
        blocker = v;
        blockerEdge = edge;
      }
    }
  }
  if (blocker < 0) throw std::logic_error("autodiff: no blocking node found for " + ir::valueRef(g, w));
  bool noGrad = ir::opInfo(g.node(blocker).op).has(ir::kNoGrad);
  std::string result = g.type(blocker).str();
  std::string why = noGrad && blockerEdge != Edge::None ? "which is not differentiable"
                    : noGrad ? "which is not differentiable (its " + result + " result carries no gradient)"
                             : "whose " + result + " result carries no gradient (integer and bool values have none)";
  throw Error("autodiff: cannot differentiate " + target + " with respect to " + ir::valueRef(g, w) +
              ": no differentiable path connects them; the path stops at " + grad::describe(g, blocker) + ", " + why +
              "; wrap the value in stop_gradient to cut the path on purpose");
}

/// `type` is taken by value: emitting may reallocate the graph it might refer into.
ValueId onesLike(Emitter& e, ir::TensorType type) {
  return grad::broadcastTo(e, e.scalar(1, type.dtype), type.shape);
}

}  // namespace

GradResult appendGradients(ir::Graph& g, const GradRequest& req) {
  validate(g, req);
  std::string target = ir::valueRef(g, req.output);
  grad::PathAnalysis paths = grad::analyzePaths(g, {req.output}, req.wrt, 0, target);
  std::vector<char> reach = ancestors(g, req.output, false), reachAll = ancestors(g, req.output, true);
  GradResult result;
  bool anyOnPath = false;
  for (ValueId w : req.wrt) {
    if (paths.onPath[static_cast<size_t>(w)]) {
      anyOnPath = true;
      continue;
    }
    if (w <= req.output && reach[static_cast<size_t>(w)]) explainBlocked(g, w, reach, target);
  }
  ir::Graph work = g;
  std::vector<std::optional<ValueId>> cotangents(req.wrt.size());
  if (anyOnPath) {
    Emitter e(work);
    ValueId seed = req.cotangent ? *req.cotangent : onesLike(e, work.type(req.output));
    cotangents = grad::backprop(work, {{req.output, seed}}, req.wrt, 0, target);
  }
  for (size_t i = 0; i < req.wrt.size(); ++i) {
    ValueId w = req.wrt[i];
    if (cotangents[i]) {
      result.grads.push_back(cotangents[i]);
    } else if (paths.onPath[static_cast<size_t>(w)]) {
      Emitter e(work);
      result.grads.push_back(grad::zeros(e, work.type(w)));  // reached, but every cotangent was zero
    } else {
      result.grads.push_back(std::nullopt);
      std::string name = ir::valueRef(g, w);
      result.unreachable.push_back(name);
      bool stopped = w <= req.output && reachAll[static_cast<size_t>(w)];
      result.notes.push_back(name + (stopped ? " reaches " + target + " only through stop_gradient: no gradient"
                                             : " does not influence " + target + ": no gradient"));
    }
  }
  g = std::move(work);
  return result;
}

GradResult addGradientOutputs(ir::Graph& g, const std::string& outputName, const std::vector<std::string>& wrtNames) {
  std::optional<ValueId> output = g.findOutput(outputName);
  if (!output) throw Error("autodiff: graph @" + g.name() + " has no output '" + outputName + "'");
  GradRequest req{*output, {}, std::nullopt};
  for (const std::string& name : wrtNames) {
    std::optional<ValueId> v = g.find(name);
    if (!v) throw Error("autodiff: graph @" + g.name() + " has no value named '" + name + "'");
    if (g.findOutput("grad." + name)) throw Error("autodiff: graph @" + g.name() + " already has an output 'grad." + name + "'");
    req.wrt.push_back(*v);
  }
  ValueId before = g.size();
  GradResult result = appendGradients(g, req);
  std::set<std::string> names;
  for (const auto& n : g.nodes())
    if (!n.name.empty()) names.insert(n.name);
  for (size_t i = 0; i < wrtNames.size(); ++i) {
    std::string name = "grad." + wrtNames[i];
    ValueId v;
    if (result.grads[i]) {
      v = *result.grads[i];
    } else {
      Emitter e(g);
      v = grad::zeros(e, g.type(req.wrt[i]));
    }
    ir::Node& n = g.node(v);
    if (v >= before && n.name.empty() && names.insert(name).second) n.name = name;
    g.addOutput(name, v);
  }
  return result;
}

GradResult addGradientOutputsFromSpec(ir::Graph& g, const std::string& spec) {
  size_t colon = spec.find(':');
  std::string output = spec.substr(0, colon);
  std::string list = colon == std::string::npos ? "params" : spec.substr(colon + 1);
  if (output.empty()) throw Error("autodiff: gradient spec '" + spec + "' names no output (OUTPUT[:NAME,...])");
  std::vector<std::string> names;
  auto addName = [&](const std::string& n) {
    if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
  };
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = list.find(',', pos);
    std::string item = list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (item == "params") {
      for (ValueId p : g.params()) addName(g.node(p).name);
    } else if (item == "inputs") {
      for (ValueId in : g.inputs())
        if (ir::isFloat(g.type(in).dtype)) addName(g.node(in).name);
    } else if (!item.empty()) {
      addName(item);
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  if (names.empty()) throw Error("autodiff: gradient spec '" + spec + "' selects no values");
  return addGradientOutputs(g, output, names);
}

}  // namespace weft::passes
