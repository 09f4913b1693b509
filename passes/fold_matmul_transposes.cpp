// fold-matmul-transposes: folds the view ops a matmul reads its operands through
// (transposes keeping the last dim in place, slices, reshapes) and a transpose it is read
// through into the matmul, as a `fused` node of kind "matmul" whose body holds them. oneDNN's
// brgemm matmul reads and writes strided layouts without gaps at full speed, so the CPU
// backend describes a folded operand (or result) by the strides and offset of the tensor as
// stored (ir/strided_view.h) and no copy runs: attention's head split and merge ([B, T, H, D]
// <-> [B, H, T, D]) were 10 generated transpose kernels of a gpt training step.
//
// Algorithm, two sweeps in node order over the plain f32 matmuls m:
//  - first, when m's only user is a transpose u keeping the last dim (m is no output or
//    update), u is folded as the body's last node, and the fused node replaces u (taking its
//    name) while m disappears;
//  - then an operand of m read through view ops (foldableViews: a transpose or a slice among
//    them, a view without gaps, or with rows apart where m reads it untransposed, or any for
//    a matmul with a triangular hint; they stop at a folded u, which stays stored) is read
//    through them: the fused node takes the stored value instead and its body starts with
//    copies of them (they stay for their other readers; dce drops them when m was the last);
//  - a fused matmul of fuse-epilogues (attention's scaled scores) reads its operands 0 and 1
//    through view ops likewise: its body gains them before its matmul.
// A matmul with nothing to fold is copied as it is. Runs after fuse-epilogues (a matmul with
// an epilogue is a fused node by then: only its operands fold) and before fuse-elementwise.

#include <algorithm>

#include "ir/attrs.h"
#include "ir/strided_view.h"
#include "passes/builtin_passes.h"
#include "passes/rewriter.h"
#include "passes/sole_users.h"

namespace weft::passes {
namespace {

using ir::Graph;
using ir::Node;
using ir::OpKind;
using ir::ValueId;

/// True when `v` is an f32 transpose that keeps the last dim last.
bool isFoldableTranspose(const Graph& g, ValueId v) {
  const Node& n = g.node(v);
  if (n.op != OpKind::Transpose || n.type.dtype != ir::DType::f32 || n.type.rank() < 2) return false;
  return ir::keepsLastDim(ir::AttrReader(n.attrs, n.op).ints("perm"));
}

/// True when matmul node `matmul` reads its operand `i` (0 or 1) transposed.
bool readsTransposed(const Node& matmul, size_t i) {
  return ir::AttrReader(matmul.attrs, matmul.op).i(i == 0 ? "transpose_lhs" : "transpose_rhs", 0) != 0;
}

/// True when matmul node `matmul` carries a triangular hint (needed, lhs_zeros): the CPU's
/// triangular and attention steps run it, whose tiles read any strided operand, packing B.
bool hasTriangularHint(const Node& matmul) {
  ir::AttrReader attrs(matmul.attrs, matmul.op);
  return attrs.has("needed") || attrs.has("lhs_zeros");
}

/// The view ops (transposes keeping the last dim, slices, reshapes) that operand `i` (0 or 1)
/// of matmul node `matmul`, value `o`, is read through, outermost first, down to a value that
/// is none: empty unless they include a transpose or a slice and make a strided view of that
/// value (ir::applyViewOp) whose last dim stays contiguous, as oneDNN's matmul reads operands
/// at full speed: without gaps (ir::isDenseView: a slice along the batch, not one of a fused
/// qkv's heads) or, for an operand the matmul does not read transposed, with gaps only
/// between rows (ir::isPaddedRowMajorView: realnvp's every other row of a weight; its gemm
/// kernels ran those at the pace of copied rows, 0.24-0.26 ms, but read transposed at half
/// of it). A matmul with a triangular hint takes any such view: attention's q, k and v read
/// as heads of the fused qkv in place, no copies of them (hasTriangularHint).
std::vector<ValueId> foldableViews(const Graph& g, ValueId o, const std::vector<ValueId>& foldedResults,
                                   const Node& matmul, size_t i) {
  const bool transposed = readsTransposed(matmul, i);
  std::vector<ValueId> chain;
  bool worth = false;
  // At most four ops (a head split is a slice, a reshape and a transpose); a result transpose
  // folded into its matmul is where the fused node will be: stored, not a view of the matmul.
  for (ValueId v = o; chain.size() < 4 && foldedResults[static_cast<size_t>(v)] < 0; v = g.node(v).operands.at(0)) {
    const Node& n = g.node(v);
    const bool view = n.type.dtype == ir::DType::f32 &&
                      (isFoldableTranspose(g, v) || n.op == OpKind::Slice || n.op == OpKind::Reshape);
    if (!view) break;
    worth = worth || n.op != OpKind::Reshape;
    chain.push_back(v);
  }
  if (!worth || g.type(o).numel() == 0) return {};  // an empty operand: nothing to read
  ir::StridedView view = ir::rowMajorView(g.type(g.node(chain.back()).operands.at(0)).shape);
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    std::optional<ir::StridedView> next = ir::applyViewOp(view, g.node(*it));
    if (!next) return {};
    view = std::move(*next);
  }
  const bool contiguousRows = view.strides.empty() || view.strides.back() == 1;
  const bool read =
      hasTriangularHint(matmul) || ir::isDenseView(view) || (!transposed && ir::isPaddedRowMajorView(view));
  return contiguousRows && read ? chain : std::vector<ValueId>{};
}

/// Fused-node body input for matmul operand `o` read through `views` (foldableViews): the
/// input takes the stored value's type and the copies of the view ops follow it, innermost
/// first; returns the value the matmul reads and sets `stored` to the fused node's operand.
ValueId addOperandViews(const Graph& g, ValueId o, const std::vector<ValueId>& views, const std::string& name,
                        Graph& body, ValueId& stored) {
  stored = views.empty() ? o : g.node(views.back()).operands.at(0);
  ValueId in = body.addInput(name, g.type(stored));
  for (auto it = views.rbegin(); it != views.rend(); ++it) {
    Node copy = g.node(*it);
    copy.operands = {in};
    copy.name.clear();
    in = body.addNode(std::move(copy));
  }
  return in;
}

/// The part of a fused body's name for the view ops `views` fold (transposes, else slices).
std::string viewsName(const Graph& g, const std::vector<ValueId>& views) {
  bool transposes = false, slices = false;
  for (ValueId v : views) {
    transposes = transposes || g.node(v).op == OpKind::Transpose;
    slices = slices || g.node(v).op == OpKind::Slice;
  }
  return transposes ? "_transpose" : slices ? "_slice" : "";
}

/// The fused node of matmul `m` reading its operands through their foldable view ops and,
/// when `result` >= 0, written through transpose `result`; operands are old values.
Node foldedMatmul(const Graph& g, ValueId m, ValueId result, const std::vector<ValueId>& foldedResults) {
  const Node& matmul = g.node(m);
  Node fused;
  fused.op = OpKind::Fused;
  fused.attrs["kind"] = std::string("matmul");
  std::string name = "fused";
  Graph body("");
  std::vector<ValueId> read;
  for (size_t i = 0; i < 2; ++i) {
    const std::vector<ValueId> views = foldableViews(g, matmul.operands.at(i), foldedResults, matmul, i);
    ValueId stored = -1;
    read.push_back(addOperandViews(g, matmul.operands.at(i), views, "in" + std::to_string(i), body, stored));
    fused.operands.push_back(stored);
    if (name == "fused") name += viewsName(g, views);
  }
  Node copy = matmul;
  copy.operands = read;
  copy.name.clear();
  ValueId out = body.addNode(std::move(copy));
  name += "_matmul";
  if (result >= 0) {
    Node t = g.node(result);
    t.operands = {out};
    t.name.clear();
    out = body.addNode(std::move(t));
    name += "_transpose";
  }
  body.addOutput("out", out);
  body.setName(name);
  const Node& last = g.node(result >= 0 ? result : m);
  fused.type = last.type;
  fused.loc = last.loc;
  fused.body = std::make_shared<const Graph>(std::move(body));
  return fused;
}

/// The first node of fused body `body` that is no input, or null when it has none.
const Node* firstBodyOp(const Graph& body) {
  for (ValueId b = 0; b < body.size(); ++b)
    if (body.node(b).op != OpKind::Input) return &body.node(b);
  return nullptr;
}

/// True when `v` is a fused matmul (kind "matmul": fuse-epilogues' bias and activation
/// chains) whose body starts with matmul(in0, in1) of f32, read through no view op yet.
bool isEpilogueMatmul(const Graph& g, ValueId v) {
  const Node& n = g.node(v);
  if (n.op != OpKind::Fused || !n.body || ir::AttrReader(n.attrs, n.op).s("kind") != "matmul") return false;
  const std::vector<ValueId> inputs = n.body->inputs();
  const Node* m = firstBodyOp(*n.body);
  return m && inputs.size() >= 2 && m->op == OpKind::Matmul && m->type.dtype == ir::DType::f32 &&
         m->operands == std::vector<ValueId>{inputs[0], inputs[1]};
}

/// The matmul that fused matmul `f` (isEpilogueMatmul) starts with.
const Node& bodyMatmul(const Graph& g, ValueId f) { return *firstBodyOp(*g.node(f).body); }

/// Fused matmul `f` (isEpilogueMatmul) reading its operands 0 and 1 through their foldable
/// view ops: its body gains them after its inputs; operands are old values.
Node epilogueMatmulReadingViews(const Graph& g, ValueId f, const std::vector<ValueId>& foldedResults) {
  Node fused = g.node(f);
  const Graph& old = *fused.body;
  const std::vector<ValueId> inputs = old.inputs();
  Graph body(old.name());
  std::string prefix;  // viewsName of the first folded operand
  std::vector<ValueId> mapped(static_cast<size_t>(old.size()), -1);
  for (ValueId b = 0; b < old.size(); ++b) {
    const Node& n = old.node(b);
    if (n.op != OpKind::Input) {
      Node copy = n;
      for (ValueId& o : copy.operands) o = mapped[static_cast<size_t>(o)];
      mapped[static_cast<size_t>(b)] = body.addNode(std::move(copy));
      continue;
    }
    const auto i = static_cast<size_t>(std::find(inputs.begin(), inputs.end(), b) - inputs.begin());
    const std::vector<ValueId> views =
        i < 2 ? foldableViews(g, fused.operands[i], foldedResults, bodyMatmul(g, f), i)
              : std::vector<ValueId>{};
    ValueId stored = -1;
    mapped[static_cast<size_t>(b)] = addOperandViews(g, fused.operands[i], views, n.name, body, stored);
    fused.operands[i] = stored;
    if (prefix.empty()) prefix = viewsName(g, views);
  }
  for (const ir::Output& out : old.outputs()) body.addOutput(out.name, mapped[static_cast<size_t>(out.value)]);
  if (old.name().starts_with("fused_") && !prefix.empty() && !old.name().starts_with("fused" + prefix + "_"))
    body.setName("fused" + prefix + "_" + old.name().substr(6));
  fused.body = std::make_shared<const Graph>(std::move(body));
  return fused;
}

}  // namespace

bool foldMatmulTransposes(Graph& g) {
  std::vector<ValueId> sole = soleUsers(g);
  const auto n = static_cast<size_t>(g.size());
  std::vector<ValueId> resultOf(n, -1);    // a folded result transpose -> its matmul
  std::vector<ValueId> writtenVia(n, -1);  // a matmul -> its folded result transpose
  std::vector<bool> readsVia(n, false);          // a matmul reading foldable view ops
  std::vector<bool> epilogueReadsVia(n, false);  // a fused matmul reading foldable view ops
  bool changed = false;
  for (ValueId m = 0; m < g.size(); ++m) {  // the results first: views stop at them
    const Node& node = g.node(m);
    if (node.op != OpKind::Matmul || node.type.dtype != ir::DType::f32) continue;
    if (ValueId u = sole[static_cast<size_t>(m)]; u >= 0 && isFoldableTranspose(g, u)) {
      writtenVia[static_cast<size_t>(m)] = u;
      resultOf[static_cast<size_t>(u)] = m;
      changed = true;
    }
  }
  auto readsViews = [&](const Node& node, const Node& matmul) {
    return !foldableViews(g, node.operands.at(0), resultOf, matmul, 0).empty() ||
           !foldableViews(g, node.operands.at(1), resultOf, matmul, 1).empty();
  };
  for (ValueId m = 0; m < g.size(); ++m) {
    const Node& node = g.node(m);
    const auto i = static_cast<size_t>(m);
    if (isEpilogueMatmul(g, m)) epilogueReadsVia[i] = readsViews(node, bodyMatmul(g, m));
    else if (node.op == OpKind::Matmul && node.type.dtype == ir::DType::f32) readsVia[i] = readsViews(node, node);
    changed = changed || readsVia[i] || epilogueReadsVia[i];
  }
  if (!changed) return false;
  Rewriter rw(g);
  auto replaceBy = [&](ValueId v, Node fused) {
    for (ValueId& o : fused.operands) o = rw.map(o);
    rw.replace(v, rw.target().addNode(std::move(fused)));
  };
  for (ValueId v = 0; v < g.size(); ++v) {
    rw.begin(v);
    const auto i = static_cast<size_t>(v);
    if (resultOf[i] >= 0) replaceBy(v, foldedMatmul(g, resultOf[i], v, resultOf));  // where its transpose was
    else if (writtenVia[i] >= 0) rw.erase(v);                                        // folded into that node
    else if (readsVia[i]) replaceBy(v, foldedMatmul(g, v, -1, resultOf));
    else if (epilogueReadsVia[i]) replaceBy(v, epilogueMatmulReadingViews(g, v, resultOf));
    else rw.copy(v);
  }
  g = rw.finish();
  return true;
}

}  // namespace weft::passes
