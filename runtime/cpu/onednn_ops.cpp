// Chooses the oneDNN step of a node: the op families live in onednn_matmul.cpp,
// onednn_conv.cpp and onednn_pool.cpp; fused contractions are read by onednn_postops.cpp.
// Every step is f32 on non-empty tensors; anything oneDNN rejects yields null, and the
// executable runs the node's reference kernel instead.
#include "runtime/cpu/onednn_ops.h"

#include "ir/channels_last.h"
#include "runtime/cpu/onednn_families.h"

namespace weft::cpu {
namespace {

using ir::Graph;
using ir::Node;
using ir::OpKind;
using ir::TensorType;

/// True when every type is a non-empty f32 tensor oneDNN can describe (grouped weights take
/// one extra dim).
bool allDescribable(std::initializer_list<const TensorType*> types) {
  for (const TensorType* t : types)
    if (t->dtype != ir::DType::f32 || t->numel() == 0 || t->rank() + 1 > DNNL_MAX_NDIMS) return false;
  return true;
}

/// True for [N, C, spatial...] with 1 to 3 spatial dims (what oneDNN convolves and pools).
bool isWindowedRank(const TensorType& t) { return t.rank() >= 3 && t.rank() <= 5; }

/// The oneDNN implementation a matmul or fused matmul node names (its impl attribute), or "".
std::string implOf(const Node& node) {
  ir::AttrReader attr(node.attrs, node.op);
  return attr.has("impl") ? attr.s("impl") : std::string();
}

/// The step of a fused node of kind "matmul" or "conv": its contraction with the epilogue
/// as post-ops, in one primitive.
std::unique_ptr<OneDnnStep> compileFused(const Graph& g, const Node& node, const dnnl::engine& engine,
                                         const StepLayouts& layouts) {
  ir::AttrReader attr(node.attrs, node.op);
  const std::string& kind = attr.s("kind");
  if ((kind != "matmul" && kind != "conv") || !node.body) return nullptr;
  auto fused = onednn::parseFusedContraction(*node.body);
  if (!fused || node.body->type(node.body->outputs()[0].value) != node.type) return nullptr;
  for (ir::ValueId o : node.operands)
    if (!allDescribable({&g.type(o)})) return nullptr;
  if (!allDescribable({&node.type})) return nullptr;
  const TensorType &a = g.type(node.operands[0]), &b = g.type(node.operands[1]);
  if (fused->contraction->op == OpKind::Matmul)
    return onednn::compileMatmul(*fused->contraction, a, b, fused->postOps, engine, fused->layouts, implOf(node),
                                 layouts.constantOperands);
  if (!isWindowedRank(a)) return nullptr;
  return onednn::compileConv(*fused->contraction, a, b, fused->postOps, engine, layouts);
}

std::unique_ptr<OneDnnStep> compileNode(const Graph& g, const Node& node, const dnnl::engine& engine,
                                        const StepLayouts& layouts) {
  if (node.op == OpKind::Fused) return compileFused(g, node, engine, layouts);
  switch (node.op) {
    case OpKind::Matmul:
    case OpKind::Conv:
    case OpKind::ConvTranspose:
    case OpKind::ConvWeightGrad:
    case OpKind::MaxPool:
    case OpKind::AvgPool:
    case OpKind::MaxPoolGrad: break;
    default: return nullptr;
  }
  const TensorType& a = g.type(node.operands.at(0));
  if (node.op == OpKind::MaxPoolGrad && ir::isChannelsLast(node.op, node.attrs)) return nullptr;  // a native step runs it
  if (node.op == OpKind::MaxPool || node.op == OpKind::AvgPool) {
    if (!allDescribable({&a, &node.type}) || !isWindowedRank(a)) return nullptr;
    return onednn::compilePool(node, a, engine, layouts);
  }
  const TensorType& b = g.type(node.operands.at(1));
  if (!allDescribable({&a, &b, &node.type})) return nullptr;
  if (node.op == OpKind::Matmul)
    return onednn::compileMatmul(node, a, b, {}, engine, {}, implOf(node), layouts.constantOperands);
  if (!isWindowedRank(a)) return nullptr;
  switch (node.op) {
    case OpKind::Conv: return onednn::compileConv(node, a, b, {}, engine, layouts);
    case OpKind::ConvTranspose: return onednn::compileConvTranspose(node, a, b, engine, layouts);
    case OpKind::ConvWeightGrad: return onednn::compileConvWeightGrad(node, a, b, engine, layouts);
    default: return onednn::compileMaxPoolGrad(node, a, b, engine, layouts);
  }
}

}  // namespace

bool sameBytesEveryRun(const Graph& g, ir::ValueId v) {
  const OpKind op = g.node(v).op;
  if (op == OpKind::Constant) return true;
  if (op != OpKind::Param) return false;
  for (const ir::StateUpdate& u : g.updates())
    if (u.param == v) return false;
  return true;
}

std::vector<bool> constantOperandsOf(const Graph& g, ir::ValueId v) {
  std::vector<bool> constant;
  for (ir::ValueId o : g.node(v).operands) constant.push_back(sameBytesEveryRun(g, o));
  return constant;
}

std::unique_ptr<OneDnnStep> compileOneDnnNode(const Graph& g, ir::ValueId v, const dnnl::engine& engine,
                                              const StepLayouts& layouts) {
  try {
    return compileNode(g, g.node(v), engine, layouts);
  } catch (const dnnl::error&) {
    return nullptr;  // a shape or layout oneDNN has no implementation for: the reference kernel runs it
  }
}

}  // namespace weft::cpu
