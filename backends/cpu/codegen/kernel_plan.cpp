// Planning of generated kernels. Algorithm:
//  1. Mark the nodes reachable from the body's one output; only those are generated, and each
//     must be a supported op on a supported dtype (f32, f64, i32, i64, bool): sources input,
//     constant, iota; every elementwise op except integer div (which must raise an error on a
//     zero divisor); reshape, transpose, broadcast, slice, pad, concat; and reduce_sum/max/min
//     only as the root.
//  2. A body whose root is a reduction over a non-empty axis list is a Reduce plan over the
//     reduction operand's shape: the trailing run of reduced dimensions folds into a register
//     in the innermost loops (contiguous reads); any other reduced dimension is looped over
//     outside and accumulated into the output (e.g. reducing axis 0 of [N, C] loops n outside,
//     c inside). The largest kept dimension is the parallel one, unless it is narrow
//     (kNarrowParallelExtent) or the last and only one, summed in register chunks
//     (kMaxRegisterAccumulators), and the reduction an f32 sum to few elements: then the largest
//     reduced dimension looped outside is (partialSums), each call summing its range; an
//     f32 sum of every dimension loops its first one outside to split it so.
//  3. A row body (ir/fused_rows.h: reductions of the last axis read by values of the row) is a
//     Rows plan over {rows, row length}, the rows split across threads; its reductions may
//     be anywhere in the body.
//  4. Anything else is a Loop plan over the output's shape; when every value is either the
//     output's shape or a single element (pure elementwise chains, reshapes), it is flat: one
//     loop over all elements. Further outputs are values of the output's shape, stored at its
//     indices, or side sums (ir/side_sums.h) accumulated at their broadcast index (never flat).
#include "backends/cpu/codegen/kernel_plan.h"

#include <algorithm>

#include "ir/error.h"
#include "ir/fused_rows.h"
#include "ir/side_sums.h"
#include "ir/triangle_facts.h"
#include "ir/verifier.h"

namespace weft::cpu::codegen {
namespace {

using ir::DType;
using ir::OpKind;

bool isMovement(OpKind op) {
  return op == OpKind::Reshape || op == OpKind::Transpose || op == OpKind::Broadcast || op == OpKind::Slice ||
         op == OpKind::Pad || op == OpKind::Concat;
}

/// `op %v (type)`, how messages name a node.
std::string describe(const ir::Graph& g, ir::ValueId v) {
  return std::string(ir::opName(g.node(v).op)) + " " + ir::valueRef(g, v) + " (" + g.type(v).str() + ")";
}

/// Why node `v` (reachable from `root` or a side sum) cannot be generated, or nullopt.
std::optional<std::string> nodeProblem(const ir::Graph& g, ir::ValueId v, ir::ValueId root, bool rows,
                                       const std::vector<bool>& sideSum) {
  const ir::Node& n = g.node(v);
  const std::string suffix = " in body @" + g.name() + " is not supported by generated kernels";
  if (n.type.dtype == DType::bf16)
    return describe(g, v) + suffix + ": dtype bf16 (f32, f64, i32, i64 and bool are)";
  OpKind op = n.op;
  if (op == OpKind::Constant) {
    const ir::TensorDataPtr& data = ir::AttrReader(n.attrs, op).tensor("value");
    if (!data || data->type != n.type || data->bytes.size() != data->type.byteSize())
      return describe(g, v) + " in body @" + g.name() + ": its value does not match its type";
    return std::nullopt;
  }
  if (op == OpKind::Input || op == OpKind::Iota || isMovement(op)) return std::nullopt;
  if (isReduction(op)) {
    if (v != root && !rows && !sideSum[static_cast<size_t>(v)])
      return describe(g, v) + suffix + ": a reduction must be the body's root (or read by its row, " +
             *ir::rowsBodyProblem(g) + ")";
    return std::nullopt;
  }
  if (ir::opInfo(op).has(ir::kElementwise)) {
    if (op == OpKind::Div && !ir::isFloat(n.type.dtype))
      return describe(g, v) + suffix + ": integer division (a zero divisor must raise an error)";
    return std::nullopt;
  }
  return describe(g, v) + suffix;
}

/// True when every live value is the output's shape or one element and every op is
/// elementwise or a reshape, so buffers can be read as flat vectors.
bool isFlat(const ir::Graph& g, const std::vector<bool>& live, ir::ValueId root) {
  const ir::Shape& outShape = g.type(root).shape;
  int64_t total = ir::numElements(outShape);
  for (ir::ValueId v = 0; v < g.size(); ++v) {
    if (!live[static_cast<size_t>(v)]) continue;
    const ir::Node& n = g.node(v);
    int64_t count = n.type.numel();
    if (count != total && count != 1) return false;
    if (n.op == OpKind::Input || n.op == OpKind::Constant || n.op == OpKind::Reshape) continue;
    if (!ir::opInfo(n.op).has(ir::kElementwise)) return false;
    for (ir::ValueId o : n.operands)
      if (g.type(o).shape != n.type.shape && g.type(o).numel() != 1) return false;
  }
  return true;
}

void planLoop(const ir::Graph& g, KernelPlan& plan) {
  plan.kind = KernelPlan::Kind::Loop;
  plan.flat = plan.sideSums.empty() && isFlat(g, plan.live, plan.root);
  const ir::Shape& shape = g.type(g.outputs()[0].value).shape;
  if (plan.flat) {
    plan.loopShape = {ir::numElements(shape)};
  } else {
    // Rows (every dimension but the last that is not 1) times the last dimension: the row
    // loop is the parallel one, so that a leading extent of 2 still splits into many pieces.
    std::vector<int64_t> extents;
    for (int64_t extent : shape)
      if (extent != 1) extents.push_back(extent);
    const size_t n = extents.size();
    if (n <= 1) {
      plan.loopShape = {extents.empty() ? 1 : extents[0]};
    } else if (n >= 3 && extents.back() <= kShortRowExtent &&
               ir::numElements(ir::Shape(extents.begin(), extents.end() - 2)) >= kMinParallelRows) {
      // Short rows: a middle loop over the next dimension, so that the row's coordinates
      // are worked out once per run of rows rather than once per row.
      plan.loopShape = {ir::numElements(ir::Shape(extents.begin(), extents.end() - 2)), extents[n - 2], extents.back()};
    } else {
      plan.loopShape = {ir::numElements(ir::Shape(extents.begin(), extents.end() - 1)), extents.back()};
    }
  }
  plan.parallelExtent = plan.loopShape[0];
  plan.work = ir::numElements(shape);
}

/// The nodes reachable from `roots`.
std::vector<bool> reachableFrom(const ir::Graph& g, const std::vector<ir::ValueId>& roots) {
  std::vector<bool> live(static_cast<size_t>(g.size()), false);
  for (ir::ValueId r : roots) {
    std::vector<bool> more = reachable(g, r);
    for (size_t i = 0; i < live.size(); ++i) live[i] = live[i] || more[i];
  }
  return live;
}

/// Makes `plan` (Reduce, its parallel dimension chosen among the kept ones) split a reduced
/// dimension looped outside instead, when the kept one is narrow and partial sums are cheap.
void choosePartialSums(const ir::Graph& g, KernelPlan& plan, int64_t outputElements) {
  const ir::Shape& shape = g.type(plan.root).shape;
  if (plan.reduceOp != OpKind::ReduceSum || g.type(plan.root).dtype != DType::f32) return;
  if (outputElements > kMaxPartialElements || plan.work < kMinPartialRatio * outputElements) return;
  if (plan.parallelDim >= 0 && shape[static_cast<size_t>(plan.parallelDim)] >= kNarrowParallelExtent &&
      !sumsLastDimInChunks(shape, plan.reduced))
    return;
  // A reduction of every dim (all folded innermost) loops its first one outside instead,
  // to split it, when enough follows it (coalesceDims keeps it apart so).
  const int64_t rest = plan.work / std::max<int64_t>(1, shape.empty() ? 1 : shape[0]);
  const bool loopsFirst = plan.suffixStart == 0 && shape.size() >= 2 && rest >= kMinFullReductionRow;
  const int outside = loopsFirst ? 1 : plan.suffixStart;
  int split = -1;
  for (int d = 0; d < outside; ++d)
    if (plan.reduced[static_cast<size_t>(d)] &&
        (split < 0 || shape[static_cast<size_t>(d)] > shape[static_cast<size_t>(split)]))
      split = d;
  if (split < 0 || shape[static_cast<size_t>(split)] < kMinPartialExtent) return;
  if (loopsFirst) {
    plan.suffixStart = 1;
    plan.accumulate = true;
  }
  plan.partialSums = true;
  plan.parallelDim = split;
  plan.parallelExtent = shape[static_cast<size_t>(split)];
}

void planReduce(const ir::Graph& g, const ir::Node& reduction, KernelPlan& plan) {
  plan.kind = KernelPlan::Kind::Reduce;
  plan.reduceOp = reduction.op;
  plan.root = reduction.operands[0];
  const ir::Shape& shape = g.type(plan.root).shape;
  auto rank = static_cast<int>(shape.size());
  plan.reduced.assign(shape.size(), false);
  for (int64_t a : ir::AttrReader(reduction.attrs, reduction.op).ints("axes"))
    plan.reduced[static_cast<size_t>(a)] = true;
  plan.suffixStart = rank;
  while (plan.suffixStart > 0 && plan.reduced[static_cast<size_t>(plan.suffixStart - 1)]) --plan.suffixStart;
  plan.accumulate = false;
  plan.parallelDim = -1;
  for (int d = 0; d < rank; ++d) {
    auto i = static_cast<size_t>(d);
    if (plan.reduced[i] && d < plan.suffixStart && shape[i] != 1) plan.accumulate = true;
    if (!plan.reduced[i] && (plan.parallelDim < 0 || shape[i] > shape[static_cast<size_t>(plan.parallelDim)]))
      plan.parallelDim = d;
  }
  plan.parallelExtent = plan.parallelDim < 0 ? 1 : shape[static_cast<size_t>(plan.parallelDim)];
  plan.work = ir::numElements(shape);
  choosePartialSums(g, plan, g.type(g.outputs()[0].value).numel());
}

/// A Rows plan: the rows (every dimension but the last) split across threads, the body's
/// reductions folded in order along each row; work counts a pass over the data per loop.
void planRows(const ir::Graph& g, KernelPlan& plan) {
  plan.kind = KernelPlan::Kind::Rows;
  plan.root = g.outputs()[0].value;
  const ir::Shape& shape = g.type(plan.root).shape;
  const int64_t length = shape.back(), elements = ir::numElements(shape);
  plan.loopShape = {elements / length, length};
  for (ir::ValueId v = 0; v < g.size(); ++v)
    if (plan.live[static_cast<size_t>(v)] && isReduction(g.node(v).op)) plan.rowReductions.push_back(v);
  plan.parallelExtent = plan.loopShape[0];
  plan.work = elements * static_cast<int64_t>(plan.rowReductions.size() + 1);
  if (ir::rowsStopAtDiagonal(g)) plan.diagonal = length;  // KernelPlan::diagonal
}

}  // namespace

bool sumsLastDimInChunks(const ir::Shape& shape, const std::vector<bool>& reduced) {
  if (shape.size() < 2 || reduced.size() != shape.size() || reduced.back()) return false;
  for (size_t d = 0; d + 1 < shape.size(); ++d)
    if (!reduced[d]) return false;
  return shape.back() % kMaxRegisterAccumulators == 0;
}

bool isReduction(OpKind op) { return op == OpKind::ReduceSum || op == OpKind::ReduceMax || op == OpKind::ReduceMin; }

std::vector<bool> reachable(const ir::Graph& g, ir::ValueId root) {
  std::vector<bool> live(static_cast<size_t>(g.size()), false);
  std::vector<ir::ValueId> stack = {root};
  while (!stack.empty()) {
    ir::ValueId v = stack.back();
    stack.pop_back();
    if (v < 0 || v >= g.size() || live[static_cast<size_t>(v)]) continue;
    live[static_cast<size_t>(v)] = true;
    for (ir::ValueId o : g.node(v).operands) stack.push_back(o);
  }
  return live;
}

std::optional<std::string> unsupportedReason(const ir::Graph& body) {
  if (body.outputs().empty()) return "body @" + body.name() + " has no output";
  if (!body.params().empty()) return "body @" + body.name() + " has parameters; generated kernels take only inputs";
  ir::ValueId root = body.outputs()[0].value;
  if (root < 0 || root >= body.size()) return "body @" + body.name() + " returns an invalid value";
  std::vector<bool> live = reachable(body, root);
  const bool rows = !ir::rowsBodyProblem(body);
  std::vector<bool> sideSum(static_cast<size_t>(body.size()), false);
  std::vector<ir::ValueId> roots = {root};
  for (size_t k = 1; k < body.outputs().size(); ++k) {  // further outputs: stored at the first one's indices
    ir::ValueId extra = body.outputs()[k].value;
    const bool valid = extra >= 0 && extra < body.size() && !isReduction(body.node(root).op) && !rows;
    if (valid && ir::isSideSum(body, extra, body.type(root).shape)) {
      sideSum[static_cast<size_t>(extra)] = true;
      roots.push_back(extra);
      continue;
    }
    if (!valid || body.type(extra).shape != body.type(root).shape)
      return "body @" + body.name() + ": output " + std::to_string(k) +
             " is neither a value of the first output's shape nor a sum of one (or the first is a reduction)";
    if (!live[static_cast<size_t>(extra)]) roots.push_back(extra);  // a sibling's value, computed at the same index
  }
  live = reachableFrom(body, roots);
  for (ir::ValueId v = 0; v < body.size(); ++v)
    if (live[static_cast<size_t>(v)])
      if (auto problem = nodeProblem(body, v, root, rows, sideSum)) return problem;
  for (ir::ValueId v : body.inputs())
    if (body.type(v).dtype == DType::bf16)
      return describe(body, v) + " in body @" + body.name() + " is not supported by generated kernels: dtype bf16";
  return std::nullopt;
}

KernelPlan planKernel(const ir::Graph& body) {
  if (auto problem = unsupportedReason(body)) throw Error(*problem);
  KernelPlan plan;
  ir::ValueId out = body.outputs()[0].value;
  plan.live = reachable(body, out);
  const ir::Node& node = body.node(out);
  bool reducesAxes = isReduction(node.op) && !ir::AttrReader(node.attrs, node.op).ints("axes").empty();
  if (!ir::rowsBodyProblem(body)) {
    planRows(body, plan);
  } else if (reducesAxes) {
    planReduce(body, node, plan);
  } else {
    // A reduction over no axes is its operand.
    plan.root = isReduction(node.op) ? node.operands[0] : out;
    std::vector<ir::ValueId> roots = {plan.root};
    for (size_t k = 1; k < body.outputs().size(); ++k) {
      if (ir::isSideSum(body, body.outputs()[k].value, body.type(out).shape)) plan.sideSums.push_back(k);
      roots.push_back(body.outputs()[k].value);  // a sibling's value too: its nodes decide flatness as well
    }
    plan.live = reachableFrom(body, roots);
    planLoop(body, plan);
  }
  return plan;
}

}  // namespace weft::cpu::codegen
