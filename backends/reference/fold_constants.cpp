// fold-constants: evaluates, with the reference interpreter, every op whose operands are all
// constants and turns it into a constant node in place (same value id, same name). Random
// ops are never folded, and results above kMaxFoldedElements stay ops so that dumps stay
// small; dead constants are left for dce.
#include "backends/reference/interpreter.h"
#include "passes/pass_manager.h"

namespace weft::reference {
namespace {

constexpr int64_t kMaxFoldedElements = 4096;

bool foldable(const ir::Graph& g, const ir::Node& n) {
  const ir::OpInfo& info = ir::opInfo(n.op);
  if (info.has(ir::kSource) || info.has(ir::kRandom) || n.type.numel() > kMaxFoldedElements) return false;
  for (ir::ValueId o : n.operands)
    if (g.node(o).op != ir::OpKind::Constant) return false;
  return true;
}

ir::TensorData evaluate(const ir::Graph& g, const ir::Node& n) {
  ir::Graph single("fold");
  std::vector<ir::ValueId> operands;
  for (ir::ValueId o : n.operands) operands.push_back(single.addConstant(ir::AttrReader(g.node(o).attrs, ir::OpKind::Constant).tensor("value")));
  ir::Node copy = n;  // its type and, for a fused node, its body as they are
  copy.operands = std::move(operands);
  copy.name.clear();
  single.addOutput("result", single.addNode(std::move(copy)));
  return run(single, {}).at("result");
}

bool foldConstants(ir::Graph& g) {
  bool changed = false;
  for (ir::ValueId v = 0; v < g.size(); ++v) {
    if (!foldable(g, g.node(v))) continue;
    auto value = std::make_shared<const ir::TensorData>(evaluate(g, g.node(v)));
    ir::Node& n = g.node(v);
    n.op = ir::OpKind::Constant;
    n.operands.clear();
    n.attrs = {{"value", value}};
    n.body.reset();
    changed = true;
  }
  return changed;
}

}  // namespace

void registerReferencePasses() {
  passes::registerPass({"fold-constants", "evaluate ops whose operands are all constants", foldConstants});
}

}  // namespace weft::reference
