// The shared pieces of the typed fast paths: the on/off switch, the matrix product that
// matmul, conv and conv_transpose use, and batched transposes.
#include "backends/reference/fast_paths.h"

#include <atomic>

namespace weft::reference {

namespace {

std::atomic<bool> fastPaths{true};

// The product is cut into tiles of kTileRows x kTileCols elements of c. A tile keeps its
// accumulators in registers while p runs over k: the fixed-size inner loops unroll and
// vectorize. Every accumulator starts at 0 and adds its products in order p = 0..k-1.
constexpr int64_t kTileRows = 4, kTileCols = 8;

// On x86-64 the tile is also compiled for AVX2 and the best version is picked at load time
// (no FMA: each product and sum is still rounded separately, so all versions agree).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(WEFT_NO_TARGET_CLONES)
#define WEFT_TILE_VERSIONS __attribute__((target_clones("avx2", "default")))
#else
#define WEFT_TILE_VERSIONS
#endif

/// One tile of kTileRows rows: c[r, j] = sum_p a[r, p] strip[p, j] for j < cols, where a
/// and c point at the tile's first row and element (row lengths k and n) and `strip` holds
/// the tile's columns of b as a contiguous [k, kTileCols] matrix of doubles.
template <class In, class Out>
WEFT_TILE_VERSIONS void multiplyTile(const In* a, const double* strip, Out* c, int64_t cols, int64_t k, int64_t n) {
  double acc[kTileRows][kTileCols] = {};
  for (int64_t p = 0; p < k; ++p) {
    const double* bRow = strip + p * kTileCols;
#pragma GCC unroll 4
    for (int64_t r = 0; r < kTileRows; ++r) {
      double aValue = static_cast<double>(a[r * k + p]);
      for (int64_t j = 0; j < kTileCols; ++j) acc[r][j] += aValue * bRow[j];
    }
  }
  for (int64_t r = 0; r < kTileRows; ++r)
    for (int64_t j = 0; j < cols; ++j) c[r * n + j] = static_cast<Out>(acc[r][j]);
}

/// The same for the last, partial tile of fewer than kTileRows rows, plainly.
template <class In, class Out>
void multiplyEdge(const In* a, const double* strip, Out* c, int64_t rows, int64_t cols, int64_t k, int64_t n) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) {
      double sum = 0;
      for (int64_t p = 0; p < k; ++p)
        sum += static_cast<double>(a[r * k + p]) * strip[p * kTileCols + j];
      c[r * n + j] = static_cast<Out>(sum);
    }
}

/// Rows [rowBegin, rowEnd) of c = a b, one strip of kTileCols columns at a time.
template <class In, class Out>
void multiplyRows(const In* a, const In* b, Out* c, int64_t rowBegin, int64_t rowEnd, int64_t k, int64_t n) {
  std::vector<double> strip(static_cast<size_t>(k * kTileCols));
  for (int64_t j = 0; j < n; j += kTileCols) {
    // Copying the strip (converted to double once) makes its reads sequential: b's rows may
    // be far apart. The zero padding of a last, narrower strip is multiplied, never stored.
    int64_t cols = std::min(kTileCols, n - j);
    for (int64_t p = 0; p < k; ++p)
      for (int64_t jj = 0; jj < kTileCols; ++jj)
        strip[static_cast<size_t>(p * kTileCols + jj)] = jj < cols ? static_cast<double>(b[p * n + j + jj]) : 0.0;
    for (int64_t i = rowBegin; i < rowEnd; i += kTileRows) {
      int64_t rows = std::min(kTileRows, rowEnd - i);
      if (rows == kTileRows) multiplyTile(a + i * k, strip.data(), c + i * n + j, cols, k, n);
      else multiplyEdge(a + i * k, strip.data(), c + i * n + j, rows, cols, k, n);
    }
  }
}

}  // namespace

bool fastPathsEnabled() { return fastPaths.load(std::memory_order_relaxed); }

void setFastPathsEnabled(bool enabled) { fastPaths.store(enabled, std::memory_order_relaxed); }

template <class In, class Out>
void multiplyMatrices(const In* a, const In* b, Out* c, int64_t m, int64_t k, int64_t n) {
  double work = static_cast<double>(m) * static_cast<double>(k) * static_cast<double>(n);
  parallelFor(m, work, [&](int64_t begin, int64_t end) { multiplyRows(a, b, c, begin, end, k, n); });
}

template <class T>
std::vector<T> transposeMatrices(const T* src, int64_t count, int64_t rows, int64_t cols) {
  std::vector<T> out(static_cast<size_t>(count * rows * cols));
  for (int64_t m = 0; m < count; ++m) {
    const T* from = src + m * rows * cols;
    T* to = out.data() + m * rows * cols;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) to[c * rows + r] = from[r * cols + c];
  }
  return out;
}

template void multiplyMatrices(const float*, const float*, float*, int64_t, int64_t, int64_t);
template void multiplyMatrices(const float*, const float*, double*, int64_t, int64_t, int64_t);
template void multiplyMatrices(const double*, const double*, double*, int64_t, int64_t, int64_t);
template std::vector<float> transposeMatrices(const float*, int64_t, int64_t, int64_t);
template std::vector<double> transposeMatrices(const double*, int64_t, int64_t, int64_t);

}  // namespace weft::reference
