// affine-grads-from-weight-grads: the scale and shift gradients of y = n * gamma + beta (a
// norm's affine, gamma and beta along the last dim) read by a matmul y w come from that
// matmul's weight gradient when nothing else needs the data gradient dy = g w^T:
//   p      = n^T g                          [D, O], the weight gradient's own product
//   dw     = y^T g = gamma * p + beta * sum(g)        (gamma, beta down the rows of p)
//   dgamma = sum(dy * n) = sum over o of w * p        (along each row)
//   dbeta  = sum(dy)     = sum over o of w * sum(g)
// where sum(g) sums g over its rows (the matmul's bias gradient). The weight gradient's matmul
// reads n instead of y and the [T, O] x [O, D] data gradient goes. That happens where y's
// input needs no gradient: the first norm of a network fed data, gpt's block 0 (its qkv data
// gradient, 1024 x 768 x 256, ~2.5 ms of a 70 ms training step on 2 cores).
//
// Matched after cse (the forward's n and the backward's are one value): dy = matmul(g, w,
// transpose_rhs) read only by reduce_sum(mul(dy, n)) and reduce_sum(dy) over its leading
// axes, y = add(mul(n, gamma), beta) with gamma, beta of [D], and the weight gradient
// matmul(y, g, transpose_lhs) : [D, O], either of them possibly flattened to rows first.
#include <algorithm>
#include <map>
#include <optional>

#include "ir/attrs.h"
#include "passes/builtin_passes.h"
#include "passes/rewriter.h"
#include "passes/sole_users.h"

namespace weft::passes {
namespace {

using ir::Graph;
using ir::Node;
using ir::OpKind;
using ir::Shape;
using ir::ValueId;

/// One affine whose gradients are rewritten; old values.
struct AffineGrads {
  ValueId n = -1, gamma = -1, beta = -1, w = -1, grad = -1;
  ValueId weightGrad = -1, gammaGrad = -1, betaGrad = -1;  // the nodes replaced
};

/// True when `n` is an f32 matmul whose only attribute is `flag` = 1.
bool isMatmulWith(const Node& n, const char* flag) {
  if (n.op != OpKind::Matmul || n.type.dtype != ir::DType::f32 || n.attrs.size() != 1) return false;
  return ir::AttrReader(n.attrs, n.op).i(flag, 0) == 1;
}

/// True when `n` is a reduce_sum of `x` over all of its axes but the last.
bool sumsLeadingAxes(const Graph& g, const Node& n, ValueId x) {
  if (n.op != OpKind::ReduceSum || n.operands != std::vector<ValueId>{x}) return false;
  std::vector<int64_t> axes = ir::AttrReader(n.attrs, n.op).ints("axes");
  std::sort(axes.begin(), axes.end());
  return axes == allAxes(g.type(x).rank() - 1);
}

/// The operand of binary `n` other than `x` (-1 when `n` does not read `x` exactly once).
ValueId otherOperand(const Node& n, ValueId x) {
  if (n.operands.size() != 2 || n.operands[0] == n.operands[1]) return -1;
  return n.operands[0] == x ? n.operands[1] : n.operands[1] == x ? n.operands[0] : -1;
}

/// True when `v` is `x` or a reshape of `x` into rows of its last dim.
bool isRowsOf(const Graph& g, ValueId v, ValueId x) {
  if (v == x) return true;
  const Node& n = g.node(v);
  return n.op == OpKind::Reshape && n.operands[0] == x && n.type.rank() == 2 &&
         n.type.shape[1] == g.type(x).shape.back();
}

/// The weight gradient matmul(rows of y, rows of `grad`, transpose_lhs) : [D, O], or -1.
ValueId weightGradientOf(const Graph& g, const std::vector<std::vector<ValueId>>& readers, ValueId y, ValueId grad) {
  std::vector<ValueId> views = {y};
  for (ValueId r : readers[static_cast<size_t>(y)])
    if (r != y && isRowsOf(g, r, y)) views.push_back(r);
  for (ValueId view : views)
    for (ValueId m : readers[static_cast<size_t>(view)]) {
      const Node& node = g.node(m);
      if (isMatmulWith(node, "transpose_lhs") && node.operands[0] == view && node.type.rank() == 2 &&
          g.type(view).rank() == 2 && isRowsOf(g, node.operands[1], grad))
        return m;
    }
  return -1;
}

/// The affine of data gradient `dy` when it matches (see the file comment).
std::optional<AffineGrads> match(const Graph& g, const std::vector<std::vector<ValueId>>& readers,
                                 const std::vector<int>& readerCount, ValueId dy) {
  const Node& node = g.node(dy);
  if (!isMatmulWith(node, "transpose_rhs") || node.type.rank() < 2) return std::nullopt;
  const ValueId grad = node.operands[0], w = node.operands[1];
  if (g.type(w).rank() != 2) return std::nullopt;
  const int64_t d = g.type(w).shape[0];
  const auto& dyReaders = readers[static_cast<size_t>(dy)];
  if (dyReaders.size() != 2 || readerCount[static_cast<size_t>(dy)] != 2) return std::nullopt;
  AffineGrads a;
  a.w = w, a.grad = grad;
  ValueId product = -1;  // mul(dy, n)
  for (ValueId r : dyReaders) {
    if (sumsLeadingAxes(g, g.node(r), dy)) a.betaGrad = r;
    else if (g.node(r).op == OpKind::Mul && g.type(r).shape == node.type.shape) product = r;
  }
  if (a.betaGrad < 0 || product < 0 || readerCount[static_cast<size_t>(product)] != 1) return std::nullopt;
  a.gammaGrad = readers[static_cast<size_t>(product)].at(0);
  a.n = otherOperand(g.node(product), dy);
  if (a.n < 0 || !sumsLeadingAxes(g, g.node(a.gammaGrad), product)) return std::nullopt;
  auto isRow = [&](ValueId v) {
    return v >= 0 && g.type(v).dtype == ir::DType::f32 && g.type(v).shape == Shape{d};
  };
  for (ValueId scaled : readers[static_cast<size_t>(a.n)]) {
    const Node& s = g.node(scaled);
    if (s.op != OpKind::Mul || s.type.shape != node.type.shape || !isRow(otherOperand(s, a.n))) continue;
    for (ValueId y : readers[static_cast<size_t>(scaled)]) {
      const Node& shifted = g.node(y);
      if (shifted.op != OpKind::Add || shifted.type.shape != node.type.shape || !isRow(otherOperand(shifted, scaled)))
        continue;
      a.weightGrad = weightGradientOf(g, readers, y, grad);
      if (a.weightGrad < 0 || a.weightGrad > a.gammaGrad || a.weightGrad > a.betaGrad) continue;
      a.gamma = otherOperand(s, a.n), a.beta = otherOperand(shifted, scaled);
      return a;
    }
  }
  return std::nullopt;
}

}  // namespace

bool affineGradsFromWeightGrads(Graph& g) {
  const std::vector<std::vector<ValueId>> readers = readersOf(g);
  const std::vector<int> readerCount = readerCounts(g);
  std::vector<AffineGrads> found;
  std::map<ValueId, size_t> role;  // a replaced node -> its entry of found
  for (ValueId v = 0; v < g.size(); ++v)
    if (std::optional<AffineGrads> a = match(g, readers, readerCount, v);
        a && !role.count(a->weightGrad) && !role.count(a->gammaGrad) && !role.count(a->betaGrad)) {
      for (ValueId r : {a->weightGrad, a->gammaGrad, a->betaGrad}) role[r] = found.size();
      found.push_back(*a);
    }
  if (found.empty()) return false;
  std::vector<ValueId> product(found.size(), -1), gradSum(found.size(), -1);  // p and sum(g), new values
  return rewriteNodes(g, [&](Rewriter& rw, ValueId v) -> std::optional<ValueId> {
    auto it = role.find(v);
    if (it == role.end()) return std::nullopt;
    const size_t i = it->second;
    const AffineGrads& a = found[i];
    const Graph& old = rw.source();
    Emitter e = rw.emitterFor(v);
    const int64_t d = old.type(a.w).shape[0];
    if (v == a.weightGrad) {
      const ValueId rows = rw.mappedOperands(v)[1];
      ValueId n = rw.map(a.n);
      if (e.rank(n) != 2) n = e.reshape(n, {e.type(n).numel() / d, d});
      product[i] = e.op(OpKind::Matmul, {n, rows}, {{"transpose_lhs", int64_t{1}}});
      // sum(g) as the bias gradient sums it (cse merges the two), as a row.
      const ValueId grad = rw.map(a.grad);
      gradSum[i] = e.reshape(e.reduceSum(grad, allAxes(e.rank(grad) - 1), true), {1, e.shape(grad).back()});
      const ValueId gamma = e.reshape(rw.map(a.gamma), {d, 1}), beta = e.reshape(rw.map(a.beta), {d, 1});
      return e.add(e.mul(product[i], gamma), e.mul(beta, gradSum[i]));
    }
    const ValueId sum = e.reduceSum(e.mul(rw.map(a.w), v == a.gammaGrad ? product[i] : gradSum[i]), {1}, false);
    return e.reshape(sum, old.type(v).shape);
  });
}

}  // namespace weft::passes
