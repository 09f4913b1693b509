// strip-stop-gradient: stop_gradient only guides differentiation; in a graph that is compiled
// as it is (a training step whose gradients are already in it) it is the identity, and left
// alone it costs a copy kernel per frozen tensor (a GAN's generator step reads the
// discriminator's weights through it) and keeps its operand and the copy alive side by side.
// Each stop_gradient is replaced by its operand.
#include "passes/builtin_passes.h"
#include "passes/rewriter.h"

namespace weft::passes {

bool stripStopGradients(ir::Graph& g) {
  return rewriteNodes(g, [](Rewriter& rw, ir::ValueId v) -> std::optional<ir::ValueId> {
    const ir::Node& node = rw.source().node(v);
    if (node.op != ir::OpKind::StopGradient) return std::nullopt;
    return rw.map(node.operands.at(0));
  });
}

}  // namespace weft::passes
