// pool-gradient-masks: two identities of a 2-D max_pool_grad(x, dy), whose result holds each
// window's dy at the window's winner (the position whose value the pool took) and 0 elsewhere:
//  1. select(gt(x, t), max_pool_grad(x, dy), 0), the mask a ReLU's gradient puts on the
//     pool's gradient when x is the ReLU's output and t a one-element constant, equals
//     max_pool_grad(x, select(gt(p, t), dy, 0)) with p = max_pool(x) (same attributes, already
//     in the graph): at a winner x equals the pooled value, every other position is 0 on both
//     sides, NaN included (a NaN wins its window and fails both comparisons) as long as
//     max_pool picks winners as max_pool_grad does. The CPU backend's 1-D and 2-D max_pool
//     does (native_max_pool.h); its 3-D one is oneDNN's, which skips NaNs, so there a window
//     holding a NaN passes dy to it (a diverged model's gradient; the forward max_pool
//     differs there already). The mask then covers the pooled gradient, a quarter of the
//     elements for 2x2 windows.
//  2. reduce_sum(max_pool_grad(x, dy)) over axes that include both spatial ones equals
//     reduce_sum(dy) over the same axes when the pool has no padding (every window's dy is
//     added at exactly one position of the result): the bias gradient of a conv under a pool.
// lenet's training step: the ReLU mask and the conv bias sums read [64, 26, 26, 32] and
// [64, 11, 11, 64] gradients; now they read the pools' [64, 13, 13, 32] and [64, 5, 5, 64].
// Runs after channels-last (whose layout the pool attributes already carry); values left
// unread are dce's.
#include <algorithm>

#include "ir/attrs.h"
#include "passes/builtin_passes.h"
#include "passes/constants.h"
#include "passes/rewriter.h"

namespace weft::passes {
namespace {

using ir::Graph;
using ir::Node;
using ir::OpKind;
using ir::ValueId;

/// True when `n` is an f32 max_pool_grad over rank-4 data.
bool isPoolGradient(const Node& n) {
  return n.op == OpKind::MaxPoolGrad && n.type.dtype == ir::DType::f32 && n.type.rank() == 4;
}

/// The axes of a rank-4 pool's spatial dims.
std::vector<int64_t> spatialAxes(const Node& pool) {
  if (ir::AttrReader(pool.attrs, pool.op).i("channels_last", 0) != 0) return {1, 2};
  return {2, 3};
}

/// A max_pool of `x` with the attributes of pool gradient `grad`, defined before node
/// `before`, or -1.
ValueId poolOf(const Graph& g, ValueId x, const Node& grad, ValueId before) {
  for (ValueId v = 0; v < before; ++v) {
    const Node& n = g.node(v);
    if (n.op == OpKind::MaxPool && n.operands.at(0) == x && n.attrs == grad.attrs) return v;
  }
  return -1;
}

/// Identity 1 for select node `v` (old graph), or nullopt when it does not apply.
std::optional<ValueId> maskPooledGradient(Rewriter& rw, ValueId v) {
  const Graph& g = rw.source();
  const Node& select = g.node(v);
  const Node& cond = g.node(select.operands.at(0));
  const Node& grad = g.node(select.operands.at(1));
  if (cond.op != OpKind::Gt || !isPoolGradient(grad) || !isSplat(g, select.operands.at(2), 0.0)) return std::nullopt;
  const ValueId x = grad.operands.at(0), threshold = cond.operands.at(1);
  if (cond.operands.at(0) != x || !isScalarConstant(g, threshold) || g.type(threshold).rank() != 0 ||
      select.type != grad.type)
    return std::nullopt;
  const ValueId pool = poolOf(g, x, grad, v);
  if (pool < 0) return std::nullopt;
  Emitter e = rw.emitterFor(v);
  const ValueId dy = rw.map(grad.operands.at(1));
  const ValueId masked = e.select(e.op(OpKind::Gt, {rw.map(pool), rw.map(threshold)}), dy, e.scalarLike(0, dy));
  Node poolGrad = grad;
  poolGrad.operands = {rw.map(x), masked};
  poolGrad.name.clear();
  poolGrad.loc = select.loc;
  return rw.target().addNode(std::move(poolGrad));
}

/// Identity 2 for reduce_sum node `v` (old graph), or nullopt when it does not apply.
std::optional<ValueId> sumPooledGradient(Rewriter& rw, ValueId v) {
  const Node& sum = rw.source().node(v);
  const Node& grad = rw.mappedNode(sum.operands.at(0));  // identity 1 may have made it
  if (!isPoolGradient(grad)) return std::nullopt;
  ir::AttrReader poolAttrs(grad.attrs, grad.op), sumAttrs(sum.attrs, sum.op);
  const std::vector<int64_t>& padding = poolAttrs.ints("padding");
  if (std::any_of(padding.begin(), padding.end(), [](int64_t p) { return p != 0; })) return std::nullopt;
  std::vector<int64_t> axes = sumAttrs.ints("axes");
  for (int64_t& a : axes)
    if (a < 0) a += 4;
  for (int64_t spatial : spatialAxes(grad))
    if (std::find(axes.begin(), axes.end(), spatial) == axes.end()) return std::nullopt;
  const bool keepdims = sumAttrs.i("keepdims", 0) != 0;
  const ir::Shape& dy = rw.target().type(grad.operands.at(1)).shape;
  ir::Shape summed;
  for (int64_t d = 0; d < 4; ++d)
    if (std::find(axes.begin(), axes.end(), d) == axes.end()) summed.push_back(dy[static_cast<size_t>(d)]);
    else if (keepdims) summed.push_back(1);
  if (summed != sum.type.shape || sum.type.dtype != ir::DType::f32) return std::nullopt;
  return rw.emitterFor(v).reduceSum(grad.operands.at(1), axes, keepdims);
}

}  // namespace

bool maskPoolGradients(Graph& g) {
  return rewriteNodes(g, [](Rewriter& rw, ValueId v) -> std::optional<ValueId> {
    switch (rw.source().node(v).op) {
      case OpKind::Select: return maskPooledGradient(rw, v);
      case OpKind::ReduceSum: return sumPooledGradient(rw, v);
      default: return std::nullopt;
    }
  });
}

}  // namespace weft::passes
