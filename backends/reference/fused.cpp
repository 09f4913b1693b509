// The reference kernel of `fused` nodes: runs the node's body on its operands.
#include "backends/reference/kernels.h"

namespace weft::reference {

ir::TensorData kernelFused(const KernelContext& ctx) {
  const ir::Node& node = ctx.node();
  if (!node.body) ctx.fail("has no body");
  const ir::Graph& body = *node.body;
  std::vector<ir::ValueId> inputs = body.inputs();
  if (inputs.size() != ctx.operands.size() || body.outputs().size() != 1)
    ctx.fail("body @" + body.name() + " does not take the node's operands or has not exactly one output");
  TensorMap feeds;
  for (size_t i = 0; i < inputs.size(); ++i) feeds[body.node(inputs[i]).name] = ctx.in(i);
  TensorMap out = run(body, feeds, ctx.options);
  return std::move(out.begin()->second);
}

}  // namespace weft::reference
