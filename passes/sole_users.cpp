// The only reader of every value (see sole_users.h).
#include "passes/sole_users.h"

#include <set>

namespace weft::passes {

std::vector<ir::ValueId> soleUsers(const ir::Graph& g) {
  std::vector<int> users(static_cast<size_t>(g.size()), 0);
  std::vector<ir::ValueId> sole(static_cast<size_t>(g.size()), -1);
  for (ir::ValueId v = 0; v < g.size(); ++v)
    for (ir::ValueId o : std::set<ir::ValueId>(g.node(v).operands.begin(), g.node(v).operands.end())) {
      ++users[static_cast<size_t>(o)];
      sole[static_cast<size_t>(o)] = v;
    }
  for (const auto& out : g.outputs()) ++users[static_cast<size_t>(out.value)];
  for (const auto& u : g.updates()) ++users[static_cast<size_t>(u.value)];
  for (ir::ValueId v = 0; v < g.size(); ++v)
    if (users[static_cast<size_t>(v)] != 1) sole[static_cast<size_t>(v)] = -1;
  return sole;
}

std::vector<std::vector<ir::ValueId>> readersOf(const ir::Graph& g) {
  std::vector<std::vector<ir::ValueId>> readers(static_cast<size_t>(g.size()));
  for (ir::ValueId v = 0; v < g.size(); ++v)
    for (ir::ValueId o : g.node(v).operands)
      if (auto& r = readers[static_cast<size_t>(o)]; r.empty() || r.back() != v) r.push_back(v);
  return readers;
}

std::vector<int> readerCounts(const ir::Graph& g) {
  std::vector<int> readers(static_cast<size_t>(g.size()), 0);
  for (const ir::Node& n : g.nodes())
    for (ir::ValueId o : n.operands) ++readers[static_cast<size_t>(o)];
  for (const auto& out : g.outputs()) ++readers[static_cast<size_t>(out.value)];
  for (const auto& u : g.updates()) ++readers[static_cast<size_t>(u.value)];
  return readers;
}

}  // namespace weft::passes
