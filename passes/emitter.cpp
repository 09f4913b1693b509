#include "passes/emitter.h"

#include <memory>
#include <numeric>

namespace weft::passes {

using ir::ValueId;

ValueId Emitter::op(ir::OpKind kind, std::vector<ValueId> operands, ir::Attrs attrs) {
  return g_.addOp(kind, std::move(operands), std::move(attrs), "", loc_);
}

ValueId Emitter::scalar(double value, ir::DType dtype) {
  auto data = std::make_shared<ir::TensorData>(ir::TensorType{dtype, {}});
  data->set(0, value);
  ValueId v = g_.addConstant(std::move(data));
  g_.node(v).loc = loc_;
  return v;
}

ValueId Emitter::cast(ValueId x, ir::DType dtype) { return op(ir::OpKind::Cast, {x}, {{"dtype", dtype}}); }

ValueId Emitter::reduceSum(ValueId x, std::vector<int64_t> axes, bool keepdims) {
  return op(ir::OpKind::ReduceSum, {x}, {{"axes", std::move(axes)}, {"keepdims", int64_t{keepdims}}});
}

ValueId Emitter::reduceMax(ValueId x, std::vector<int64_t> axes, bool keepdims) {
  return op(ir::OpKind::ReduceMax, {x}, {{"axes", std::move(axes)}, {"keepdims", int64_t{keepdims}}});
}

ValueId Emitter::reduceMean(ValueId x, const std::vector<int64_t>& axes, bool keepdims) {
  int64_t count = 1;
  for (int64_t a : axes) count *= shape(x).at(static_cast<size_t>(a));
  ValueId sum = reduceSum(x, axes, keepdims);
  return div(sum, scalarLike(static_cast<double>(count), x));
}

ValueId Emitter::reshape(ValueId x, ir::Shape shape) {
  return op(ir::OpKind::Reshape, {x}, {{"shape", std::move(shape)}});
}

ValueId Emitter::transpose(ValueId x, std::vector<int64_t> perm) {
  return op(ir::OpKind::Transpose, {x}, {{"perm", std::move(perm)}});
}

ValueId Emitter::iota(ir::Shape shape, int64_t axis, ir::DType dtype) {
  return op(ir::OpKind::Iota, {}, {{"shape", std::move(shape)}, {"axis", axis}, {"dtype", dtype}});
}

std::vector<int64_t> allAxes(int64_t rank) {
  std::vector<int64_t> axes(static_cast<size_t>(rank));
  std::iota(axes.begin(), axes.end(), 0);
  return axes;
}

}  // namespace weft::passes
