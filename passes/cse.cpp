// cse: one forward sweep with a hash table of the nodes kept so far, keyed by
// (op, operands in the new graph, attributes). A node equal to a kept one is replaced by it;
// since operands are already merged, whole equal sub-graphs collapse in one sweep. Equality is
// exact: float attributes compare bitwise and constants compare by dtype, shape and bytes.
// Inputs and parameters are the graph's interface and random ops draw fresh values, so
// neither is ever merged. The kept node keeps its name (taking the merged one's name when it
// had none); outputs of a merged node are retargeted to the kept one.
#include <cstring>
#include <functional>
#include <unordered_map>

#include "passes/builtin_passes.h"
#include "passes/rewriter.h"

namespace weft::passes {
namespace {

using ir::ValueId;

void mix(size_t& h, size_t v) { h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2); }

size_t hashBytes(const void* data, size_t n) {
  return std::hash<std::string_view>()(std::string_view(static_cast<const char*>(data), n));
}

size_t hashAttr(const ir::AttrValue& a) {
  size_t h = a.index();
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, double>) mix(h, hashBytes(&v, sizeof v));
        else if constexpr (std::is_same_v<T, std::string>) mix(h, std::hash<std::string>()(v));
        else if constexpr (std::is_same_v<T, std::vector<int64_t>>) mix(h, hashBytes(v.data(), v.size() * 8));
        else if constexpr (std::is_same_v<T, ir::DType>) mix(h, static_cast<size_t>(v));
        else if (v) mix(h, hashBytes(v->bytes.data(), v->bytes.size()));
      },
      a);
  return h;
}

bool sameAttr(const ir::AttrValue& a, const ir::AttrValue& b) {
  if (a.index() != b.index()) return false;
  if (auto* x = std::get_if<double>(&a)) return std::memcmp(x, &std::get<double>(b), sizeof(double)) == 0;
  if (auto* x = std::get_if<ir::TensorDataPtr>(&a)) {
    const auto& y = std::get<ir::TensorDataPtr>(b);
    return x->get() == y.get() || (*x && y && **x == *y);
  }
  return a == b;
}

/// What makes two nodes compute the same value.
struct NodeKey {
  const ir::Node* node;             // op and attributes
  std::vector<ValueId> operands;    // in the new graph

  bool operator==(const NodeKey& o) const {
    if (node->op != o.node->op || operands != o.operands || node->attrs.size() != o.node->attrs.size()) return false;
    for (auto a = node->attrs.begin(), b = o.node->attrs.begin(); a != node->attrs.end(); ++a, ++b)
      if (a->first != b->first || !sameAttr(a->second, b->second)) return false;
    return true;
  }
};

struct NodeKeyHash {
  size_t operator()(const NodeKey& k) const {
    size_t h = static_cast<size_t>(k.node->op);
    for (ValueId o : k.operands) mix(h, static_cast<size_t>(o));
    for (const auto& [name, value] : k.node->attrs) {
      mix(h, std::hash<std::string>()(name));
      mix(h, hashAttr(value));
    }
    return h;
  }
};

bool mergeable(const ir::Node& n) {
  return n.op != ir::OpKind::Input && n.op != ir::OpKind::Param && !ir::opInfo(n.op).has(ir::kRandom);
}

}  // namespace

bool eliminateCommonSubexpressions(ir::Graph& g) {
  std::unordered_map<NodeKey, ValueId, NodeKeyHash> kept;
  return rewriteNodes(g, [&](Rewriter& rw, ValueId v) -> std::optional<ValueId> {
    const ir::Node& n = rw.source().node(v);
    if (!mergeable(n)) return std::nullopt;
    NodeKey key{&n, rw.mappedOperands(v)};
    auto it = kept.find(key);
    if (it != kept.end()) return it->second;
    kept.emplace(std::move(key), rw.copy(v));
    return std::nullopt;
  });
}

}  // namespace weft::passes
