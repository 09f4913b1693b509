// Constant operands seen through broadcasts and reshapes (see constants.h).
#include "passes/constants.h"

namespace weft::passes {
namespace {

/// The node `v` broadcasts or reshapes, followed to its end.
const ir::Node& throughBroadcasts(const ir::Graph& g, ir::ValueId v) {
  const ir::Node* n = &g.node(v);
  while (n->op == ir::OpKind::Broadcast || n->op == ir::OpKind::Reshape) n = &g.node(n->operands.at(0));
  return *n;
}

}  // namespace

bool isSplat(const ir::Graph& g, ir::ValueId v, double value) {
  const ir::Node& n = throughBroadcasts(g, v);
  if (n.op != ir::OpKind::Constant) return false;
  auto it = n.attrs.find("value");
  const auto* data = it == n.attrs.end() ? nullptr : std::get_if<ir::TensorDataPtr>(&it->second);
  if (!data || !*data || (*data)->bytes.size() != (*data)->type.byteSize()) return false;
  for (int64_t i = 0; i < (*data)->numel(); ++i)
    if ((*data)->get(i) != value) return false;
  return true;
}

bool isScalarConstant(const ir::Graph& g, ir::ValueId v) {
  const ir::Node& n = throughBroadcasts(g, v);
  return n.op == ir::OpKind::Constant && n.type.numel() == 1;
}

}  // namespace weft::passes
