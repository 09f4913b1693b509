// Kernels of the data-movement ops: reshape, transpose, broadcast, slice, concat, pad,
// gather and scatter_add. Elements are moved as raw bytes, so every dtype is exact.
#include "backends/reference/kernels.h"
#include "backends/reference/tensor_util.h"
#include "ir/verifier.h"

namespace weft::reference {

using ir::TensorData;

namespace {

/// Copies `src[from[i]]` to element i of a new tensor of the node's result type.
TensorData gatherElements(const KernelContext& ctx, const TensorData& src, const std::vector<int64_t>& from) {
  TensorData out(ctx.outType());
  for (size_t i = 0; i < from.size(); ++i) copyElement(out, static_cast<int64_t>(i), src, from[i]);
  return out;
}

/// Reads every index of a gather/scatter along an axis of extent `size`, rejecting any
/// outside [0, size) with a message naming the op, the value and the bad index.
std::vector<int64_t> checkedIndices(const KernelContext& ctx, const TensorData& indices, int64_t axis, int64_t size) {
  std::vector<int64_t> result(static_cast<size_t>(indices.numel()));
  for (int64_t j = 0; j < indices.numel(); ++j) {
    int64_t k = getInt(indices, j);
    if (k < 0 || k >= size)
      ctx.fail("index " + std::to_string(k) + " (at position " + std::to_string(j) + " of the indices " +
               ir::valueRef(ctx.graph, ctx.node().operands[1]) + ") is out of range [0, " +
               std::to_string(size) + ") for axis " + std::to_string(axis));
    result[static_cast<size_t>(j)] = k;
  }
  return result;
}

/// Adds `updates` into `acc` at the gathered positions (the adjoint of gather); T is double
/// for floats and int64_t for integers.
template <class T>
TensorData scatterAdd(const KernelContext& ctx, const std::vector<int64_t>& index, const AxisSplit& s) {
  const TensorData &base = ctx.in(0), &updates = ctx.in(2);
  std::vector<T> acc(static_cast<size_t>(base.numel()));
  for (int64_t i = 0; i < base.numel(); ++i) acc[static_cast<size_t>(i)] = read<T>(base, i);
  auto count = static_cast<int64_t>(index.size());
  for (int64_t o = 0; o < s.outer; ++o)
    for (int64_t j = 0; j < count; ++j)
      for (int64_t in = 0; in < s.inner; ++in) {
        T& slot = acc[static_cast<size_t>((o * s.size + index[static_cast<size_t>(j)]) * s.inner + in)];
        T u = read<T>(updates, (o * count + j) * s.inner + in);
        if constexpr (std::is_same_v<T, double>) slot += u;
        else slot = static_cast<int64_t>(static_cast<uint64_t>(slot) + static_cast<uint64_t>(u));
      }
  TensorData out(ctx.outType());
  for (int64_t i = 0; i < out.numel(); ++i) write(out, i, acc[static_cast<size_t>(i)]);
  return out;
}

}  // namespace

TensorData kernelReshape(const KernelContext& ctx) {
  TensorData out = ctx.in(0);
  out.type = ctx.outType();
  return out;
}

TensorData kernelTranspose(const KernelContext& ctx) {
  // Output dimension d walks input dimension perm[d].
  const TensorData& x = ctx.in(0);
  const auto& perm = ctx.attr().ints("perm");
  std::vector<int64_t> inStrides = ir::rowMajorStrides(x.type.shape), stride;
  for (int64_t p : perm) stride.push_back(inStrides[static_cast<size_t>(p)]);
  return gatherElements(ctx, x, stridedIndex(ctx.outType().shape, stride));
}

TensorData kernelBroadcast(const KernelContext& ctx) {
  const TensorData& x = ctx.in(0);
  return gatherElements(ctx, x, broadcastSourceIndex(x.type.shape, ctx.outType().shape));
}

TensorData kernelSlice(const KernelContext& ctx) {
  // Output index i of dimension d reads input index start[d] + i * stride[d].
  const TensorData& x = ctx.in(0);
  const auto &start = ctx.attr().ints("start"), &step = ctx.attr().ints("stride");
  std::vector<int64_t> inStrides = ir::rowMajorStrides(x.type.shape), stride(inStrides.size());
  int64_t base = 0;
  for (size_t d = 0; d < inStrides.size(); ++d) {
    base += start[d] * inStrides[d];
    stride[d] = step[d] * inStrides[d];
  }
  return gatherElements(ctx, x, stridedIndex(ctx.outType().shape, stride, base));
}

TensorData kernelConcat(const KernelContext& ctx) {
  // Per outer index, each operand contributes one contiguous block of (its extent * inner).
  int64_t axis = ctx.attr().i("axis");
  TensorData out(ctx.outType());
  AxisSplit whole = splitAround(out.type.shape, axis);
  int64_t offsetInBlock = 0;
  for (const TensorData* part : ctx.operands) {
    AxisSplit s = splitAround(part->type.shape, axis);
    int64_t block = s.size * s.inner;
    for (int64_t o = 0; o < s.outer; ++o)
      copyElements(out, o * whole.size * whole.inner + offsetInBlock, *part, o * block, block);
    offsetInBlock += block;
  }
  return out;
}

TensorData kernelPad(const KernelContext& ctx) {
  const TensorData& x = ctx.in(0);
  const auto& low = ctx.attr().ints("low");
  TensorData out(ctx.outType());
  double value = ctx.attr().f("value");
  for (int64_t i = 0; i < out.numel(); ++i) store(out, i, value);
  std::vector<int64_t> outStrides = ir::rowMajorStrides(out.type.shape);
  int64_t base = 0;
  for (size_t d = 0; d < low.size(); ++d) base += low[d] * outStrides[d];
  std::vector<int64_t> to = stridedIndex(x.type.shape, outStrides, base);
  for (size_t i = 0; i < to.size(); ++i) copyElement(out, to[i], x, static_cast<int64_t>(i));
  return out;
}

TensorData kernelCheckIndex(const KernelContext& ctx) {
  ir::AttrReader attrs(ctx.node().attrs, ctx.node().op);
  const TensorData& indices = ctx.in(0);
  const int64_t limit = attrs.i("limit");
  for (int64_t j = 0; j < indices.numel(); ++j)
    if (int64_t k = getInt(indices, j); k < 0 || k >= limit)
      ctx.fail(ir::checkIndexMessage(attrs.has("what") ? attrs.s("what") : "index", k, j,
                                     ir::valueRef(ctx.graph, ctx.node().operands[0]), limit));
  return indices;
}

TensorData kernelGather(const KernelContext& ctx) {
  // numpy take: out[a..., j..., b...] = x[a..., indices[j...], b...].
  const TensorData &x = ctx.in(0), &indices = ctx.in(1);
  int64_t axis = ctx.attr().i("axis");
  AxisSplit s = splitAround(x.type.shape, axis);
  std::vector<int64_t> index = checkedIndices(ctx, indices, axis, s.size);
  auto count = static_cast<int64_t>(index.size());
  TensorData out(ctx.outType());
  for (int64_t o = 0; o < s.outer; ++o)
    for (int64_t j = 0; j < count; ++j)
      copyElements(out, (o * count + j) * s.inner, x, (o * s.size + index[static_cast<size_t>(j)]) * s.inner,
                   s.inner);
  return out;
}

TensorData kernelScatterAdd(const KernelContext& ctx) {
  const TensorData& base = ctx.in(0);
  int64_t axis = ctx.attr().i("axis");
  AxisSplit s = splitAround(base.type.shape, axis);
  std::vector<int64_t> index = checkedIndices(ctx, ctx.in(1), axis, s.size);
  if (isIntegral(base.type.dtype)) return scatterAdd<int64_t>(ctx, index, s);
  return scatterAdd<double>(ctx, index, s);
}

}  // namespace weft::reference
