// GELU's erf form among primitives (see gelu_pattern.h).
#include "ir/gelu_pattern.h"

#include <cmath>
#include <vector>

#include "ir/attrs.h"

namespace weft::ir {
namespace {

/// The value of `v` when it is a one-element f32 constant, seen through broadcasts and reshapes.
std::optional<double> scalarOf(const Graph& g, ValueId v) {
  const Node& n = g.node(v);
  if (n.op == OpKind::Broadcast || n.op == OpKind::Reshape) return scalarOf(g, n.operands.at(0));
  if (n.op != OpKind::Constant || n.type.dtype != DType::f32 || n.type.numel() != 1) return std::nullopt;
  return AttrReader(n.attrs, n.op).tensor("value")->get(0);
}

/// True when `n` is a binary `op` reading `v` and a constant close to `value` (either side).
bool readsWithConstant(const Graph& g, const Node& n, OpKind op, ValueId v, double value) {
  if (n.op != op || n.operands.size() != 2) return false;
  ValueId other = n.operands[0] == v ? n.operands[1] : n.operands[1] == v ? n.operands[0] : -1;
  if (other < 0 || other == v) return false;
  std::optional<double> k = scalarOf(g, other);
  return k && std::abs(*k - value) <= 1e-6 * std::abs(value);
}

}  // namespace

std::optional<std::array<ValueId, 5>> matchErfGelu(const Graph& g, ValueId x) {
  // The readers of every value (a node reading a value twice counts twice), outputs and
  // updates counted as readers -1.
  std::vector<std::vector<ValueId>> readers(static_cast<size_t>(g.size()));
  for (ValueId v = x + 1; v < g.size(); ++v)
    for (ValueId o : g.node(v).operands)
      if (o >= x) readers[static_cast<size_t>(o)].push_back(v);
  for (const Output& out : g.outputs()) readers[static_cast<size_t>(out.value)].push_back(-1);
  for (const StateUpdate& u : g.updates()) readers[static_cast<size_t>(u.value)].push_back(-1);
  auto soleReader = [&](ValueId v) {
    const std::vector<ValueId>& r = readers[static_cast<size_t>(v)];
    return r.size() == 1 ? r[0] : -1;
  };
  const std::vector<ValueId>& xReaders = readers[static_cast<size_t>(x)];
  if (xReaders.size() != 2) return std::nullopt;
  const TensorType& type = g.type(x);
  for (int first = 0; first < 2; ++first) {
    ValueId a = xReaders[static_cast<size_t>(first)], h = xReaders[static_cast<size_t>(1 - first)];
    if (a < 0 || h < 0 || !readsWithConstant(g, g.node(a), OpKind::Mul, x, 1 / std::sqrt(2.0)) ||
        !readsWithConstant(g, g.node(h), OpKind::Mul, x, 0.5))
      continue;
    ValueId e = soleReader(a);
    if (e < 0 || g.node(e).op != OpKind::Erf) continue;
    ValueId p = soleReader(e);
    if (p < 0 || !readsWithConstant(g, g.node(p), OpKind::Add, e, 1.0)) continue;
    ValueId y = soleReader(p);
    if (y < 0 || soleReader(h) != y || g.node(y).op != OpKind::Mul) continue;
    const std::vector<ValueId>& yOperands = g.node(y).operands;
    if (!((yOperands[0] == h && yOperands[1] == p) || (yOperands[0] == p && yOperands[1] == h))) continue;
    std::array<ValueId, 5> nodes = {a, e, p, h, y};
    bool sameType = true;
    for (ValueId v : nodes) sameType = sameType && g.type(v) == type && !g.node(v).body;
    if (sameType) return nodes;
  }
  return std::nullopt;
}

}  // namespace weft::ir
