#pragma once
/// Small helpers the reference kernels share: element access, index arithmetic over
/// row-major strides, broadcasting and reduction maps.
#include <cstdint>
#include <type_traits>
#include <vector>

#include "ir/tensor_data.h"
#include "ir/types.h"

namespace weft::reference {

/// True for the dtypes the kernels compute exactly in int64: i32, i64 and bool.
bool isIntegral(ir::DType t);

/// Element `i` as an int64 (floats truncate toward zero, saturating; NaN reads as 0).
int64_t getInt(const ir::TensorData& t, int64_t i);
/// Stores `v` at `i`: i32 keeps the low 32 bits (two's complement wrap), bool is `v != 0`,
/// floats are converted.
void setInt(ir::TensorData& t, int64_t i, int64_t v);
/// Stores `v` at `i`: floats round to the dtype; integers truncate toward zero and saturate
/// at the dtype's range (NaN stores 0); bool is `v != 0`.
void store(ir::TensorData& t, int64_t i, double v);

/// Element `i` read as T (double or int64_t).
template <class T>
T read(const ir::TensorData& t, int64_t i) {
  if constexpr (std::is_same_v<T, double>) return t.get(i);
  else return getInt(t, i);
}
/// Stores a T (double or int64_t) at `i`.
template <class T>
void write(ir::TensorData& t, int64_t i, T v) {
  if constexpr (std::is_same_v<T, double>) store(t, i, v);
  else setInt(t, i, v);
}

/// Every element converted to double, in row-major order.
std::vector<double> toDoubles(const ir::TensorData& t);
/// A tensor of `type` holding `values` (converted with `store`).
ir::TensorData fromDoubles(const ir::TensorType& type, const std::vector<double>& values);
/// Copies the bytes of element `si` of `src` to element `di` of `dst` (same dtype).
void copyElement(ir::TensorData& dst, int64_t di, const ir::TensorData& src, int64_t si);
/// Copies `count` consecutive elements (same dtype).
void copyElements(ir::TensorData& dst, int64_t di, const ir::TensorData& src, int64_t si, int64_t count);

/// Product of the extents `shape[begin, end)` (1 when empty).
int64_t extentProduct(const ir::Shape& shape, size_t begin, size_t end);

/// A row-major tensor seen as [outer, size, inner] around one axis.
struct AxisSplit {
  int64_t outer;  ///< product of the dimensions before the axis
  int64_t size;   ///< the axis' extent
  int64_t inner;  ///< product of the dimensions after the axis
};
/// Splits `shape` around `axis`.
AxisSplit splitAround(const ir::Shape& shape, int64_t axis);

/// For every element of `shape` in row-major order, `base + sum(index[d] * targetStride[d])`:
/// where that element lands in (or comes from) another buffer.
std::vector<int64_t> stridedIndex(const ir::Shape& shape, const std::vector<int64_t>& targetStride,
                                  int64_t base = 0);

/// For every element of shape `to` in row-major order, the row-major index of the element of
/// shape `from` it reads under numpy broadcasting (`from` must broadcast to `to`).
std::vector<int64_t> broadcastSourceIndex(const ir::Shape& from, const ir::Shape& to);

/// For every element of `shape` in row-major order, the row-major index of the element it
/// folds into when the dimensions `axes` are reduced away (keepdims does not change it).
std::vector<int64_t> reductionTargetIndex(const ir::Shape& shape, const std::vector<int64_t>& axes);

/// Walks the multi-indices of a shape in row-major order without allocating per step.
class IndexCounter {
 public:
  /// Starts at the all-zero index of `shape`.
  explicit IndexCounter(ir::Shape shape) : shape_(std::move(shape)), index_(shape_.size(), 0) {}
  /// The current multi-index.
  const std::vector<int64_t>& index() const { return index_; }
  /// Moves to the next multi-index; false after the last one.
  bool next();

 private:
  ir::Shape shape_;
  std::vector<int64_t> index_;
};

}  // namespace weft::reference
