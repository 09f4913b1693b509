#pragma once
/// A dense, row-major host tensor: the value of constants and what the interpreter computes.
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "ir/types.h"

namespace weft::ir {

/// A dense row-major buffer with its type. Elements can be read and written as double
/// whatever the dtype, which is what readable reference code wants.
struct TensorData {
  TensorType type;
  std::vector<uint8_t> bytes;

  TensorData() = default;
  /// A zero-filled tensor of type `t`.
  explicit TensorData(TensorType t) : type(std::move(t)), bytes(type.byteSize(), 0) {}

  /// Number of elements.
  int64_t numel() const { return type.numel(); }
  /// Typed pointer to the elements; T must match the dtype's storage.
  template <class T> T* as() { return reinterpret_cast<T*>(bytes.data()); }
  /// Typed pointer to the elements; T must match the dtype's storage.
  template <class T> const T* as() const { return reinterpret_cast<const T*>(bytes.data()); }
  /// Element i converted to double.
  double get(int64_t i) const;
  /// Stores v (converted to the dtype, rounded for bf16, truncated toward zero for ints) at i.
  void set(int64_t i, double v);
  /// Bitwise equality of type and contents.
  bool operator==(const TensorData& o) const { return type == o.type && bytes == o.bytes; }
};

/// Shared immutable tensor data, as held by constant nodes.
using TensorDataPtr = std::shared_ptr<const TensorData>;

/// Rounds a float to bf16 (round to nearest even) and returns its bits.
uint16_t floatToBf16(float f);
/// Widens bf16 bits to float.
float bf16ToFloat(uint16_t b);

}  // namespace weft::ir
