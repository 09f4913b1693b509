// The oneDNN matmul step: row-major operands seen through strided descriptors (transposes
// swap the last two strides, missing batch dims become leading 1s that oneDNN broadcasts),
// optionally followed by post-ops.
#include "runtime/cpu/onednn_families.h"

namespace weft::cpu::onednn {
namespace {

/// The dims and strides of a tensor stored row-major as `stored` and seen as
/// transpose(stored, perm) (as stored when `perm` is empty).
std::pair<ir::Shape, ir::Shape> permutedView(const ir::Shape& stored, const ir::Shape& perm) {
  ir::Shape strides = ir::rowMajorStrides(stored);
  if (perm.empty()) return {stored, strides};
  ir::Shape dims(perm.size()), seen(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) {
    dims[i] = stored[static_cast<size_t>(perm[i])];
    seen[i] = strides[static_cast<size_t>(perm[i])];
  }
  return {dims, seen};
}

/// The descriptor of a matmul operand stored row-major as `shape` and read as
/// transpose(shape, perm), seen as a rank-`rank` tensor (leading 1s for missing batch dims)
/// with its last two dims swapped if `transposed`.
memory::desc matmulOperandDesc(const ir::Shape& shape, const ir::Shape& perm, size_t rank, bool transposed) {
  auto [dims, strides] = permutedView(shape, perm);
  int64_t outer = ir::numElements(shape);
  while (dims.size() < rank) {
    dims.insert(dims.begin(), 1);
    strides.insert(strides.begin(), outer);
  }
  if (transposed) {
    std::swap(dims[rank - 1], dims[rank - 2]);
    std::swap(strides[rank - 1], strides[rank - 2]);
  }
  return stridedDesc(dims, strides);
}

/// The descriptor of a matmul result of shape `result` stored as transpose(result, perm).
memory::desc resultDesc(const ir::Shape& result, const ir::Shape& perm) {
  if (perm.empty()) return rowMajorDesc(result);
  ir::Shape stored(perm.size());
  for (size_t j = 0; j < perm.size(); ++j) stored[j] = result[static_cast<size_t>(perm[j])];
  ir::Shape storedStrides = ir::rowMajorStrides(stored), strides(perm.size());
  for (size_t j = 0; j < perm.size(); ++j) strides[static_cast<size_t>(perm[j])] = storedStrides[j];
  return stridedDesc(result, strides);
}

}  // namespace

std::unique_ptr<OneDnnStep> compileMatmul(const ir::Node& node, const ir::TensorType& lhs, const ir::TensorType& rhs,
                                          std::vector<PostOp> postOps, const dnnl::engine& engine,
                                          const StoredLayouts& layouts) {
  ir::AttrReader attr(node.attrs, node.op);
  size_t rank = node.type.shape.size();
  memory::desc src = matmulOperandDesc(lhs.shape, layouts.lhs, rank, attr.i("transpose_lhs", 0) != 0);
  memory::desc weights = matmulOperandDesc(rhs.shape, layouts.rhs, rank, attr.i("transpose_rhs", 0) != 0);
  memory::desc dst = resultDesc(node.type.shape, layouts.result);
  const int biasOperand = takeMatmulBias(postOps, node.type.shape);
  ir::Shape biasDims(rank, 1);
  biasDims.back() = node.type.shape.back();
  const memory::desc bias = rowMajorDesc(biasDims);
  dnnl::matmul::desc desc = biasOperand >= 0 ? dnnl::matmul::desc(src, weights, bias, dst)
                                             : dnnl::matmul::desc(src, weights, dst);
  dnnl::matmul::primitive_desc pd(desc, postOpAttr(postOps, rank), engine);
  bool folded = !layouts.lhs.empty() || !layouts.rhs.empty() || !layouts.result.empty();
  if ((!postOps.empty() || folded || biasOperand >= 0) && isReferenceImpl(pd.impl_info_str())) return nullptr;

  auto step = std::make_unique<PrimitiveStep>(std::string(biasOperand >= 0 ? "matmul+bias" : "matmul") +
                                                  postOpNames(postOps),
                                              engine);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, step->operand(0, src)},
                                       {DNNL_ARG_WEIGHTS, step->operand(1, weights)},
                                       {DNNL_ARG_DST, step->result(dst)}};
  if (biasOperand >= 0) args[DNNL_ARG_BIAS] = step->operand(static_cast<size_t>(biasOperand), bias);
  bindPostOpInputs(*step, postOps, rank, args);
  step->add(dnnl::matmul(pd), std::move(args));
  step->noteImpl(pd.impl_info_str());
  return step;
}

}  // namespace weft::cpu::onednn
