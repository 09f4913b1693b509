// Which reductions a loop kernel can compute on the side (see side_sums.h).
#include "ir/side_sums.h"

#include "ir/attrs.h"

namespace weft::ir {

bool isSideSum(const Graph& body, ValueId v, const Shape& shape) {
  const Node& n = body.node(v);
  if (n.op != OpKind::ReduceSum || n.type.dtype != DType::f32 || n.type.numel() > kMaxSideSumElements) return false;
  AttrReader attrs(n.attrs, n.op);
  return !attrs.ints("axes").empty() && body.type(n.operands[0]).shape == shape && !shape.empty() &&
         numElements(shape) > 0;
}

}  // namespace weft::ir
