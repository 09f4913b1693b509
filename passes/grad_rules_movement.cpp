// Gradient rules of the data-movement ops; each is the adjoint movement of the cotangent:
// reshape back, transpose by the inverse permutation, sum a broadcast back, scatter a slice
// into zeros (interleave zeros for strides, then pad), slice concat's operands back out,
// slice a pad's interior, scatter_add a gather's cotangent, gather a scatter_add's updates.
#include "passes/grad_rules.h"

namespace weft::passes::grad {
namespace {

using ir::OpKind;
using ir::Shape;
using ir::ValueId;

ValueId sliceOf(Emitter& e, ValueId x, std::vector<int64_t> start, std::vector<int64_t> limit) {
  std::vector<int64_t> stride(start.size(), 1);
  return e.op(OpKind::Slice, {x},
              {{"start", std::move(start)}, {"limit", std::move(limit)}, {"stride", std::move(stride)}});
}

ValueId padWithZeros(Emitter& e, ValueId x, std::vector<int64_t> low, std::vector<int64_t> high) {
  bool any = false;
  for (size_t d = 0; d < low.size(); ++d) any = any || low[d] != 0 || high[d] != 0;
  if (!any) return x;
  return e.op(OpKind::Pad, {x}, {{"low", std::move(low)}, {"high", std::move(high)}, {"value", 0.0}});
}

Grads reshape(GradContext& c) { return {reshapeTo(c.e, c.cotangent, c.operandShape(0))}; }

Grads transpose(GradContext& c) {
  const auto& perm = c.attr().ints("perm");
  std::vector<int64_t> inverse(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inverse[static_cast<size_t>(perm[i])] = static_cast<int64_t>(i);
  return {c.e.transpose(c.cotangent, inverse)};
}

Grads broadcast(GradContext& c) { return {sumToShape(c.e, c.cotangent, c.operandShape(0))}; }

/// Spreads g's elements `stride` apart along `axis` (zeros between), keeping the span
/// (n - 1) * stride + 1: reshape to [..., n, 1, ...], pad the new dim to `stride`, merge, trim.
ValueId interleaveZeros(Emitter& e, ValueId g, size_t axis, int64_t stride) {
  Shape shape = e.shape(g);
  int64_t n = shape[axis];
  Shape split = shape;
  split.insert(split.begin() + static_cast<long>(axis) + 1, 1);
  std::vector<int64_t> low(split.size(), 0), high(split.size(), 0);
  high[axis + 1] = stride - 1;
  ValueId spread = padWithZeros(e, e.reshape(g, split), low, high);
  Shape merged = shape;
  merged[axis] = n * stride;
  ValueId flat = e.reshape(spread, merged);
  std::vector<int64_t> start(shape.size(), 0);
  Shape limit = merged;
  limit[axis] = (n - 1) * stride + 1;
  return sliceOf(e, flat, start, limit);
}

/// The cotangent of x is g placed at start + i * stride in zeros of x's shape.
Grads slice(GradContext& c) {
  Emitter& e = c.e;
  const Shape& xs = c.operandShape(0);
  const Shape& ys = c.resultType().shape;
  if (c.resultType().numel() == 0) return {zeros(e, c.operandTypes[0])};
  const auto &start = c.attr().ints("start"), &stride = c.attr().ints("stride");
  ValueId g = c.cotangent;
  std::vector<int64_t> low(xs.size()), high(xs.size());
  for (size_t d = 0; d < xs.size(); ++d) {
    if (stride[d] > 1 && ys[d] > 1) g = interleaveZeros(e, g, d, stride[d]);
    int64_t span = (ys[d] - 1) * stride[d] + 1;
    low[d] = start[d];
    high[d] = xs[d] - start[d] - span;
  }
  return {padWithZeros(e, g, low, high)};
}

Grads concat(GradContext& c) {
  auto axis = static_cast<size_t>(c.attr().i("axis"));
  Grads r(c.operandTypes.size());
  int64_t offset = 0;
  for (size_t i = 0; i < c.operandTypes.size(); ++i) {
    const Shape& s = c.operandShape(i);
    if (c.wants(i)) {
      std::vector<int64_t> start(s.size(), 0);
      Shape limit = c.resultType().shape;
      start[axis] = offset;
      limit[axis] = offset + s[axis];
      r[i] = sliceOf(c.e, c.cotangent, start, limit);
    }
    offset += s[axis];
  }
  return r;
}

Grads pad(GradContext& c) {
  const auto& low = c.attr().ints("low");
  const Shape& xs = c.operandShape(0);
  std::vector<int64_t> limit(xs.size());
  for (size_t d = 0; d < xs.size(); ++d) limit[d] = low[d] + xs[d];
  return {sliceOf(c.e, c.cotangent, low, limit)};
}

Grads gather(GradContext& c) {
  Emitter& e = c.e;
  ValueId base = zeros(e, c.operandTypes[0]);
  return {e.op(OpKind::ScatterAdd, {base, c.operand(1), c.cotangent}, {{"axis", c.attr().i("axis")}}), std::nullopt};
}

Grads scatterAdd(GradContext& c) {
  Grads r(3);
  if (c.wants(0)) r[0] = c.cotangent;
  if (c.wants(2)) r[2] = c.e.op(OpKind::Gather, {c.cotangent, c.operand(1)}, {{"axis", c.attr().i("axis")}});
  return r;
}

}  // namespace

void addMovementGradRules(std::map<OpKind, GradRule>& table) {
  table[OpKind::Reshape] = reshape;
  table[OpKind::Transpose] = transpose;
  table[OpKind::Broadcast] = broadcast;
  table[OpKind::Slice] = slice;
  table[OpKind::Concat] = concat;
  table[OpKind::Pad] = pad;
  table[OpKind::Gather] = gather;
  table[OpKind::ScatterAdd] = scatterAdd;
}

}  // namespace weft::passes::grad
