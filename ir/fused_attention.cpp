// Attention bodies (see fused_attention.h): the structural checks the verifier, the
// fuse-attention pass and the CPU runtime share.
#include "ir/fused_attention.h"

#include <cmath>
#include <vector>

#include "ir/attrs.h"
#include "ir/triangle_facts.h"
#include "ir/verifier.h"

namespace weft::ir {
namespace {

std::string kindOf(const Node& n) {
  return n.op == OpKind::Fused && n.body ? AttrReader(n.attrs, n.op).s("kind") : std::string();
}

/// True when `n` reduces the last axis of its operand (of rank `rank`) keeping it.
bool reducesLast(const Node& n, OpKind op, size_t rank) {
  if (n.op != op || rank == 0) return false;
  AttrReader a(n.attrs, n.op);
  return a.i("keepdims", 0) == 1 && a.ints("axes") == std::vector<int64_t>{static_cast<int64_t>(rank) - 1};
}

/// True when `n` is an integer iota over a square matrix counting along its dim `fromLast`
/// from the end (0: columns, 1: rows) of size `extent`.
bool isIndex(const Node& n, int64_t fromLast, int64_t extent) {
  if (n.op != OpKind::Iota || !hasDiagonal(n.type.shape) || n.type.shape.back() != extent) return false;
  if (n.type.dtype != DType::i32 && n.type.dtype != DType::i64) return false;
  return AttrReader(n.attrs, n.op).i("axis") == static_cast<int64_t>(n.type.shape.size()) - 1 - fromLast;
}

bool isMinusInfinity(const Node& n) {
  if (n.op != OpKind::Constant || n.type.numel() != 1) return false;
  const TensorDataPtr& value = AttrReader(n.attrs, n.op).tensor("value");
  return value && value->numel() == 1 && std::isinf(value->get(0)) && value->get(0) < 0;
}

}  // namespace

bool isCausalSoftmax(const Graph& rows) {
  if (rows.inputs().size() != 1 || rows.outputs().size() != 1) return false;
  const ValueId in = rows.inputs()[0];
  const Shape& shape = rows.type(in).shape;
  const ValueId out = rows.outputs()[0].value;
  if (!hasDiagonal(shape) || rows.type(out).shape != shape || rows.type(in).dtype != DType::f32) return false;
  const Node& div = rows.node(out);
  if (div.op != OpKind::Div) return false;
  const Node& exp = rows.node(div.operands[0]);
  const Node& sum = rows.node(div.operands[1]);
  if (exp.op != OpKind::Exp || !reducesLast(sum, OpKind::ReduceSum, shape.size()) || sum.operands[0] != div.operands[0])
    return false;
  const Node& sub = rows.node(exp.operands[0]);
  if (sub.op != OpKind::Sub) return false;
  const Node& max = rows.node(sub.operands[1]);
  if (!reducesLast(max, OpKind::ReduceMax, shape.size()) || max.operands[0] != sub.operands[0]) return false;
  const Node& select = rows.node(sub.operands[0]);
  if (select.op != OpKind::Select || select.operands[2] != in || rows.type(sub.operands[0]).shape != shape ||
      !isMinusInfinity(rows.node(select.operands[1])))
    return false;
  const Node& mask = rows.node(select.operands[0]);
  return mask.op == OpKind::Gt && isIndex(rows.node(mask.operands[0]), 0, shape.back()) &&
         isIndex(rows.node(mask.operands[1]), 1, shape.back());
}

std::optional<std::string> attentionBodyProblem(const Graph& body) {
  std::vector<ValueId> fused;
  for (ValueId v = 0; v < body.size(); ++v) {
    const Node& n = body.node(v);
    if (n.op == OpKind::Input) continue;
    if (n.op != OpKind::Fused || !n.body) return "an attention body holds fused nodes only, not " + valueRef(body, v);
    fused.push_back(v);
  }
  if (fused.size() != 3) return "an attention body holds three fused nodes (scores, probabilities, result)";
  const Node& scores = body.node(fused[0]);
  const Node& probabilities = body.node(fused[1]);
  const Node& result = body.node(fused[2]);
  if (kindOf(scores) != "matmul" || kindOf(probabilities) != "rows" || kindOf(result) != "matmul")
    return "an attention body's fused nodes are of kinds matmul, rows and matmul";
  for (ValueId o : scores.operands)
    if (body.node(o).op != OpKind::Input) return "the scores of an attention body read its inputs only";
  if (probabilities.operands != std::vector<ValueId>{fused[0]} || !isCausalSoftmax(*probabilities.body))
    return "the probabilities of an attention body are the causal softmax of its scores";
  if (result.operands.size() != 2 || result.operands[0] != fused[1] || body.node(result.operands[1]).op != OpKind::Input)
    return "the result of an attention body multiplies its probabilities by an input";
  if (body.outputs().size() != 1 || body.outputs()[0].value != fused[2])
    return "an attention body returns its result";
  return std::nullopt;
}

AttentionParts attentionParts(const Graph& body) {
  AttentionParts parts;
  for (ValueId v = 0; v < body.size(); ++v) {
    if (body.node(v).op != OpKind::Fused) continue;
    (parts.scores < 0 ? parts.scores : parts.probabilities < 0 ? parts.probabilities : parts.result) = v;
  }
  return parts;
}

}  // namespace weft::ir
