// fold-matmul-transposes: folds transposes that keep the last dim in place into the matmuls
// they feed or follow, as a `fused` node of kind "matmul" whose body holds them. oneDNN's
// matmul reads and writes any strided layout at full speed, so the CPU backend describes a
// folded operand (or result) by the strides of the tensor as stored and no copy runs:
// attention's head split and merge ([B, T, H, D] <-> [B, H, T, D]) were 10 generated
// transpose kernels of a gpt training step.
//
// Algorithm, one sweep in node order over the plain f32 matmuls m:
//  - an operand of m that is a transpose t with perm.back() == rank - 1 is read through t:
//    the fused node takes t's operand instead and its body starts with a copy of t (t stays
//    for its other readers; dce drops it when m was the last);
//  - when m's only user is such a transpose u (m is no output or update), u is folded as the
//    body's last node, and the fused node replaces u (taking its name) while m disappears;
//  - a fused matmul of fuse-epilogues (attention's scaled scores) reads its operands 0 and 1
//    through such transposes likewise: its body gains them before its matmul.
// A matmul with nothing to fold is copied as it is. Runs after fuse-epilogues (a matmul with
// an epilogue is a fused node by then: only its operands fold) and before fuse-elementwise.

#include <algorithm>

#include "ir/attrs.h"
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

/// The fused node of matmul `m` reading its operands through the foldable transposes among
/// them and, when `result` >= 0, written through transpose `result`; operands are old values.
Node foldedMatmul(const Graph& g, ValueId m, ValueId result) {
  const Node& matmul = g.node(m);
  Node fused;
  fused.op = OpKind::Fused;
  fused.attrs["kind"] = std::string("matmul");
  std::string name = "fused";
  Graph body("");
  std::vector<ValueId> read;
  for (size_t i = 0; i < 2; ++i) {
    ValueId o = matmul.operands.at(i);
    bool folded = isFoldableTranspose(g, o);
    ValueId stored = folded ? g.node(o).operands.at(0) : o;
    fused.operands.push_back(stored);
    ValueId in = body.addInput("in" + std::to_string(i), g.type(stored));
    if (folded) {
      Node t = g.node(o);
      t.operands = {in};
      t.name.clear();
      in = body.addNode(std::move(t));
      if (name == "fused") name += "_transpose";
    }
    read.push_back(in);
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

/// True when `v` is a fused matmul (kind "matmul": fuse-epilogues' bias and activation
/// chains) whose body starts with matmul(in0, in1) of f32, read through no transpose yet.
bool isEpilogueMatmul(const Graph& g, ValueId v) {
  const Node& n = g.node(v);
  if (n.op != OpKind::Fused || !n.body || ir::AttrReader(n.attrs, n.op).s("kind") != "matmul") return false;
  const Graph& body = *n.body;
  const std::vector<ValueId> inputs = body.inputs();
  for (ValueId b = 0; b < body.size(); ++b) {
    const Node& m = body.node(b);
    if (m.op == OpKind::Input) continue;
    return inputs.size() >= 2 && m.op == OpKind::Matmul && m.type.dtype == ir::DType::f32 &&
           m.operands == std::vector<ValueId>{inputs[0], inputs[1]};
  }
  return false;
}

/// Fused matmul `f` (isEpilogueMatmul) reading its operands 0 and 1 through the foldable
/// transposes among them: its body gains them after its inputs; operands are old values.
Node epilogueMatmulReadingTransposes(const Graph& g, ValueId f) {
  Node fused = g.node(f);
  const Graph& old = *fused.body;
  const std::vector<ValueId> inputs = old.inputs();
  Graph body(old.name());
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
    const ValueId operand = fused.operands[i];
    const bool folded = i < 2 && isFoldableTranspose(g, operand);
    const ValueId stored = folded ? g.node(operand).operands.at(0) : operand;
    fused.operands[i] = stored;
    ValueId in = body.addInput(n.name, g.type(stored));
    if (folded) {
      Node t = g.node(operand);
      t.operands = {in};
      t.name.clear();
      in = body.addNode(std::move(t));
    }
    mapped[static_cast<size_t>(b)] = in;
  }
  for (const ir::Output& out : old.outputs()) body.addOutput(out.name, mapped[static_cast<size_t>(out.value)]);
  if (old.name().starts_with("fused_") && !old.name().starts_with("fused_transpose_"))
    body.setName("fused_transpose_" + old.name().substr(6));
  fused.body = std::make_shared<const Graph>(std::move(body));
  return fused;
}

}  // namespace

bool foldMatmulTransposes(Graph& g) {
  std::vector<ValueId> sole = soleUsers(g);
  const auto n = static_cast<size_t>(g.size());
  std::vector<ValueId> resultOf(n, -1);    // a folded result transpose -> its matmul
  std::vector<ValueId> writtenVia(n, -1);  // a matmul -> its folded result transpose
  std::vector<bool> readsVia(n, false);    // a matmul reading a foldable transpose
  bool changed = false;
  std::vector<bool> epilogueReadsVia(n, false);  // a fused matmul reading a foldable transpose
  for (ValueId m = 0; m < g.size(); ++m) {
    const Node& node = g.node(m);
    if (isEpilogueMatmul(g, m)) {
      epilogueReadsVia[static_cast<size_t>(m)] =
          isFoldableTranspose(g, node.operands.at(0)) || isFoldableTranspose(g, node.operands.at(1));
      changed = changed || epilogueReadsVia[static_cast<size_t>(m)];
      continue;
    }
    if (node.op != OpKind::Matmul || node.type.dtype != ir::DType::f32) continue;
    const auto i = static_cast<size_t>(m);
    if (ValueId u = sole[i]; u >= 0 && isFoldableTranspose(g, u)) {
      writtenVia[i] = u;
      resultOf[static_cast<size_t>(u)] = m;
    }
    readsVia[i] = isFoldableTranspose(g, node.operands.at(0)) || isFoldableTranspose(g, node.operands.at(1));
    changed = changed || writtenVia[i] >= 0 || readsVia[i];
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
    if (resultOf[i] >= 0) replaceBy(v, foldedMatmul(g, resultOf[i], v));  // the fused node goes where its transpose was
    else if (writtenVia[i] >= 0) rw.erase(v);                              // folded into that node
    else if (readsVia[i]) replaceBy(v, foldedMatmul(g, v, -1));
    else if (epilogueReadsVia[i]) replaceBy(v, epilogueMatmulReadingTransposes(g, v));
    else rw.copy(v);
  }
  g = rw.finish();
  return true;
}

}  // namespace weft::passes
