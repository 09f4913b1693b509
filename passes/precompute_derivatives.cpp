// precompute-derivatives: moves the part of a backward kernel that depends on one forward
// value alone (an activation's derivative: GELU's 0.5 (1 + erf(h / sqrt 2)) + h phi(h))
// into a kernel of its own in the forward pass, right after that value's last other reader.
// The backward kernel then multiplies the incoming gradient by the saved factor instead of
// recomputing it from the saved input: it reads as many bytes, but no erf or exp waits on
// them, and the factor is computed while the input is still in cache. What the step keeps
// alive is unchanged: the factor takes the input's bytes, which nothing else reads later
// (unless through a view, which this pass does not follow: then both stay, costing memory).
//
// A `fused` node K of kind "loop" (run after fuse-elementwise and fuse-rows) splits when its
// body's root is mul(a, b) with one side an input of the body (dy) and the other (the
// factor) computed from exactly one other input (h) and inlined constants, through
// elementwise nodes of K's shape at least one of which is costly (ir::kCostly: exp, erf,
// div, ...); K's type is h's and dy's; h is no output or update; every other
// reader of h comes before K, none of them is such a kernel over h too, and dy comes after
// the last of them (and after h). Then a new loop
// kernel computing the factor from h goes right after h's last other reader (or h), and K
// becomes mul(dy, factor) in its operand order, keeping its name and location.
#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "ir/attrs.h"
#include "passes/builtin_passes.h"
#include "passes/fused_names.h"
#include "passes/rewriter.h"
#include "passes/sole_users.h"

namespace weft::passes {
namespace {

using ir::Graph;
using ir::Node;
using ir::OpKind;
using ir::ValueId;

/// A backward kernel to split: factor `factor` (a body value) of input `h` times input `dy`.
struct Split {
  ValueId kernel;      ///< the backward kernel K
  size_t h, dy;        ///< indices of the body's inputs (K's operands)
  ValueId factor;      ///< the body value multiplied by dy
  bool factorOnLeft;   ///< mul(factor, dy) rather than mul(dy, factor)
  ValueId after;       ///< the outer value after which the factor's kernel goes
};

/// The body nodes `root` depends on, in body order, when each is an elementwise node of
/// `type`, an inlined constant or iota, or input `input` (and at least one is expensive);
/// empty otherwise.
std::vector<ValueId> factorNodes(const Graph& body, ValueId root, size_t input, const ir::TensorType& type) {
  const std::vector<ValueId> inputs = body.inputs();
  std::set<ValueId> seen;
  std::vector<ValueId> stack = {root};
  bool expensive = false;
  while (!stack.empty()) {
    const ValueId v = stack.back();
    stack.pop_back();
    if (!seen.insert(v).second) continue;
    const Node& n = body.node(v);
    if (n.op == OpKind::Input) {
      if (v != inputs.at(input)) return {};
      continue;
    }
    if (n.op == OpKind::Constant || n.op == OpKind::Iota) continue;
    if (!ir::opInfo(n.op).has(ir::kElementwise) || n.type != type) return {};
    expensive = expensive || ir::opInfo(n.op).has(ir::kCostly);
    for (ValueId o : n.operands) stack.push_back(o);
  }
  if (!expensive || !seen.count(inputs.at(input))) return {};
  return {seen.begin(), seen.end()};  // a std::set: in body (topological) order
}

/// The users of every value of `g`; outputs and updates count as a user past the end.
std::vector<std::vector<ValueId>> usersOf(const Graph& g) {
  std::vector<std::vector<ValueId>> users = readersOf(g);
  for (const ir::Output& out : g.outputs()) users[static_cast<size_t>(out.value)].push_back(g.size());
  for (const ir::StateUpdate& u : g.updates()) users[static_cast<size_t>(u.value)].push_back(g.size());
  return users;
}

/// K's split when its body is dy * factor(h) (the structure alone; `after` left unset).
std::optional<Split> shapeOfSplit(const Graph& g, ValueId k) {
  const Node& node = g.node(k);
  if (node.op != OpKind::Fused || !node.body || ir::AttrReader(node.attrs, node.op).s("kind") != "loop") return {};
  const Graph& body = *node.body;
  if (body.outputs().size() != 1) return {};
  const Node& root = body.node(body.outputs()[0].value);
  if (root.op != OpKind::Mul || root.operands.size() != 2 || root.operands[0] == root.operands[1]) return {};
  const std::vector<ValueId> inputs = body.inputs();
  for (size_t side = 0; side < 2; ++side) {
    const ValueId factor = root.operands[side];
    const auto dyAt = std::find(inputs.begin(), inputs.end(), root.operands[1 - side]);
    if (dyAt == inputs.end()) continue;
    const auto dy = static_cast<size_t>(dyAt - inputs.begin());
    for (size_t h = 0; h < inputs.size(); ++h)
      if (h != dy && g.type(node.operands[h]) == node.type && g.type(node.operands[dy]) == node.type &&
          !factorNodes(body, factor, h, node.type).empty())
        return Split{k, h, dy, factor, side == 0, -1};
  }
  return {};
}

/// K's split (the rules at the top), or nullopt.
std::optional<Split> splitOf(const Graph& g, const std::vector<std::vector<ValueId>>& users, ValueId k) {
  std::optional<Split> split = shapeOfSplit(g, k);
  if (!split) return {};
  const ValueId h = g.node(k).operands[split->h], dy = g.node(k).operands[split->dy];
  split->after = h;
  for (ValueId u : users[static_cast<size_t>(h)]) {
    if (u == k) continue;
    if (u > k) return {};  // read later (or an output): the input stays alive anyway
    if (std::optional<Split> other = shapeOfSplit(g, u); other && g.node(u).operands[other->h] == h)
      return {};  // another backward kernel reads h: the factor would follow it, in the backward pass
    split->after = std::max(split->after, u);
  }
  if (dy <= split->after) return {};
  return split;
}

/// A `fused` node of kind "loop" with `body` (operands left to the caller).
Node loopNode(Graph body, const ir::TensorType& type, const std::string& loc) {
  Node fused;
  fused.op = OpKind::Fused;
  fused.attrs["kind"] = std::string("loop");
  fused.type = type;
  fused.loc = loc;
  fused.body = std::make_shared<const Graph>(std::move(body));
  return fused;
}

/// The factor's kernel: a loop body reading h as in0.
Node factorKernel(const Graph& g, const Split& s) {
  const Node& kernel = g.node(s.kernel);
  const Graph& body = *kernel.body;
  Graph out("factor");
  std::map<ValueId, ValueId> local;
  for (ValueId v : factorNodes(body, s.factor, s.h, kernel.type)) {
    const Node& n = body.node(v);
    if (n.op == OpKind::Input) {
      local[v] = out.addInput("in0", n.type);
      continue;
    }
    Node copy = n;
    for (ValueId& o : copy.operands) o = local.at(o);
    local[v] = out.addNode(std::move(copy));
  }
  out.addOutput("out", local.at(s.factor));
  out.setName(fusedBodyName(out));
  Node fused = loopNode(std::move(out), kernel.type, g.node(s.after).loc);
  fused.operands = {kernel.operands[s.h]};
  return fused;
}

/// The kernel's remainder: mul of its two inputs, dy and the factor, in the old order.
Node productKernel(const Graph& g, const Split& s) {
  const Node& kernel = g.node(s.kernel);
  Graph out(fusedBodyName({OpKind::Mul}));
  const ValueId dy = out.addInput("in0", kernel.type), factor = out.addInput("in1", kernel.type);
  out.addOutput("out", out.addOp(OpKind::Mul, s.factorOnLeft ? std::vector<ValueId>{factor, dy}
                                                             : std::vector<ValueId>{dy, factor}));
  return loopNode(std::move(out), kernel.type, kernel.loc);
}

}  // namespace

bool precomputeDerivatives(Graph& g) {
  const std::vector<std::vector<ValueId>> users = usersOf(g);
  std::vector<Split> splits;
  for (ValueId k = 0; k < g.size(); ++k)
    if (std::optional<Split> s = splitOf(g, users, k)) splits.push_back(*s);
  if (splits.empty()) return false;
  std::multimap<ValueId, size_t> factorsAfter;  // outer value -> splits whose factor follows it
  std::map<ValueId, size_t> splitAt;
  for (size_t i = 0; i < splits.size(); ++i) {
    factorsAfter.emplace(splits[i].after, i);
    splitAt[splits[i].kernel] = i;
  }
  std::vector<ValueId> factorValue(splits.size(), -1);
  Rewriter rw(g);
  for (ValueId v = 0; v < g.size(); ++v) {
    rw.begin(v);
    if (auto it = splitAt.find(v); it != splitAt.end()) {
      const Split& s = splits[it->second];
      Node product = productKernel(g, s);
      product.operands = {rw.map(g.node(v).operands[s.dy]), factorValue[it->second]};
      rw.replace(v, rw.target().addNode(std::move(product)));
    } else {
      rw.copy(v);
    }
    for (auto [at, end] = factorsAfter.equal_range(v); at != end; ++at) {
      Node factor = factorKernel(g, splits[at->second]);
      factor.operands = {rw.map(factor.operands[0])};
      factorValue[at->second] = rw.target().addNode(std::move(factor));
    }
  }
  g = rw.finish();
  return true;
}

}  // namespace weft::passes
