// canonicalize: one forward sweep that copies the graph and replaces algebraic identities,
// looking at operands in the new graph so that chains collapse in the same sweep:
//   x+0, 0+x, x-0, x*1, 1*x, x/1 -> x     neg(neg x) -> x
//   reshape(reshape x) -> reshape x       reshape / broadcast to x's own shape -> x
//   transpose with the identity perm -> x transpose(transpose x) -> one transpose (or x)
//   a transpose that moves only unit dims -> reshape
//   broadcast(broadcast x) -> broadcast x cast to x's own dtype -> x
//   reduce_sum over the batch dims of matmul(a, b, transpose_lhs) with a [B.., T, K] and
//   b [B.., T, N] (a weight gradient, x^T dy summed over the batch) -> one matmul of a and b
//   reshaped to [B..*T, K] and [B..*T, N]: the batches stack along the contraction, so no
//   [B.., K, N] stack of partial products is written and summed
//   a sum of zero pads that tile one axis with their operands -> concat of the operands
// "0" and "1" are constants (possibly broadcast or reshaped) whose every element has that
// value. An identity only applies when the kept operand already has the result's type, so a
// zero that broadcasts x to a larger shape is kept. Values left unused are dce's business.
#include <algorithm>

#include "ir/attrs.h"
#include "passes/builtin_passes.h"
#include "passes/constants.h"
#include "passes/rewriter.h"
#include "passes/sole_users.h"

namespace weft::passes {
namespace {

using ir::OpKind;
using ir::ValueId;
using Replacement = std::optional<ValueId>;

const std::vector<int64_t>& intsAttr(const ir::Node& n, const std::string& name) {
  return ir::AttrReader(n.attrs, n.op).ints(name);
}

bool isIdentityPerm(const std::vector<int64_t>& perm) {
  for (size_t i = 0; i < perm.size(); ++i)
    if (perm[i] != static_cast<int64_t>(i)) return false;
  return true;
}

/// Rewrites binary identities with the neutral element `neutral` on the sides allowed.
Replacement neutralOperand(const ir::Graph& t, const ir::Node& n, const std::vector<ValueId>& in, double neutral,
                           bool leftToo) {
  if (isSplat(t, in[1], neutral) && t.type(in[0]) == n.type) return in[0];
  if (leftToo && isSplat(t, in[0], neutral) && t.type(in[1]) == n.type) return in[1];
  return std::nullopt;
}

/// op(op(x, a), b) -> op(x, b') for reshape and broadcast, whose last shape is all that counts.
Replacement collapseShapeChain(Rewriter& rw, ValueId v, OpKind op) {
  const ir::Node& n = rw.source().node(v);
  ValueId x = rw.map(n.operands[0]);
  if (rw.target().type(x) == n.type) return x;
  const ir::Node& inner = rw.target().node(x);
  if (inner.op != op) return std::nullopt;
  ValueId source = inner.operands[0];
  if (rw.target().type(source) == n.type) return source;
  return rw.emitterFor(v).op(op, {source}, n.attrs);
}

Replacement transposeChain(Rewriter& rw, ValueId v) {
  const ir::Node& n = rw.source().node(v);
  ValueId x = rw.map(n.operands[0]);
  const auto& perm = intsAttr(n, "perm");
  if (isIdentityPerm(perm)) return x;
  const ir::Node& inner = rw.target().node(x);
  if (inner.op != OpKind::Transpose) {
    if (!ir::movesOnlyUnitDims(rw.target().type(x).shape, perm)) return std::nullopt;
    ValueId source = inner.op == OpKind::Reshape ? inner.operands[0] : x;
    if (rw.target().type(source) == n.type) return source;
    return rw.emitterFor(v).reshape(source, n.type.shape);
  }
  const auto& innerPerm = intsAttr(inner, "perm");
  std::vector<int64_t> composed;
  for (int64_t p : perm) composed.push_back(innerPerm.at(static_cast<size_t>(p)));
  if (isIdentityPerm(composed)) return inner.operands[0];
  return rw.emitterFor(v).transpose(inner.operands[0], composed);
}

/// The batch-summed weight-gradient rule of the header comment, for reduce_sum node `v`.
Replacement batchSummedContraction(Rewriter& rw, ValueId v) {
  const ir::Graph& s = rw.source();
  const ir::Node& n = s.node(v);
  ValueId product = n.operands[0];
  const ir::Node& m = s.node(product);
  if (m.op != OpKind::Matmul) return std::nullopt;
  ir::AttrReader attrs(m.attrs, m.op);
  if (attrs.i("transpose_lhs", 0) != 1 || attrs.i("transpose_rhs", 0) != 0) return std::nullopt;
  const ir::Shape &a = s.type(m.operands[0]).shape, &b = s.type(m.operands[1]).shape;
  size_t rank = a.size();
  if (rank < 3 || b.size() != rank || n.type.dtype != s.type(product).dtype) return std::nullopt;
  int64_t batch = 1;
  for (size_t d = 0; d + 2 < rank; ++d) {
    if (a[d] != b[d]) return std::nullopt;  // a broadcast batch is not a stack of rows
    batch *= a[d];
  }
  std::vector<int64_t> batchAxes(rank - 2);
  for (size_t d = 0; d < batchAxes.size(); ++d) batchAxes[d] = static_cast<int64_t>(d);
  if (intsAttr(n, "axes") != batchAxes) return std::nullopt;
  for (const ir::Node& other : s.nodes())  // the stack must have no other reader
    for (ValueId o : other.operands)
      if (o == product && &other != &n) return std::nullopt;
  for (const auto& out : s.outputs())
    if (out.value == product) return std::nullopt;
  int64_t rows = batch * a[rank - 2];
  Emitter e = rw.emitterFor(v);
  ValueId lhs = e.reshape(rw.map(m.operands[0]), {rows, a[rank - 1]});
  ValueId rhs = e.reshape(rw.map(m.operands[1]), {rows, b[rank - 1]});
  ValueId sum = e.op(OpKind::Matmul, {lhs, rhs}, {{"transpose_lhs", int64_t{1}}});
  return e.reshape(sum, n.type.shape);
}

/// Collects in `leaves` the pads summed by the tree of adds rooted at `v` (inner adds read
/// by nothing else); `ok` turns false when a leaf is no zero pad.
void padLeaves(const ir::Graph& s, const std::vector<int>& readers, ValueId v, bool root, std::vector<ValueId>& leaves,
               bool& ok) {
  const ir::Node& n = s.node(v);
  if (n.op == OpKind::Add && (root || readers[static_cast<size_t>(v)] == 1)) {
    for (ValueId o : n.operands) padLeaves(s, readers, o, false, leaves, ok);
  } else if (n.op == OpKind::Pad && ir::AttrReader(n.attrs, n.op).f("value") == 0) {
    leaves.push_back(v);
  } else {
    ok = false;
  }
}

/// A sum of zero pads that place their operands side by side along one axis, together
/// covering it (the gradient of slices, e.g. an attention's q, k, v split of one
/// projection) -> concat of the operands along that axis: a copy of each, where the sum
/// reads every operand for every element.
Replacement padsToConcat(Rewriter& rw, ValueId v, const std::vector<int>& readers) {
  const ir::Graph& s = rw.source();
  const ir::Node& root = s.node(v);
  if (s.node(root.operands[0]).op != OpKind::Pad && s.node(root.operands[0]).op != OpKind::Add) return std::nullopt;
  std::vector<ValueId> leaves;
  bool ok = true;
  padLeaves(s, readers, v, true, leaves, ok);
  if (!ok || leaves.size() < 2) return std::nullopt;
  const ir::Shape& shape = root.type.shape;
  int64_t axis = -1;
  std::vector<std::pair<int64_t, ValueId>> pieces;  // (low, operand)
  for (ValueId leaf : leaves) {
    const ir::Node& pad = s.node(leaf);
    const auto &low = intsAttr(pad, "low"), &high = intsAttr(pad, "high");
    if (pad.type != root.type) return std::nullopt;
    for (size_t d = 0; d < shape.size(); ++d) {
      if (low[d] == 0 && high[d] == 0) continue;
      if (low[d] < 0 || high[d] < 0 || (axis >= 0 && axis != static_cast<int64_t>(d))) return std::nullopt;
      axis = static_cast<int64_t>(d);
    }
    pieces.emplace_back(axis >= 0 ? low[static_cast<size_t>(axis)] : 0, pad.operands[0]);
  }
  if (axis < 0) return std::nullopt;
  std::sort(pieces.begin(), pieces.end());
  int64_t covered = 0;
  for (const auto& [low, operand] : pieces) {
    if (low != covered) return std::nullopt;  // a gap or an overlap
    covered += s.type(operand).shape[static_cast<size_t>(axis)];
  }
  if (covered != shape[static_cast<size_t>(axis)]) return std::nullopt;
  std::vector<ValueId> operands;
  for (const auto& piece : pieces) operands.push_back(rw.map(piece.second));
  return rw.emitterFor(v).op(OpKind::Concat, operands, {{"axis", axis}});
}

/// The rewrite of node `v`; `readers` counts the reads of each source value.
Replacement simplify(Rewriter& rw, ValueId v, const std::vector<int>& readers) {
  const ir::Node& n = rw.source().node(v);
  const ir::Graph& t = rw.target();
  switch (n.op) {
    case OpKind::Add:
      if (auto concat = padsToConcat(rw, v, readers)) return concat;
      return neutralOperand(t, n, rw.mappedOperands(v), 0.0, true);
    case OpKind::Sub: return neutralOperand(t, n, rw.mappedOperands(v), 0.0, false);
    case OpKind::Mul: return neutralOperand(t, n, rw.mappedOperands(v), 1.0, true);
    case OpKind::Div: return neutralOperand(t, n, rw.mappedOperands(v), 1.0, false);
    case OpKind::Neg: {
      const ir::Node& inner = rw.mappedNode(n.operands[0]);
      if (inner.op == OpKind::Neg) return inner.operands[0];
      return std::nullopt;
    }
    case OpKind::Reshape: return collapseShapeChain(rw, v, OpKind::Reshape);
    case OpKind::Broadcast: return collapseShapeChain(rw, v, OpKind::Broadcast);
    case OpKind::Transpose: return transposeChain(rw, v);
    case OpKind::ReduceSum: return batchSummedContraction(rw, v);
    case OpKind::Cast: {
      ValueId x = rw.map(n.operands[0]);
      if (t.type(x) == n.type) return x;
      return std::nullopt;
    }
    default: return std::nullopt;
  }
}

}  // namespace

bool canonicalize(ir::Graph& g) {
  const std::vector<int> readers = readerCounts(g);
  return rewriteNodes(g, [&](Rewriter& rw, ValueId v) { return simplify(rw, v, readers); });
}

}  // namespace weft::passes
