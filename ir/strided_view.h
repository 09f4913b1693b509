#pragma once
/// Views of row-major buffers: the dims, element strides and element offset that view ops
/// (transpose, slice, reshape) make of a stored tensor without copying it, as libraries
/// such as oneDNN read strided operands. fold-matmul-transposes folds the view ops a matmul
/// operand is read through into the matmul; the CPU backend describes the operand so.
#include <optional>

#include "ir/graph.h"

namespace weft::ir {

/// A tensor seen in a row-major buffer: element (i0, i1, ...) lies at offset + sum i_d * strides[d].
struct StridedView {
  Shape dims, strides;
  int64_t offset = 0;
};

/// The view of a row-major tensor of shape `shape` as it is stored.
StridedView rowMajorView(const Shape& shape);

/// `view` after view op `n` (its operand being `view`): a transpose permutes dims and
/// strides, a slice moves the offset to its start and multiplies the strides by its steps,
/// a reshape splits and merges dims where the strides allow it without a copy. nullopt for
/// any other op, and for a reshape that would need one (merging dims that are not
/// contiguous with each other in the buffer).
std::optional<StridedView> applyViewOp(const StridedView& view, const Node& n);

/// A matmul operand stored row-major as `shape` and read through view ops `views` (in order,
/// as ops `n` of applyViewOp), as the matmul of result rank `rank` multiplies it: leading
/// dims of extent 1 (stride: the stored size) for missing batch dims, the last two swapped
/// when `transposed`. nullopt when a view op makes no strided view.
std::optional<StridedView> matmulOperandView(const Shape& shape, const std::vector<const Node*>& views, size_t rank,
                                             bool transposed);

/// The element strides, in the order of `dims`, of a tensor stored row-major as
/// transpose(it, perm): row-major strides of `dims` when `perm` is empty.
Shape stridesStoredTransposed(const Shape& dims, const Shape& perm);

/// True when `view` covers its elements without gaps: its dims ordered by stride are a
/// row-major tensor (a transpose of a contiguous one), whatever its offset. oneDNN 2.6's
/// brgemm matmul reads such operands; views with gaps (a slice of the last dim) fall back to
/// its slower gemm kernels (attention's heads sliced from a fused qkv: 0.30-0.37 ms per
/// matmul against 0.23-0.28 for the copies).
bool isDenseView(const StridedView& view);

/// True when `view` is a row-major tensor whose rows (or any outer dims) may lie apart: its
/// last dim contiguous, each other dim's stride at least the extent the dims after it span
/// (dims of extent 1 aside). oneDNN's matmul reads such an operand as one with a larger
/// leading dimension (a slice taking every other row of a weight).
bool isPaddedRowMajorView(const StridedView& view);

}  // namespace weft::ir
