// dce: marks every value the outputs and state updates depend on (a backward sweep: nodes only use earlier
// values, so one pass from the last node to the first suffices), plus every input and
// parameter, which are the graph's interface, and every check_index, whose failing is what
// it is there for (the interpreter fails on it read or not). Unmarked nodes are dropped; the
// rest are copied in order.
#include "passes/builtin_passes.h"
#include "passes/rewriter.h"

namespace weft::passes {

bool eliminateDeadCode(ir::Graph& g) {
  std::vector<bool> live(static_cast<size_t>(g.size()), false);
  for (const auto& out : g.outputs())
    if (out.value >= 0 && out.value < g.size()) live[static_cast<size_t>(out.value)] = true;
  for (const auto& u : g.updates())
    if (u.value >= 0 && u.value < g.size()) live[static_cast<size_t>(u.value)] = true;
  for (ir::ValueId v = g.size() - 1; v >= 0; --v) {
    const ir::Node& n = g.node(v);
    if (n.op == ir::OpKind::Input || n.op == ir::OpKind::Param || n.op == ir::OpKind::CheckIndex)
      live[static_cast<size_t>(v)] = true;
    if (!live[static_cast<size_t>(v)]) continue;
    for (ir::ValueId o : n.operands)
      if (o >= 0 && o < v) live[static_cast<size_t>(o)] = true;
  }
  bool anyDead = false;
  for (bool l : live) anyDead |= !l;
  if (!anyDead) return false;

  Rewriter rw(g);
  for (ir::ValueId v = 0; v < g.size(); ++v) {
    if (live[static_cast<size_t>(v)]) rw.copy(v);
  }
  g = rw.finish();
  return true;
}

}  // namespace weft::passes
