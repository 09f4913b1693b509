// Builds and runs the oneDNN primitives of matmul and conv nodes.
#include "backends/cpu/onednn_ops.h"

#include <string>
#include <utility>

namespace weft::cpu {
namespace {

using dnnl::memory;
using ir::Graph;
using ir::Node;
using ir::Shape;
using ir::TensorType;

/// A primitive with SRC = operand 0, WEIGHTS = operand 1, DST = the result, all row-major.
class SrcWeightsDstStep final : public OneDnnStep {
 public:
  SrcWeightsDstStep(std::string what, const dnnl::engine& engine) : what_(std::move(what)), engine_(engine) {}

  void run(const std::vector<const void*>& operands, void* result, dnnl::stream& stream) const override {
    // oneDNN only reads SRC and WEIGHTS, so handing it the const buffers is safe.
    memory srcMem(src, engine_, const_cast<void*>(operands.at(0)));
    memory weightsMem(weights, engine_, const_cast<void*>(operands.at(1)));
    memory dstMem(dst, engine_, result);
    primitive.execute(stream, {{DNNL_ARG_SRC, srcMem}, {DNNL_ARG_WEIGHTS, weightsMem}, {DNNL_ARG_DST, dstMem}});
    stream.wait();
  }
  std::string describe() const override { return what_; }

  dnnl::primitive primitive;  ///< created once
  memory::desc src, weights, dst;

 private:
  std::string what_;
  dnnl::engine engine_;
};

/// A f32 descriptor of `dims` with explicit element `strides`.
memory::desc stridedDesc(const Shape& dims, const Shape& strides) {
  return memory::desc(memory::dims(dims.begin(), dims.end()), memory::data_type::f32,
                      memory::dims(strides.begin(), strides.end()));
}

/// A f32 row-major descriptor of `dims`.
memory::desc rowMajorDesc(const Shape& dims) { return stridedDesc(dims, ir::rowMajorStrides(dims)); }

/// The descriptor of a matmul operand stored row-major as `shape`, seen as a rank-`rank`
/// tensor (leading 1s for missing batch dims) with its last two dims swapped if `transposed`.
memory::desc matmulOperandDesc(const Shape& shape, size_t rank, bool transposed) {
  Shape strides = ir::rowMajorStrides(shape);
  Shape dims = shape;
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

/// The matmul primitive of `node` (operands of types `lhs`, `rhs`).
std::unique_ptr<OneDnnStep> compileMatmul(const Node& node, const TensorType& lhs, const TensorType& rhs,
                                          const dnnl::engine& engine) {
  ir::AttrReader attr(node.attrs, node.op);
  size_t rank = node.type.shape.size();
  auto out = std::make_unique<SrcWeightsDstStep>("matmul", engine);
  out->src = matmulOperandDesc(lhs.shape, rank, attr.i("transpose_lhs", 0) != 0);
  out->weights = matmulOperandDesc(rhs.shape, rank, attr.i("transpose_rhs", 0) != 0);
  out->dst = rowMajorDesc(node.type.shape);
  dnnl::matmul::desc desc(out->src, out->weights, out->dst);
  out->primitive = dnnl::matmul(dnnl::matmul::primitive_desc(desc, engine));
  return out;
}

/// The convolution primitive of `node` (input `x`, weight `w` of layout [O, C/groups, k...]).
std::unique_ptr<OneDnnStep> compileConv(const Node& node, const TensorType& x, const TensorType& w,
                                        const dnnl::engine& engine) {
  ir::AttrReader attr(node.attrs, node.op);
  int64_t groups = attr.i("groups");
  const auto &stride = attr.ints("stride"), &padding = attr.ints("padding"), &dilation = attr.ints("dilation");
  memory::dims dilates;
  for (int64_t d : dilation) dilates.push_back(d - 1);  // oneDNN counts the gaps, not the step
  Shape weightDims = w.shape;
  if (groups > 1) {  // [O, C/g, k...] is [g, O/g, C/g, k...] in the same bytes
    weightDims[0] /= groups;
    weightDims.insert(weightDims.begin(), groups);
  }
  auto out = std::make_unique<SrcWeightsDstStep>("conv", engine);
  out->src = rowMajorDesc(x.shape);
  out->weights = rowMajorDesc(weightDims);
  out->dst = rowMajorDesc(node.type.shape);
  memory::dims pads(padding.begin(), padding.end());
  dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                       out->src, out->weights, out->dst, memory::dims(stride.begin(), stride.end()),
                                       dilates, pads, pads);
  out->primitive = dnnl::convolution_forward(dnnl::convolution_forward::primitive_desc(desc, engine));
  return out;
}

/// True when every type is a non-empty f32 tensor oneDNN can describe.
bool allDescribable(std::initializer_list<const TensorType*> types) {
  for (const TensorType* t : types)
    if (t->dtype != ir::DType::f32 || t->numel() == 0 || t->rank() + 1 > DNNL_MAX_NDIMS) return false;
  return true;
}

}  // namespace

std::unique_ptr<OneDnnStep> compileOneDnnNode(const Graph& g, ir::ValueId v, const dnnl::engine& engine) {
  const Node& node = g.node(v);
  if (node.op != ir::OpKind::Matmul && node.op != ir::OpKind::Conv) return nullptr;
  const TensorType& a = g.type(node.operands.at(0));
  const TensorType& b = g.type(node.operands.at(1));
  if (!allDescribable({&a, &b, &node.type})) return nullptr;
  try {
    if (node.op == ir::OpKind::Matmul) return compileMatmul(node, a, b, engine);
    if (a.rank() < 3 || a.rank() > 5) return nullptr;  // oneDNN convolves 1 to 3 spatial dims
    return compileConv(node, a, b, engine);
  } catch (const dnnl::error&) {
    return nullptr;  // a shape or layout oneDNN has no implementation for: the reference kernel runs it
  }
}

}  // namespace weft::cpu
