// Nodes the fuse-attention pass reads and builds (see fused_matmul_nodes.h).
#include "backends/cpu/fused_matmul_nodes.h"

#include <algorithm>
#include <memory>

#include "ir/attrs.h"
#include "passes/rewriter.h"

namespace weft::cpu {

using ir::OpKind;
using ir::ValueId;

/// True when `n` is a matmul, plain or fused.
bool isMatmul(const ir::Node& n) { return n.op == OpKind::Matmul || ir::fusedKind(n) == "matmul"; }

/// Matmul node `n` of `g` as a fused matmul: itself when fused, else a fused node of kind
/// "matmul" whose body is `n` on the node's operands.
ir::Node asFusedMatmul(const ir::Graph& g, const ir::Node& n) {
  if (n.op == OpKind::Fused) return n;
  ir::Graph body;
  body.setName("fused_matmul");
  ir::Node matmul = n;
  matmul.name.clear();
  for (size_t i = 0; i < n.operands.size(); ++i)
    matmul.operands[i] = body.addInput("in" + std::to_string(i), g.type(n.operands[i]));
  body.addOutput("out", body.addNode(std::move(matmul)));
  ir::Node fused = n;
  fused.op = OpKind::Fused;
  fused.attrs = {{"kind", std::string("matmul")}};
  fused.body = std::make_shared<const ir::Graph>(std::move(body));
  return fused;
}

/// True when the matmul of fused matmul body `body` reads its lhs transposed.
bool transposesLhs(const ir::Graph& body) {
  for (const ir::Node& n : body.nodes())
    if (n.op == OpKind::Matmul) return ir::AttrReader(n.attrs, n.op).i("transpose_lhs", 0) != 0;
  return false;
}

/// True when `n` is a fused loop kernel that only moves its one operand: slices, reshapes
/// and transposes in a chain from its input to its output (a head cut out of a fused qkv).
bool isViewCopy(const ir::Node& n) {
  if (ir::fusedKind(n) != "loop" || n.operands.size() != 1) return false;
  const ir::Graph& body = *n.body;
  ValueId expected = body.inputs().at(0);
  for (ValueId v = 0; v < body.size(); ++v) {
    const ir::Node& x = body.node(v);
    if (x.op == OpKind::Input) continue;
    if ((x.op != OpKind::Slice && x.op != OpKind::Reshape && x.op != OpKind::Transpose) || x.operands.size() != 1 ||
        x.operands[0] != expected)
      return false;
    expected = v;
  }
  return body.outputs().size() == 1 && body.outputs()[0].value == expected && expected != body.inputs()[0];
}

/// Fused matmul `matmul` with its operand `index` read through the view ops of view copy
/// `copy` (isViewCopy) from the copy's operand instead.
ir::Node readThroughCopy(const ir::Graph& g, const ir::Node& matmul, size_t index, ValueId copy) {
  const ir::Graph& old = *matmul.body;
  const ir::Graph& views = *g.node(copy).body;
  ir::Graph body;
  body.setName(old.name());
  std::vector<ValueId> map(static_cast<size_t>(old.size()), -1);
  const std::vector<ValueId> inputs = old.inputs();
  for (size_t i = 0; i < inputs.size(); ++i) {
    const ir::Node& in = old.node(inputs[i]);
    map[static_cast<size_t>(inputs[i])] = body.addInput(in.name, i == index ? g.type(g.node(copy).operands[0]) : in.type);
  }
  ValueId viewed = map[static_cast<size_t>(inputs[index])];
  for (ValueId v = 0; v < views.size(); ++v) {
    if (views.node(v).op == OpKind::Input) continue;
    ir::Node view = views.node(v);
    view.operands = {viewed};
    view.name.clear();
    viewed = body.addNode(std::move(view));
  }
  for (ValueId v = 0; v < old.size(); ++v) {
    if (old.node(v).op == OpKind::Input) continue;
    ir::Node n = old.node(v);
    for (ValueId& o : n.operands) o = o == inputs[index] ? viewed : map[static_cast<size_t>(o)];
    map[static_cast<size_t>(v)] = body.addNode(std::move(n));
  }
  for (const ir::Output& out : old.outputs()) body.addOutput(out.name, map[static_cast<size_t>(out.value)]);
  ir::Node folded = matmul;
  folded.operands[index] = g.node(copy).operands[0];
  folded.body = std::make_shared<const ir::Graph>(std::move(body));
  return folded;
}

void appendOnce(std::vector<ValueId>& values, ValueId v) {
  if (std::find(values.begin(), values.end(), v) == values.end()) values.push_back(v);
}

BodyInputs::BodyInputs(ir::Graph& body, const ir::Graph& g, const std::vector<ValueId>& operands) : operands_(operands) {
  for (size_t i = 0; i < operands.size(); ++i) inputs_.push_back(body.addInput("in" + std::to_string(i), g.type(operands[i])));
}

ValueId BodyInputs::operator()(ValueId outer) const {
  return inputs_.at(static_cast<size_t>(std::find(operands_.begin(), operands_.end(), outer) - operands_.begin()));
}

std::optional<ir::Graph> withFusedNode(const ir::Graph& g, const std::vector<ValueId>& erased, ValueId replaced,
                                       const std::string& kind, const std::vector<ValueId>& operands, ir::Graph body,
                                       bool (*runs)(const ir::Graph&, ValueId)) {
  ir::Node merged;
  merged.op = OpKind::Fused;
  merged.type = g.node(replaced).type;
  merged.loc = g.node(replaced).loc;
  merged.attrs["kind"] = kind;
  merged.body = std::make_shared<const ir::Graph>(std::move(body));
  passes::Rewriter rw(g);
  ValueId mergedValue = -1;
  for (ValueId v = 0; v < g.size(); ++v) {
    rw.begin(v);
    if (v == replaced) {
      for (ValueId o : operands) merged.operands.push_back(rw.map(o));
      mergedValue = rw.target().addNode(std::move(merged));
      rw.replace(v, mergedValue);
    } else if (std::find(erased.begin(), erased.end(), v) != erased.end()) {
      rw.erase(v);
    } else {
      rw.copy(v);
    }
  }
  ir::Graph result = rw.finish();
  if (!runs(result, mergedValue)) return std::nullopt;
  return result;
}

bool mergeWherePossible(ir::Graph& g,
                        const std::function<std::optional<ir::Graph>(const ir::Graph&, ValueId)>& mergeAt) {
  std::vector<bool> refused(static_cast<size_t>(g.size()), false);
  bool changed = false;
  for (ValueId v = 0; v < g.size(); ++v) {
    if (refused[static_cast<size_t>(v)]) continue;
    std::optional<ir::Graph> merged = mergeAt(g, v);
    if (!merged) {
      refused[static_cast<size_t>(v)] = true;
      continue;
    }
    g = std::move(*merged);
    refused.assign(static_cast<size_t>(g.size()), false);
    changed = true;
    v = -1;  // start over: the values are numbered anew
  }
  return changed;
}

}  // namespace weft::cpu
