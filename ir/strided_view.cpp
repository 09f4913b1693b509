// Strided views (see strided_view.h). A reshape is viewable when the old dims fall into runs
// whose elements are evenly spaced in the buffer (each dim's stride is the next one's times
// its extent), each run's element count a product of consecutive new dims: within a run the
// new dims take row-major strides scaled by the run's innermost stride.
#include "ir/strided_view.h"

#include <algorithm>

#include "ir/attrs.h"

namespace weft::ir {
namespace {

/// The reshape of `view` to `target`, or nullopt when some new dim would straddle old dims
/// that are not contiguous with each other.
std::optional<StridedView> reshaped(const StridedView& view, const Shape& target) {
  StridedView out{target, Shape(target.size(), 0), view.offset};
  // Old dims of extent 1 carry no stride constraint: drop them first.
  Shape dims, strides;
  for (size_t d = 0; d < view.dims.size(); ++d)
    if (view.dims[d] != 1) {
      dims.push_back(view.dims[d]);
      strides.push_back(view.strides[d]);
    }
  size_t next = 0;  // the first new dim not yet given a stride
  size_t d = 0;
  while (d < dims.size()) {
    // The run of old dims [d, e): each stride the next one's times its extent.
    size_t e = d + 1;
    int64_t count = dims[d];
    while (e < dims.size() && strides[e - 1] == strides[e] * dims[e]) count *= dims[e++];
    const int64_t innermost = strides[e - 1];
    // New dims covering exactly `count` elements, laid out row-major within the run.
    size_t first = next;
    int64_t covered = 1;
    while (next < target.size() && (covered < count || (covered == count && target[next] == 1 && e == dims.size())))
      covered *= target[next++];
    if (covered != count) return std::nullopt;  // a new dim straddles two runs
    int64_t stride = innermost;
    for (size_t k = next; k-- > first;) {
      out.strides[k] = stride;
      stride *= target[k];
    }
    d = e;
  }
  for (size_t k = next; k < target.size(); ++k) {  // trailing dims of extent 1
    if (target[k] != 1) return std::nullopt;
    out.strides[k] = 1;
  }
  return out;
}

}  // namespace

StridedView rowMajorView(const Shape& shape) { return {shape, rowMajorStrides(shape), 0}; }

bool isDenseView(const StridedView& view) {
  std::vector<size_t> order;
  for (size_t d = 0; d < view.dims.size(); ++d)
    if (view.dims[d] != 1) order.push_back(d);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return view.strides[a] < view.strides[b]; });
  int64_t expected = 1;
  for (size_t d : order) {
    if (view.strides[d] != expected) return false;
    expected *= view.dims[d];
  }
  return true;
}

bool isPaddedRowMajorView(const StridedView& view) {
  int64_t least = 0;  // 0 before the innermost dim, whose stride must be 1
  for (size_t d = view.dims.size(); d-- > 0;) {
    if (view.dims[d] == 1) continue;
    if (least == 0 ? view.strides[d] != 1 : view.strides[d] < least) return false;
    least = view.strides[d] * view.dims[d];
  }
  return true;
}

std::optional<StridedView> applyViewOp(const StridedView& view, const Node& n) {
  AttrReader attrs(n.attrs, n.op);
  switch (n.op) {
    case OpKind::Transpose: {
      const std::vector<int64_t>& perm = attrs.ints("perm");
      if (perm.size() != view.dims.size()) return std::nullopt;
      StridedView out{Shape(perm.size()), Shape(perm.size()), view.offset};
      for (size_t i = 0; i < perm.size(); ++i) {
        out.dims[i] = view.dims[static_cast<size_t>(perm[i])];
        out.strides[i] = view.strides[static_cast<size_t>(perm[i])];
      }
      return out;
    }
    case OpKind::Slice: {
      const std::vector<int64_t> &start = attrs.ints("start"), &step = attrs.ints("stride");
      if (start.size() != view.dims.size() || n.type.shape.size() != view.dims.size()) return std::nullopt;
      StridedView out{n.type.shape, view.strides, view.offset};
      for (size_t d = 0; d < start.size(); ++d) {
        out.offset += start[d] * view.strides[d];
        out.strides[d] *= step[d];
      }
      return out;
    }
    case OpKind::Reshape: return reshaped(view, n.type.shape);
    default: return std::nullopt;
  }
}

Shape stridesStoredTransposed(const Shape& dims, const Shape& perm) {
  if (perm.empty()) return rowMajorStrides(dims);
  Shape stored(perm.size()), strides(perm.size());
  for (size_t j = 0; j < perm.size(); ++j) stored[j] = dims[static_cast<size_t>(perm[j])];
  const Shape storedStrides = rowMajorStrides(stored);
  for (size_t j = 0; j < perm.size(); ++j) strides[static_cast<size_t>(perm[j])] = storedStrides[j];
  return strides;
}

std::optional<StridedView> matmulOperandView(const Shape& shape, const std::vector<const Node*>& views, size_t rank,
                                             bool transposed) {
  StridedView view = rowMajorView(shape);
  for (const Node* n : views) {
    std::optional<StridedView> next = applyViewOp(view, *n);
    if (!next) return std::nullopt;
    view = std::move(*next);
  }
  const int64_t stored = numElements(shape);
  while (view.dims.size() < rank) {
    view.dims.insert(view.dims.begin(), 1);
    view.strides.insert(view.strides.begin(), stored);
  }
  if (transposed) {
    std::swap(view.dims[rank - 1], view.dims[rank - 2]);
    std::swap(view.strides[rank - 1], view.strides[rank - 2]);
  }
  return view;
}

}  // namespace weft::ir
