// Names of fused bodies (see fused_names.h).
#include "passes/fused_names.h"

#include <algorithm>

namespace weft::passes {

std::string fusedBodyName(const std::vector<ir::OpKind>& ops) {
  std::vector<std::string> distinct;
  for (ir::OpKind op : ops) {
    std::string name(ir::opName(op));
    if (std::find(distinct.begin(), distinct.end(), name) == distinct.end()) distinct.push_back(name);
  }
  if (distinct.size() > 3) distinct = {distinct[0], distinct[1], "etc", std::string(ir::opName(ops.back()))};
  std::string name = "fused";
  for (const auto& op : distinct) name += "_" + op;
  return name;
}

std::string fusedBodyName(const ir::Graph& body) {
  std::vector<ir::OpKind> ops;
  for (const ir::Node& n : body.nodes())
    if (n.op != ir::OpKind::Input && n.op != ir::OpKind::Iota && n.op != ir::OpKind::Constant) ops.push_back(n.op);
  return fusedBodyName(ops);
}

}  // namespace weft::passes
