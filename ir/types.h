#pragma once
/// Element types and static tensor types of weft's IR.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace weft::ir {

/// The element types a tensor may have.
enum class DType : uint8_t { f32, f64, bf16, i32, i64, boolean };

/// The textual name of a dtype as it appears in IR text (`f32`, `bool`, ...).
std::string_view dtypeName(DType t);
/// Parses a dtype name; nullopt when the name is unknown.
std::optional<DType> parseDType(std::string_view name);
/// Size in bytes of one element.
size_t dtypeSize(DType t);
/// True for f32, f64, bf16.
bool isFloat(DType t);
/// True for i32, i64.
bool isInteger(DType t);

/// A static shape: one extent per dimension, rank 0 for scalars.
using Shape = std::vector<int64_t>;

/// Number of elements of a shape (1 for a scalar).
int64_t numElements(const Shape& s);
/// Prints a shape as `[2,3]`.
std::string shapeStr(const Shape& s);
/// `bytes` in GiB with one decimal, e.g. "372.5 GiB", for messages.
std::string gibibytes(size_t bytes);

/// A tensor type: dtype plus static shape; prints as `f32[4,8]`.
struct TensorType {
  DType dtype = DType::f32;
  Shape shape;

  /// Number of dimensions.
  int64_t rank() const { return static_cast<int64_t>(shape.size()); }
  /// Number of elements.
  int64_t numel() const { return numElements(shape); }
  /// Number of bytes of a dense row-major buffer of this type.
  size_t byteSize() const { return static_cast<size_t>(numel()) * dtypeSize(dtype); }
  /// The IR spelling, e.g. `f32[4,8]` or `f32[]`.
  std::string str() const;
  bool operator==(const TensorType& o) const { return dtype == o.dtype && shape == o.shape; }
  bool operator!=(const TensorType& o) const { return !(*this == o); }
};

/// Row-major strides (in elements) of a shape.
std::vector<int64_t> rowMajorStrides(const Shape& s);

/// True when transposing `shape` by `perm` (transpose's perm) keeps the order of the dims
/// longer than 1: it moves only unit dims, so it is a reshape of the same bytes.
bool movesOnlyUnitDims(const Shape& shape, const std::vector<int64_t>& perm);

/// True when transpose permutation `perm` keeps the last dim last, so that the transposed
/// tensor is a strided view whose rows stay contiguous (what a matmul reads in place).
bool keepsLastDim(const std::vector<int64_t>& perm);

/// The numpy broadcast of two shapes, or nullopt when they are incompatible.
std::optional<Shape> broadcastShapes(const Shape& a, const Shape& b);

}  // namespace weft::ir
