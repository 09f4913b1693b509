// cse: one forward sweep with a hash table of the nodes kept so far, keyed by
// (op, operands in the new graph, attributes). A node equal to a kept one is replaced by it;
// since operands are already merged, whole equal sub-graphs collapse in one sweep. Equality is
// exact: float attributes compare bitwise and constants compare by dtype, shape and bytes.
// Two fused nodes are equal only when their bodies are too: the same nodes (op, operands,
// attributes, type; nested bodies compared the same way) and the same output, names and
// locations aside. Inputs and parameters are the graph's interface and random ops draw fresh
// values (so do fused nodes with one in their body), so none of them is ever merged. The kept
// node keeps its name (taking the merged one's name when it had none); outputs of a merged
// node are retargeted to the kept one.
#include <functional>
#include <string_view>
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

bool sameBody(const ir::Node& x, const ir::Node& y);

/// Two graphs that compute the same: node for node equal (op, operands, attributes, type,
/// body) with the same outputs and updates; names, locations and the graph name aside.
bool sameGraph(const ir::Graph& a, const ir::Graph& b) {
  if (a.size() != b.size() || a.outputs().size() != b.outputs().size() || a.updates().size() != b.updates().size())
    return false;
  for (ValueId v = 0; v < a.size(); ++v) {
    const ir::Node &x = a.node(v), &y = b.node(v);
    if (x.op != y.op || x.operands != y.operands || x.type != y.type || !ir::sameAttrs(x.attrs, y.attrs) ||
        !sameBody(x, y))
      return false;
    // Inputs are matched by position, parameters by name (the runtime feeds them so).
    if (x.op == ir::OpKind::Param && x.name != y.name) return false;
  }
  for (size_t i = 0; i < a.outputs().size(); ++i)
    if (a.outputs()[i].value != b.outputs()[i].value) return false;
  for (size_t i = 0; i < a.updates().size(); ++i)
    if (a.updates()[i].param != b.updates()[i].param || a.updates()[i].value != b.updates()[i].value) return false;
  return true;
}

/// Both nodes have no body, or bodies that compute the same.
bool sameBody(const ir::Node& x, const ir::Node& y) {
  if (!x.body || !y.body) return !x.body && !y.body;
  return x.body == y.body || sameGraph(*x.body, *y.body);
}

/// What makes two nodes compute the same value.
struct NodeKey {
  const ir::Node* node;             // op, attributes and body
  std::vector<ValueId> operands;    // in the new graph

  bool operator==(const NodeKey& o) const {
    return node->op == o.node->op && operands == o.operands && ir::sameAttrs(node->attrs, o.node->attrs) &&
           sameBody(*node, *o.node);
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
    if (k.node->body) mix(h, static_cast<size_t>(k.node->body->size()));
    return h;
  }
};

/// True when `n` draws random numbers itself or in its body.
bool draws(const ir::Node& n) {
  if (ir::opInfo(n.op).has(ir::kRandom)) return true;
  if (n.body)
    for (const ir::Node& inner : n.body->nodes())
      if (draws(inner)) return true;
  return false;
}

bool mergeable(const ir::Node& n) { return n.op != ir::OpKind::Input && n.op != ir::OpKind::Param && !draws(n); }

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
