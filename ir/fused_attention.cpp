// Attention bodies (see fused_attention.h): the structural checks the verifier, the
// fuse-attention pass and the CPU runtime share.
#include "ir/fused_attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "ir/attrs.h"
#include "ir/triangle_facts.h"
#include "ir/verifier.h"

namespace weft::ir {
namespace {

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

/// The value of a one-element constant node, else nullopt.
std::optional<double> scalarOf(const Node& n) {
  if (n.op != OpKind::Constant || n.type.numel() != 1) return std::nullopt;
  const TensorDataPtr& value = AttrReader(n.attrs, n.op).tensor("value");
  if (!value || value->numel() != 1) return std::nullopt;
  return value->get(0);
}

bool isMinusInfinity(const Node& n) {
  const std::optional<double> value = scalarOf(n);
  return value && std::isinf(*value) && *value < 0;
}

/// True when `mask` of `g` is column > row over square matrices of extent `extent`.
bool isCausalMask(const Graph& g, const Node& mask, int64_t extent) {
  return mask.op == OpKind::Gt && isIndex(g.node(mask.operands[0]), 0, extent) &&
         isIndex(g.node(mask.operands[1]), 1, extent);
}

/// True when `n` multiplies `a` by `b`, in either order.
bool multiplies(const Node& n, ValueId a, ValueId b) {
  return n.op == OpKind::Mul && ((n.operands[0] == a && n.operands[1] == b) || (n.operands[0] == b && n.operands[1] == a));
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
  return isCausalMask(rows, rows.node(select.operands[0]), shape.back());
}

std::optional<double> causalSoftmaxGradScale(const Graph& rows) {
  if (rows.inputs().size() != 2 || rows.outputs().size() != 1) return std::nullopt;
  const ValueId dp = rows.inputs()[0], p = rows.inputs()[1];
  const Shape& shape = rows.type(dp).shape;
  if (!hasDiagonal(shape) || rows.type(p) != rows.type(dp) || rows.type(dp).dtype != DType::f32) return std::nullopt;
  ValueId masked = rows.outputs()[0].value;
  double scale = 1;
  if (const Node& out = rows.node(masked); out.op == OpKind::Mul)
    for (int side = 0; side < 2; ++side)
      if (std::optional<double> c = scalarOf(rows.node(out.operands[static_cast<size_t>(side)]))) {
        scale = *c;
        masked = out.operands[static_cast<size_t>(1 - side)];
        break;
      }
  const Node& select = rows.node(masked);
  if (select.op != OpKind::Select || rows.type(masked).shape != shape || scalarOf(rows.node(select.operands[1])) != 0.0 ||
      !isCausalMask(rows, rows.node(select.operands[0]), shape.back()))
    return std::nullopt;
  const Node& product = rows.node(select.operands[2]);
  if (product.op != OpKind::Mul) return std::nullopt;
  const ValueId difference = product.operands[0] == p ? product.operands[1] : product.operands[0];
  const Node& sub = rows.node(difference);
  if (!multiplies(product, p, difference) || sub.op != OpKind::Sub || sub.operands[0] != dp) return std::nullopt;
  const Node& sum = rows.node(sub.operands[1]);
  if (!reducesLast(sum, OpKind::ReduceSum, shape.size()) || !multiplies(rows.node(sum.operands[0]), dp, p))
    return std::nullopt;
  return scale;
}

std::optional<std::string> attentionBodyProblem(const Graph& body) {
  std::vector<ValueId> fused;
  for (ValueId v = 0; v < body.size(); ++v) {
    const Node& n = body.node(v);
    if (n.op == OpKind::Input) continue;
    if (n.op != OpKind::Fused || !n.body) return "an attention body holds fused nodes only, not " + valueRef(body, v);
    fused.push_back(v);
  }
  if (fused.size() != 2 && fused.size() != 3)
    return "an attention body holds two or three fused nodes (scores, probabilities and maybe a result)";
  const Node& scores = body.node(fused[0]);
  const Node& probabilities = body.node(fused[1]);
  if (fusedKind(scores) != "matmul" || fusedKind(probabilities) != "rows")
    return "an attention body's fused nodes are of kinds matmul, rows and matmul";
  for (ValueId o : scores.operands)
    if (body.node(o).op != OpKind::Input) return "the scores of an attention body read its inputs only";
  if (probabilities.operands != std::vector<ValueId>{fused[0]} || !isCausalSoftmax(*probabilities.body))
    return "the probabilities of an attention body are the causal softmax of its scores";
  if (fused.size() == 3) {
    const Node& result = body.node(fused[2]);
    if (fusedKind(result) != "matmul" || result.operands.size() != 2 || result.operands[0] != fused[1] ||
        body.node(result.operands[1]).op != OpKind::Input)
      return "the result of an attention body multiplies its probabilities by an input";
  }
  if (body.outputs().size() != 1 || body.outputs()[0].value != fused.back())
    return "an attention body returns its last fused node";
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

std::optional<std::string> attentionGradBodyProblem(const Graph& body) {
  std::vector<ValueId> fused, rows, reshapes;
  ValueId concat = -1;
  for (ValueId v = 0; v < body.size(); ++v) {
    const Node& n = body.node(v);
    if (n.op == OpKind::Input) continue;
    if (n.op == OpKind::Fused && n.body) {
      (fusedKind(n) == "rows" ? rows : fused).push_back(v);
    } else if (n.op == OpKind::Reshape) {
      reshapes.push_back(v);
    } else if (n.op == OpKind::Concat && concat < 0) {
      concat = v;
    } else {
      return "an attention gradient body holds fused nodes, reshapes and a concat, not " + valueRef(body, v);
    }
  }
  if (fused.size() != 4 || rows.size() != 1 || reshapes.size() != 3 || concat < 0)
    return "an attention gradient body holds four fused matmuls, a rows kernel, three reshapes and a concat";
  for (ValueId f : fused)
    if (fusedKind(body.node(f)) != "matmul" || body.node(f).operands.size() != 2)
      return "the products of an attention gradient body are fused matmuls of two operands";
  const Node& softmaxGrad = body.node(rows[0]);
  if (softmaxGrad.operands.size() != 2 || !causalSoftmaxGradScale(*softmaxGrad.body))
    return "an attention gradient body's rows kernel is the gradient of a causal softmax";
  const ValueId scoresGrad = softmaxGrad.operands[0], probabilities = softmaxGrad.operands[1];
  if (std::find(fused.begin(), fused.end(), scoresGrad) == fused.end() || body.node(probabilities).op != OpKind::Input)
    return "the softmax gradient of an attention gradient body reads the probabilities' gradient and an input";
  for (ValueId o : body.node(scoresGrad).operands)
    if (body.node(o).op != OpKind::Input) return "the probabilities' gradient of an attention gradient body reads its inputs only";
  const Node& join = body.node(concat);
  const auto last = static_cast<int64_t>(join.type.shape.size()) - 1;
  if (join.operands != reshapes || AttrReader(join.attrs, join.op).i("axis") != last)
    return "an attention gradient body concatenates its three reshapes, in order, along the last axis";
  int readingGrad = 0, readingProbabilities = 0;
  for (ValueId r : reshapes) {
    const ValueId product = body.node(r).operands[0];
    if (product == scoresGrad || std::find(fused.begin(), fused.end(), product) == fused.end())
      return "the reshapes of an attention gradient body reshape its products";
    const Node& n = body.node(product);
    readingGrad += n.operands[0] == rows[0] ? 1 : 0;
    readingProbabilities += n.operands[0] == probabilities ? 1 : 0;
    if (body.node(n.operands[1]).op != OpKind::Input) return "the products of an attention gradient body multiply by an input";
  }
  if (readingGrad != 2 || readingProbabilities != 1)
    return "two products of an attention gradient body read the softmax gradient, one the probabilities";
  if (body.outputs().size() != 1 || body.outputs()[0].value != concat) return "an attention gradient body returns its concat";
  return std::nullopt;
}

AttentionGradParts attentionGradParts(const Graph& body) {
  AttentionGradParts parts;
  for (ValueId v = 0; v < body.size(); ++v)
    if (fusedKind(body.node(v)) == "rows") {
      parts.softmaxGrad = v;
      parts.scoresGrad = body.node(v).operands[0];
      parts.probabilities = body.node(v).operands[1];
    }
  const Node& concat = body.node(body.outputs()[0].value);
  for (size_t i = 0; i < 3; ++i) parts.products[i] = body.node(concat.operands[i]).operands[0];
  return parts;
}

}  // namespace weft::ir
