// decompose-composites: copies the graph, replacing each composite node (flag kComposite) by
// the primitive sub-graph its decomposition emits (passes/decompositions.h). The last value
// of a decomposition takes the composite's name, and every emitted node takes its loc.
// Composites a decomposition emits are replaced by a further sweep.
#include "passes/builtin_passes.h"
#include "passes/decompositions.h"
#include "passes/rewriter.h"

namespace weft::passes {

bool decomposeComposites(ir::Graph& g) {
  auto once = [](ir::Graph& graph) {
    return rewriteNodes(graph, [](Rewriter& rw, ir::ValueId v) -> std::optional<ir::ValueId> {
      const ir::Node& node = rw.source().node(v);
      if (!ir::opInfo(node.op).has(ir::kComposite)) return std::nullopt;
      Emitter e = rw.emitterFor(v);
      return decompose(e, node, rw.mappedOperands(v));
    });
  };
  // A decomposition may emit composites of its own (attention's softmax): sweep until none.
  bool changed = false;
  while (once(g)) changed = true;
  return changed;
}

}  // namespace weft::passes
