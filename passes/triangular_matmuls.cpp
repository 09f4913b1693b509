// triangular-matmuls: finds the matmuls of causal attention whose work is half wasted and
// says so on them (the matmul hints lhs_zeros and needed, ir/ops.def), for the CPU backend
// to skip those blocks:
//  - the scores q k^T and the probabilities' gradient dy v^T: their entries above the
//    diagonal are masked away by what reads them (needed="lower");
//  - probabilities @ v, their gradients' products with k and q, and the transposed ones:
//    the lhs is zero above (or, transposed, below) its diagonal (lhs_zeros).
//
// The facts come from ir/triangle_facts.h (before fusion: plain nodes): p is zero above its
// diagonal (exp(-inf - max) / sum), and so is ds (a select by the mask). A matmul result with
// square last dims is a candidate for needed="lower": its entries above the diagonal become
// "tainted", taint flows through every op (except where a mask selects or a zero multiplies
// it), and the candidate is kept when no output or state update is tainted. Candidates are
// taken in node order, each tried with those kept before it, so that the kept ones hold
// together; lhs_zeros is then read off the final facts.
#include "passes/builtin_passes.h"

#include <vector>

#include "ir/attrs.h"
#include "ir/triangle_facts.h"

namespace weft::passes {
namespace {

using ir::Graph;
using ir::Node;
using ir::OpKind;
using ir::Fact;
using ir::Known;
using ir::ValueId;

/// True when no output or state update of `g` depends on a tainted entry.
bool outputsClean(const Graph& g, const std::vector<Fact>& facts) {
  auto clean = [&](ValueId v) {
    const Fact& f = facts[static_cast<size_t>(v)];
    return !ir::isTaint(f.above) && !ir::isTaint(f.rest);
  };
  for (const ir::Output& o : g.outputs())
    if (!clean(o.value)) return false;
  for (const ir::StateUpdate& u : g.updates())
    if (!clean(u.value)) return false;
  return true;
}

bool isPlainMatmul(const Node& n) {
  return n.op == OpKind::Matmul && n.type.dtype == ir::DType::f32 && !n.attrs.count("needed") &&
         !n.attrs.count("lhs_zeros");
}

}  // namespace

bool markTriangularMatmuls(Graph& g) {
  std::vector<bool> kept(static_cast<size_t>(g.size()), false);
  bool changed = false;
  for (ValueId v = 0; v < g.size(); ++v) {
    if (!isPlainMatmul(g.node(v)) || !ir::hasDiagonal(g.type(v).shape)) continue;
    std::vector<bool> tried = kept;
    tried[static_cast<size_t>(v)] = true;
    if (outputsClean(g, ir::triangleFacts(g, tried))) kept = std::move(tried);
  }
  const std::vector<Fact> facts = ir::triangleFacts(g, kept);
  for (ValueId v = 0; v < g.size(); ++v) {
    Node& n = g.node(v);
    if (!isPlainMatmul(n)) continue;  // asked before this node gets a hint
    if (kept[static_cast<size_t>(v)]) {
      n.attrs["needed"] = std::string("lower");
      changed = true;
    }
    const ValueId lhs = n.operands.at(0);
    if (ir::hasDiagonal(g.type(lhs).shape) && facts[static_cast<size_t>(lhs)].above == Known::Zero) {
      const bool transposed = ir::AttrReader(n.attrs, n.op).i("transpose_lhs", 0) != 0;
      n.attrs["lhs_zeros"] = std::string(transposed ? "lower" : "upper");
      changed = true;
    }
  }
  return changed;
}

}  // namespace weft::passes
