// Kernels of the contractions: matmul (batched, broadcasting, optional transposes) and the
// composite attention, computed plainly in double. f32 and f64 matmuls take a typed fast
// path with the same sums in the same order.
#include <cmath>

#include "backends/reference/fast_paths.h"
#include "backends/reference/kernels.h"
#include "backends/reference/tensor_util.h"

namespace weft::reference {

using ir::Shape;
using ir::TensorData;

namespace {

/// A stack of matrices stored row-major as [batch..., rows, cols], read as doubles, with the
/// option of seeing each matrix transposed.
struct MatrixStack {
  std::vector<double> values;
  Shape batch;
  int64_t storedRows, storedCols;
  bool transposed;

  MatrixStack(const TensorData& t, bool transpose)
      : values(toDoubles(t)),
        batch(t.type.shape.begin(), t.type.shape.end() - 2),
        storedRows(t.type.shape[t.type.shape.size() - 2]),
        storedCols(t.type.shape.back()),
        transposed(transpose) {}

  int64_t rows() const { return transposed ? storedCols : storedRows; }
  int64_t cols() const { return transposed ? storedRows : storedCols; }
  /// Element (r, c) of matrix `b` as seen (after the optional transpose).
  double at(int64_t b, int64_t r, int64_t c) const {
    int64_t within = transposed ? c * storedCols + r : r * storedCols + c;
    return values[static_cast<size_t>(b * storedRows * storedCols + within)];
  }
};

/// The matrices of `t` ([batch..., rows, cols]) as contiguous row-major T matrices, each
/// transposed when `transpose`: the tensor's own buffer, or `copy` when a transpose is needed.
template <class T>
const T* contiguousMatrices(const TensorData& t, bool transpose, std::vector<T>& copy) {
  if (!transpose) return t.as<T>();
  const Shape& s = t.type.shape;
  copy = transposeMatrices(t.as<T>(), extentProduct(s, 0, s.size() - 2), s[s.size() - 2], s.back());
  return copy.data();
}

/// The typed fast path of matmul: one row-major product per (broadcast) batch matrix.
template <class T>
TensorData fastMatmul(const KernelContext& ctx, bool transposeLhs, bool transposeRhs) {
  const TensorData &lhs = ctx.in(0), &rhs = ctx.in(1);
  std::vector<T> lhsCopy, rhsCopy;
  const T* a = contiguousMatrices(lhs, transposeLhs, lhsCopy);
  const T* b = contiguousMatrices(rhs, transposeRhs, rhsCopy);
  const Shape &ls = lhs.type.shape, &rs = rhs.type.shape, &os = ctx.outType().shape;
  int64_t m = os[os.size() - 2], n = os.back();
  int64_t k = transposeLhs ? ls[ls.size() - 2] : ls.back();
  Shape batch(os.begin(), os.end() - 2);
  std::vector<int64_t> lhsBatch = broadcastSourceIndex(Shape(ls.begin(), ls.end() - 2), batch);
  std::vector<int64_t> rhsBatch = broadcastSourceIndex(Shape(rs.begin(), rs.end() - 2), batch);
  TensorData out(ctx.outType());
  T* c = out.as<T>();
  for (size_t i = 0; i < lhsBatch.size(); ++i)
    multiplyMatrices(a + lhsBatch[i] * m * k, b + rhsBatch[i] * k * n, c + static_cast<int64_t>(i) * m * n, m, k, n);
  return out;
}

}  // namespace

TensorData kernelMatmul(const KernelContext& ctx) {
  bool transposeLhs = ctx.attr().i("transpose_lhs", 0) != 0;
  bool transposeRhs = ctx.attr().i("transpose_rhs", 0) != 0;
  TensorData fast;
  if (withFloatType(ctx.in(0).type.dtype, [&](auto tag) {
        fast = fastMatmul<decltype(tag)>(ctx, transposeLhs, transposeRhs);
      }))
    return fast;
  MatrixStack lhs(ctx.in(0), transposeLhs);
  MatrixStack rhs(ctx.in(1), transposeRhs);
  const Shape& outShape = ctx.outType().shape;
  Shape batch(outShape.begin(), outShape.end() - 2);
  std::vector<int64_t> lhsBatch = broadcastSourceIndex(lhs.batch, batch);
  std::vector<int64_t> rhsBatch = broadcastSourceIndex(rhs.batch, batch);
  int64_t m = lhs.rows(), k = lhs.cols(), n = rhs.cols();
  TensorData out(ctx.outType());
  for (size_t b = 0; b < lhsBatch.size(); ++b)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double sum = 0;
        for (int64_t p = 0; p < k; ++p) sum += lhs.at(lhsBatch[b], i, p) * rhs.at(rhsBatch[b], p, j);
        store(out, (static_cast<int64_t>(b) * m + i) * n + j, sum);
      }
  return out;
}

TensorData kernelAttention(const KernelContext& ctx) {
  // For each batch matrix: scores = q k^T * scale (j > i masked to -inf when causal),
  // weights = softmax over j, out = weights v.
  std::vector<double> q = toDoubles(ctx.in(0)), k = toDoubles(ctx.in(1)), v = toDoubles(ctx.in(2));
  const Shape &qs = ctx.in(0).type.shape, &vs = ctx.in(2).type.shape;
  int64_t tq = qs[qs.size() - 2], d = qs.back(), tk = vs[vs.size() - 2], dv = vs.back();
  int64_t batches = extentProduct(qs, 0, qs.size() - 2);
  bool causal = ctx.attr().i("causal") != 0;
  double scale = ctx.attr().f("scale");
  TensorData out(ctx.outType());
  std::vector<double> weight(static_cast<size_t>(tk));
  for (int64_t b = 0; b < batches; ++b)
    for (int64_t i = 0; i < tq; ++i) {
      double peak = -INFINITY;
      for (int64_t j = 0; j < tk; ++j) {
        double s = -INFINITY;
        if (!causal || j <= i) {
          s = 0;
          for (int64_t c = 0; c < d; ++c)
            s += q[static_cast<size_t>((b * tq + i) * d + c)] * k[static_cast<size_t>((b * tk + j) * d + c)];
          s *= scale;
        }
        weight[static_cast<size_t>(j)] = s;
        peak = std::fmax(peak, s);
      }
      double total = 0;
      for (double& w : weight) total += (w = std::exp(w - peak));
      for (int64_t c = 0; c < dv; ++c) {
        double acc = 0;
        for (int64_t j = 0; j < tk; ++j)
          acc += weight[static_cast<size_t>(j)] * v[static_cast<size_t>((b * tk + j) * dv + c)];
        store(out, (b * tq + i) * dv + c, acc / total);
      }
    }
  return out;
}

}  // namespace weft::reference
