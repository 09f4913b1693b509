#include "backends/reference/tensor_util.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace weft::reference {

using ir::DType;
using ir::Shape;
using ir::TensorData;

bool isIntegral(DType t) { return t == DType::i32 || t == DType::i64 || t == DType::boolean; }

/// Truncates toward zero and saturates to [lo, hi]; NaN becomes 0.
static int64_t truncateSaturating(double v, int64_t lo, int64_t hi) {
  if (std::isnan(v)) return 0;
  // 2^63 is exactly representable; anything at or beyond it saturates.
  if (v >= 9223372036854775808.0) return hi;
  if (v < -9223372036854775808.0) return lo;
  int64_t r = static_cast<int64_t>(std::trunc(v));
  return r < lo ? lo : (r > hi ? hi : r);
}

int64_t getInt(const TensorData& t, int64_t i) {
  switch (t.type.dtype) {
    case DType::i32: return t.as<int32_t>()[i];
    case DType::i64: return t.as<int64_t>()[i];
    case DType::boolean: return t.as<uint8_t>()[i] ? 1 : 0;
    default:
      return truncateSaturating(t.get(i), std::numeric_limits<int64_t>::min(),
                                std::numeric_limits<int64_t>::max());
  }
}

void setInt(TensorData& t, int64_t i, int64_t v) {
  switch (t.type.dtype) {
    case DType::i32: t.as<int32_t>()[i] = static_cast<int32_t>(static_cast<uint32_t>(v)); break;
    case DType::i64: t.as<int64_t>()[i] = v; break;
    case DType::boolean: t.as<uint8_t>()[i] = v != 0; break;
    default: t.set(i, static_cast<double>(v));
  }
}

void store(TensorData& t, int64_t i, double v) {
  switch (t.type.dtype) {
    case DType::i32:
      t.as<int32_t>()[i] = static_cast<int32_t>(truncateSaturating(
          v, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()));
      break;
    case DType::i64:
      t.as<int64_t>()[i] = truncateSaturating(v, std::numeric_limits<int64_t>::min(),
                                              std::numeric_limits<int64_t>::max());
      break;
    default: t.set(i, v);  // floats round, bool is v != 0
  }
}

std::vector<double> toDoubles(const TensorData& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = t.get(i);
  return v;
}

TensorData fromDoubles(const ir::TensorType& type, const std::vector<double>& values) {
  TensorData t(type);
  for (int64_t i = 0; i < t.numel(); ++i) store(t, i, values[static_cast<size_t>(i)]);
  return t;
}

void copyElement(TensorData& dst, int64_t di, const TensorData& src, int64_t si) {
  copyElements(dst, di, src, si, 1);
}

void copyElements(TensorData& dst, int64_t di, const TensorData& src, int64_t si, int64_t count) {
  if (count <= 0) return;
  size_t width = ir::dtypeSize(src.type.dtype);
  std::memcpy(dst.bytes.data() + static_cast<size_t>(di) * width,
              src.bytes.data() + static_cast<size_t>(si) * width, static_cast<size_t>(count) * width);
}

int64_t extentProduct(const Shape& shape, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t d = begin; d < end; ++d) p *= shape[d];
  return p;
}

AxisSplit splitAround(const Shape& shape, int64_t axis) {
  size_t a = static_cast<size_t>(axis);
  return {extentProduct(shape, 0, a), shape[a], extentProduct(shape, a + 1, shape.size())};
}

bool IndexCounter::next() {
  for (size_t d = shape_.size(); d-- > 0;) {
    if (++index_[d] < shape_[d]) return true;
    index_[d] = 0;
  }
  return false;
}

std::vector<int64_t> stridedIndex(const Shape& shape, const std::vector<int64_t>& targetStride, int64_t base) {
  std::vector<int64_t> map(static_cast<size_t>(ir::numElements(shape)));
  if (map.empty()) return map;
  IndexCounter counter(shape);
  size_t i = 0;
  do {
    int64_t offset = base;
    for (size_t d = 0; d < shape.size(); ++d) offset += counter.index()[d] * targetStride[d];
    map[i++] = offset;
  } while (counter.next());
  return map;
}

std::vector<int64_t> broadcastSourceIndex(const Shape& from, const Shape& to) {
  std::vector<int64_t> fromStrides = ir::rowMajorStrides(from);
  std::vector<int64_t> stride(to.size(), 0);
  size_t lead = to.size() - from.size();
  for (size_t d = 0; d < from.size(); ++d)
    stride[lead + d] = from[d] == 1 ? 0 : fromStrides[d];
  return stridedIndex(to, stride);
}

std::vector<int64_t> reductionTargetIndex(const Shape& shape, const std::vector<int64_t>& axes) {
  std::vector<bool> reduced(shape.size(), false);
  for (int64_t a : axes) reduced[static_cast<size_t>(a)] = true;
  Shape kept(shape);
  for (size_t d = 0; d < shape.size(); ++d)
    if (reduced[d]) kept[d] = 1;
  std::vector<int64_t> keptStrides = ir::rowMajorStrides(kept);
  for (size_t d = 0; d < shape.size(); ++d)
    if (reduced[d]) keptStrides[d] = 0;
  return stridedIndex(shape, keptStrides);
}

}  // namespace weft::reference
