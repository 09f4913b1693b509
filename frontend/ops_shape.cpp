// Data movement and matmul.
#include <algorithm>

#include "frontend/emit.h"
#include "frontend/ops.h"

namespace weft {

using detail::emit;
using detail::fail;
using detail::normAxis;
using ir::OpKind;

Tensor reshape(const Tensor& x, const Shape& shape, SrcLoc loc) {
  detail::builderOf("reshape", {x}, loc);
  Shape target = shape;
  int64_t known = 1, inferred = -1;
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == -1) {
      if (inferred >= 0) fail("reshape", {x}, "target shape " + ir::shapeStr(shape) + " has more than one -1", loc);
      inferred = static_cast<int64_t>(i);
    } else if (target[i] < 0) {
      fail("reshape", {x}, "target shape " + ir::shapeStr(shape) + " has a negative extent", loc);
    } else {
      known *= target[i];
    }
  }
  if (inferred >= 0) {
    if (known == 0 || x.numel() % known != 0)
      fail("reshape", {x}, "cannot reshape " + std::to_string(x.numel()) + " elements to " + ir::shapeStr(shape), loc);
    target[static_cast<size_t>(inferred)] = x.numel() / known;
  }
  return emit(OpKind::Reshape, {x}, {{"shape", target}}, loc);
}

Tensor flatten(const Tensor& x, int64_t start, int64_t end, SrcLoc loc) {
  detail::builderOf("flatten", {x}, loc);
  if (x.rank() == 0) return reshape(x, {1}, loc);
  int64_t s = normAxis(start, x.rank(), "flatten", {x}, loc), e = normAxis(end, x.rank(), "flatten", {x}, loc);
  if (s > e) fail("flatten", {x}, "start dim " + std::to_string(start) + " comes after end dim " + std::to_string(end), loc);
  Shape out(x.shape().begin(), x.shape().begin() + s);
  int64_t merged = 1;
  for (int64_t d = s; d <= e; ++d) merged *= x.shape()[static_cast<size_t>(d)];
  out.push_back(merged);
  out.insert(out.end(), x.shape().begin() + e + 1, x.shape().end());
  return reshape(x, out, loc);
}

Tensor unsqueeze(const Tensor& x, int64_t dim, SrcLoc loc) {
  detail::builderOf("unsqueeze", {x}, loc);
  int64_t d = normAxis(dim, x.rank() + 1, "unsqueeze", {x}, loc);
  Shape out = x.shape();
  out.insert(out.begin() + d, 1);
  return reshape(x, out, loc);
}

Tensor squeeze(const Tensor& x, int64_t dim, SrcLoc loc) {
  detail::builderOf("squeeze", {x}, loc);
  int64_t d = normAxis(dim, x.rank(), "squeeze", {x}, loc);
  if (x.shape()[static_cast<size_t>(d)] != 1)
    fail("squeeze", {x}, "dimension " + std::to_string(dim) + " has extent " +
                             std::to_string(x.shape()[static_cast<size_t>(d)]) + ", not 1", loc);
  Shape out = x.shape();
  out.erase(out.begin() + d);
  return reshape(x, out, loc);
}

Tensor transpose(const Tensor& x, int64_t d0, int64_t d1, SrcLoc loc) {
  detail::builderOf("transpose", {x}, loc);
  std::vector<int64_t> perm = detail::range(x.rank());
  std::swap(perm[static_cast<size_t>(normAxis(d0, x.rank(), "transpose", {x}, loc))],
            perm[static_cast<size_t>(normAxis(d1, x.rank(), "transpose", {x}, loc))]);
  return emit(OpKind::Transpose, {x}, {{"perm", perm}}, loc);
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& perm, SrcLoc loc) {
  detail::builderOf("transpose", {x}, loc);
  std::vector<int64_t> p;
  for (int64_t d : perm) p.push_back(d < 0 && -d <= x.rank() ? d + x.rank() : d);
  return emit(OpKind::Transpose, {x}, {{"perm", p}}, loc);
}

Tensor broadcast_to(const Tensor& x, const Shape& shape, SrcLoc loc) {
  return emit(OpKind::Broadcast, {x}, {{"shape", shape}}, loc);
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step, SrcLoc loc) {
  detail::builderOf("slice", {x}, loc);
  int64_t d = normAxis(dim, x.rank(), "slice", {x}, loc);
  if (step < 1) fail("slice", {x}, "step must be >= 1, got " + std::to_string(step), loc);
  int64_t n = x.shape()[static_cast<size_t>(d)];
  auto clampIndex = [n](int64_t i) { return std::clamp<int64_t>(i < 0 ? i + n : i, 0, n); };
  int64_t s = clampIndex(start), e = std::max(s, clampIndex(end));
  std::vector<int64_t> lo(static_cast<size_t>(x.rank()), 0), hi = x.shape(), st(static_cast<size_t>(x.rank()), 1);
  lo[static_cast<size_t>(d)] = s;
  hi[static_cast<size_t>(d)] = e;
  st[static_cast<size_t>(d)] = step;
  return emit(OpKind::Slice, {x}, {{"start", lo}, {"limit", hi}, {"stride", st}}, loc);
}

Tensor strided_slice(const Tensor& x, const std::vector<int64_t>& start, const std::vector<int64_t>& limit,
                     const std::vector<int64_t>& stride, SrcLoc loc) {
  detail::builderOf("slice", {x}, loc);
  std::vector<int64_t> st = stride.empty() ? std::vector<int64_t>(start.size(), 1) : stride;
  return emit(OpKind::Slice, {x}, {{"start", start}, {"limit", limit}, {"stride", st}}, loc);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim, SrcLoc loc) {
  detail::builderOf("split", {x}, loc);
  int64_t d = normAxis(dim, x.rank(), "split", {x}, loc);
  int64_t total = 0;
  for (int64_t s : sizes) {
    if (s < 0) fail("split", {x}, "split sizes must be >= 0", loc);
    total += s;
  }
  if (total != x.shape()[static_cast<size_t>(d)])
    fail("split", {x}, "split sizes add up to " + std::to_string(total) + " but dimension " + std::to_string(dim) +
                           " has extent " + std::to_string(x.shape()[static_cast<size_t>(d)]), loc);
  std::vector<Tensor> out;
  int64_t at = 0;
  for (int64_t s : sizes) {
    out.push_back(slice(x, d, at, at + s, 1, loc));
    at += s;
  }
  return out;
}

std::vector<Tensor> split(const Tensor& x, int64_t size, int64_t dim, SrcLoc loc) {
  detail::builderOf("split", {x}, loc);
  int64_t d = normAxis(dim, x.rank(), "split", {x}, loc);
  if (size < 1) fail("split", {x}, "split size must be >= 1, got " + std::to_string(size), loc);
  std::vector<int64_t> sizes;
  for (int64_t left = x.shape()[static_cast<size_t>(d)]; left > 0; left -= size) sizes.push_back(std::min(size, left));
  return split(x, sizes, d, loc);
}

std::vector<Tensor> chunk(const Tensor& x, int64_t n, int64_t dim, SrcLoc loc) {
  detail::builderOf("chunk", {x}, loc);
  int64_t d = normAxis(dim, x.rank(), "chunk", {x}, loc);
  int64_t extent = x.shape()[static_cast<size_t>(d)];
  if (n < 1 || extent % n != 0)
    fail("chunk", {x}, "cannot cut extent " + std::to_string(extent) + " into " + std::to_string(n) + " equal pieces", loc);
  return split(x, std::vector<int64_t>(static_cast<size_t>(n), extent / n), d, loc);
}

Tensor concat(const std::vector<Tensor>& xs, int64_t dim, SrcLoc loc) {
  if (xs.empty()) failAt(loc, "concat: needs at least one tensor");
  detail::builderOf("concat", xs, loc);
  int64_t d = normAxis(dim, xs[0].rank(), "concat", xs, loc);
  return emit(OpKind::Concat, xs, {{"axis", d}}, loc);
}

Tensor pad(const Tensor& x, const std::vector<int64_t>& low, const std::vector<int64_t>& high, double value,
           SrcLoc loc) {
  return emit(OpKind::Pad, {x}, {{"low", low}, {"high", high}, {"value", value}}, loc);
}

Tensor gather(const Tensor& x, const Tensor& indices, int64_t axis, SrcLoc loc) {
  detail::builderOf("gather", {x, indices}, loc);
  int64_t a = normAxis(axis, x.rank(), "gather", {x, indices}, loc);
  return emit(OpKind::Gather, {x, indices}, {{"axis", a}}, loc);
}

Tensor scatter_add(const Tensor& base, const Tensor& indices, const Tensor& updates, int64_t axis, SrcLoc loc) {
  detail::builderOf("scatter_add", {base, indices, updates}, loc);
  int64_t a = normAxis(axis, base.rank(), "scatter_add", {base, indices, updates}, loc);
  return emit(OpKind::ScatterAdd, {base, indices, updates}, {{"axis", a}}, loc);
}

Tensor matmul(const Tensor& a, const Tensor& b, bool transposeA, bool transposeB, SrcLoc loc) {
  ir::Attrs attrs;
  if (transposeA) attrs["transpose_lhs"] = int64_t{1};
  if (transposeB) attrs["transpose_rhs"] = int64_t{1};
  return emit(OpKind::Matmul, {a, b}, std::move(attrs), loc);
}

}  // namespace weft
