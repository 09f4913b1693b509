// The oneDNN matmul step: row-major operands seen through strided descriptors (transposes
// swap the last two strides, missing batch dims become leading 1s that oneDNN broadcasts),
// optionally followed by post-ops.
#include "runtime/cpu/onednn_families.h"

namespace weft::cpu::onednn {
namespace {

/// The descriptor of a matmul operand stored row-major as `shape`, seen as a rank-`rank`
/// tensor (leading 1s for missing batch dims) with its last two dims swapped if `transposed`.
memory::desc matmulOperandDesc(const ir::Shape& shape, size_t rank, bool transposed) {
  ir::Shape strides = ir::rowMajorStrides(shape);
  ir::Shape dims = shape;
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

}  // namespace

std::unique_ptr<OneDnnStep> compileMatmul(const ir::Node& node, const ir::TensorType& lhs, const ir::TensorType& rhs,
                                          const std::vector<PostOp>& postOps, const dnnl::engine& engine) {
  ir::AttrReader attr(node.attrs, node.op);
  size_t rank = node.type.shape.size();
  memory::desc src = matmulOperandDesc(lhs.shape, rank, attr.i("transpose_lhs", 0) != 0);
  memory::desc weights = matmulOperandDesc(rhs.shape, rank, attr.i("transpose_rhs", 0) != 0);
  memory::desc dst = rowMajorDesc(node.type.shape);
  dnnl::matmul::desc desc(src, weights, dst);
  dnnl::matmul::primitive_desc pd(desc, postOpAttr(postOps, rank), engine);
  if (!postOps.empty() && isReferenceImpl(pd.impl_info_str())) return nullptr;

  auto step = std::make_unique<PrimitiveStep>("matmul" + postOpNames(postOps), engine);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, step->operand(0, src)},
                                       {DNNL_ARG_WEIGHTS, step->operand(1, weights)},
                                       {DNNL_ARG_DST, step->result(dst)}};
  bindPostOpInputs(*step, postOps, rank, args);
  step->add(dnnl::matmul(pd), std::move(args));
  step->noteImpl(pd.impl_info_str());
  return step;
}

}  // namespace weft::cpu::onednn
