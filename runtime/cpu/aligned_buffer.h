#pragma once
/// A heap buffer aligned for vector loads (the arena, the state block).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace weft::cpu {

/// Owns `size` bytes aligned to 64; movable, not copyable.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  /// Allocates `size` bytes (none for 0), zeroed when `zeroed` (otherwise their pages are
  /// only touched when first written: a large arena costs nothing until it is used).
  explicit AlignedBuffer(int64_t size, bool zeroed = true) : size_(size) {
    if (size <= 0) return;
    auto rounded = static_cast<size_t>((size + 63) / 64 * 64);
    data_.reset(static_cast<uint8_t*>(std::aligned_alloc(64, rounded)));
    if (!data_) throw std::bad_alloc();
    if (zeroed) std::memset(data_.get(), 0, rounded);
  }
  /// The first byte (null when empty).
  uint8_t* data() const { return data_.get(); }
  /// Size in bytes.
  int64_t size() const { return size_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> data_;
  int64_t size_ = 0;
};

}  // namespace weft::cpu
