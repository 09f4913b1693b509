#pragma once
/// Machinery of the reference kernels' typed fast paths. The generic kernels read and write
/// every element through TensorData::get/set (a dtype switch per element, math in double);
/// for f32 and f64 the hot kernels instead loop over typed buffers with the same math in
/// double, so that the compiler can vectorize. The fast paths visit the elements in the same
/// order as the generic ones and so give the same results (see each kernel for exceptions).
#include <algorithm>
#include <array>
#include <cstdint>
#include <exception>
#include <thread>
#include <vector>

#include "ir/tensor_data.h"
#include "ir/types.h"

namespace weft::reference {

struct KernelContext;

/// True unless a test switched the fast paths off (they are on by default).
bool fastPathsEnabled();
/// Switches the typed fast paths on or off (process-wide; for tests that compare them with
/// the generic paths). Not thread-safe with concurrent runs.
void setFastPathsEnabled(bool enabled);

/// When the fast paths are enabled and `dtype` is f32 or f64, calls `f(T{})` with T = float
/// or double and returns true; returns false otherwise (the caller takes its generic path).
template <class F>
bool withFloatType(ir::DType dtype, F&& f) {
  if (!fastPathsEnabled()) return false;
  if (dtype == ir::DType::f32) f(float{});
  else if (dtype == ir::DType::f64) f(double{});
  else return false;
  return true;
}

namespace detail {
/// True on a thread that is running a parallelFor body (nested loops then stay serial).
inline thread_local bool insideParallelFor = false;
}  // namespace detail

/// The typed fast path of an elementwise map: when `x` is f32 or f64 (and `out` has the same
/// type), sets out[i] = f(x[i]) with f taking and returning double, and returns true.
template <class F>
bool mapFloats(const ir::TensorData& x, ir::TensorData& out, F f) {
  return withFloatType(x.type.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* in = x.as<T>();
    T* result = out.as<T>();
    int64_t count = out.numel();
    for (int64_t i = 0; i < count; ++i) result[i] = static_cast<T>(f(static_cast<double>(in[i])));
  });
}

/// Calls `body(begin, end)` over [0, count), split across two threads when `work` (a rough
/// operation count) is large enough to pay for them. Each index must be independent of the
/// others, so the split never changes a result. An exception of either half is rethrown.
template <class Body>
void parallelFor(int64_t count, double work, Body body) {
  constexpr double kMinWorkToSplit = 1e7;
  if (count < 2 || work < kMinWorkToSplit || detail::insideParallelFor || std::thread::hardware_concurrency() < 2) {
    body(int64_t{0}, count);
    return;
  }
  std::exception_ptr failures[2];
  auto half = [&](int which, int64_t begin, int64_t end) {
    detail::insideParallelFor = true;
    try {
      body(begin, end);
    } catch (...) {
      failures[which] = std::current_exception();
    }
    detail::insideParallelFor = false;
  };
  std::thread helper(half, 0, int64_t{0}, count / 2);
  half(1, count / 2, count);
  helper.join();
  for (const auto& failure : failures)
    if (failure) std::rethrow_exception(failure);
}

/// An elementwise loop over `shape` whose N operands broadcast to it (numpy rules), cut into
/// "rows": runs of consecutive output elements along which each operand index advances by a
/// constant step, 0 (broadcast) or 1. Adjacent dimensions that stay contiguous for every
/// operand are merged first, so a same-shape or trailing-broadcast operand gives few, long rows.
template <size_t N>
class BroadcastWalk {
 public:
  /// Plans the walk of `shape` with operands of the given shapes.
  BroadcastWalk(const ir::Shape& shape, const std::array<ir::Shape, N>& operands);

  /// Elements per row.
  int64_t rowLength() const { return extent_.back(); }
  /// How far operand `i`'s index moves per element of a row: 0 or 1.
  int64_t step(size_t i) const { return stride_.back()[i]; }
  /// Calls `row(outFirst, operandFirst)` for every row in order: the row's first output
  /// index and the matching index of each operand.
  template <class Row>
  void forEachRow(Row row) const;

 private:
  int64_t numel_;
  std::vector<int64_t> extent_;                 // merged dimensions; the last one is the row
  std::vector<std::array<int64_t, N>> stride_;  // per merged dimension, each operand's stride
};

/// The typed f32/f64 fast path of conv_weight_grad (kernelConvWeightGrad calls it first):
/// stores the result in `out` and returns true, or returns false for other dtypes. Results
/// equal the generic kernel's, up to the zero products of padded positions.
bool tryFastConvWeightGrad(const KernelContext& ctx, ir::TensorData& out);
/// The typed f32/f64 fast path of max_pool_grad, as tryFastConvWeightGrad (same results).
bool tryFastMaxPoolGrad(const KernelContext& ctx, ir::TensorData& out);

/// c = a b for row-major a [m, k], b [k, n], c [m, n], each element summed in double over
/// p = 0..k-1 in order (so exactly as a plain triple loop in double), then converted to Out.
/// Rows are split across two threads when the product is large.
template <class In, class Out>
void multiplyMatrices(const In* a, const In* b, Out* c, int64_t m, int64_t k, int64_t n);

/// The `count` row-major [rows, cols] matrices at `src`, each transposed to [cols, rows].
template <class T>
std::vector<T> transposeMatrices(const T* src, int64_t count, int64_t rows, int64_t cols);

// ---- template definitions -----------------------------------------------------------------

template <size_t N>
BroadcastWalk<N>::BroadcastWalk(const ir::Shape& shape, const std::array<ir::Shape, N>& operands)
    : numel_(ir::numElements(shape)) {
  // Each operand's stride along each dimension of `shape` (0 where it broadcasts).
  std::vector<std::array<int64_t, N>> strides(shape.size());
  for (size_t i = 0; i < N; ++i) {
    const ir::Shape& s = operands[i];
    std::vector<int64_t> own = ir::rowMajorStrides(s);
    size_t lead = shape.size() - s.size();
    for (size_t d = 0; d < shape.size(); ++d)
      strides[d][i] = (d < lead || s[d - lead] == 1) ? 0 : own[d - lead];
  }
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;  // contributes nothing to any index
    bool mergesWithPrevious = !extent_.empty();
    for (size_t i = 0; i < N && mergesWithPrevious; ++i)
      mergesWithPrevious = stride_.back()[i] == strides[d][i] * shape[d];
    if (mergesWithPrevious) {
      extent_.back() *= shape[d];
      stride_.back() = strides[d];
    } else {
      extent_.push_back(shape[d]);
      stride_.push_back(strides[d]);
    }
  }
  if (extent_.empty()) {  // a scalar, or all extents 1: one row of one element
    extent_.push_back(1);
    stride_.push_back({});
  }
}

template <size_t N>
template <class Row>
void BroadcastWalk<N>::forEachRow(Row row) const {
  if (numel_ == 0) return;
  size_t outer = extent_.size() - 1;
  std::vector<int64_t> index(outer, 0);
  std::array<int64_t, N> at{};
  int64_t rows = numel_ / rowLength();
  for (int64_t r = 0; r < rows; ++r) {
    row(r * rowLength(), at);
    for (size_t d = outer; d-- > 0;) {  // advance the outer multi-index like an odometer
      for (size_t i = 0; i < N; ++i) at[i] += stride_[d][i];
      if (++index[d] < extent_[d]) break;
      for (size_t i = 0; i < N; ++i) at[i] -= stride_[d][i] * extent_[d];
      index[d] = 0;
    }
  }
}

}  // namespace weft::reference
