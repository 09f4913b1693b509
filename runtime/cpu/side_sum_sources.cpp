// The structural choice of side sums (see side_sum_sources.h).
#include "runtime/cpu/side_sum_sources.h"

#include <algorithm>
#include <string>

#include "ir/attrs.h"
#include "ir/side_sums.h"

namespace weft::cpu {
namespace {

using ir::Graph;
using ir::Node;
using ir::OpKind;
using ir::ValueId;

/// The kind of fused node `n`, "" for another node.

/// True when `n` is a generated kernel of `kind` with one output.
bool isKernel(const Node& n, const char* kind) { return ir::fusedKind(n) == kind && n.body->outputs().size() == 1; }

/// The most sums a kernel's innermost loop may add into: its run of kept elements that come
/// last (per channel: 16 in blocked data, C channels-last). Each 4 KiB row of the inputs loads
/// from addresses equal, modulo the 4 KiB the CPU compares loads and pending stores by, to the
/// 4 KiB of sums just stored. That cost matters beside a kernel that computes erf and exp (gpt's
/// bias gradient summed alongside its GELU gradient, [8,128,1024] into [1024], took 1.31 ms
/// against 0.93 + 0.20 apart), so such kernels keep kMaxInnermostSumsBesideMath. Beside a light
/// kernel it does not: with GELU's derivative precomputed (precompute-derivatives) the same sum
/// beside a multiply made gpt's training step 1.5% faster on the Intel Xeon of stop 26,
/// realnvp's (784 wide) 2.0%, vae's 1.6%, mlp's 0.6%.
constexpr int64_t kMaxInnermostSums = 1024;
constexpr int64_t kMaxInnermostSumsBesideMath = 256;

/// True when `body` computes a transcendental function or a division (ir::kCostly).
bool computesMath(const Graph& body) {
  return std::any_of(body.nodes().begin(), body.nodes().end(),
                     [](const Node& n) { return ir::opInfo(n.op).has(ir::kCostly); });
}

/// The elements of the trailing dimensions of `shape` that a reduction over `axes` keeps
/// (up to the last reduced one).
int64_t trailingKept(const ir::Shape& shape, const std::vector<int64_t>& axes) {
  int64_t run = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    if (std::find(axes.begin(), axes.end(), static_cast<int64_t>(d)) != axes.end()) break;
    run *= shape[d];
  }
  return run;
}

/// True when reduce kernel `r` sums values of loop kernel `l` as a side sum could.
bool sumsAlongside(const Graph& g, ValueId l, ValueId r) {
  const Node& node = g.node(r);
  const Graph& body = *node.body;
  const ir::Shape& shape = g.type(l).shape;
  const Node& sum = body.node(body.outputs()[0].value);
  const int64_t widest = computesMath(*g.node(l).body) ? kMaxInnermostSumsBesideMath : kMaxInnermostSums;
  if (!ir::isSideSum(body, body.outputs()[0].value, shape) ||
      trailingKept(shape, ir::AttrReader(sum.attrs, sum.op).ints("axes")) > widest)
    return false;
  const std::vector<ValueId> inputs = body.inputs();
  for (size_t i = 0; i < node.operands.size(); ++i) {
    if (node.operands[i] != l) {
      if (node.operands[i] >= l) return false;
      continue;
    }
    for (const Node& b : body.nodes())
      for (ValueId o : b.operands)
        if (o == inputs[i] && b.op != OpKind::ReduceSum &&
            !(b.type.shape == shape && ir::opInfo(b.op).has(ir::kElementwise)))
          return false;
  }
  return true;
}

}  // namespace

std::vector<ValueId> sideSumSources(const Graph& g) {
  std::vector<ValueId> source(static_cast<size_t>(g.size()), -1);
  for (ValueId r = 0; r < g.size(); ++r) {
    const Node& node = g.node(r);
    if (!isKernel(node, "reduce")) continue;
    std::vector<ValueId> loops;
    for (ValueId o : node.operands)
      if (isKernel(g.node(o), "loop")) loops.push_back(o);
    std::sort(loops.rbegin(), loops.rend());
    for (ValueId l : loops) {
      if (sumsAlongside(g, l, r)) {
        source[static_cast<size_t>(r)] = l;
        break;
      }
    }
  }
  return source;
}

}  // namespace weft::cpu
