// The register kernel of the native Winograd steps (winograd_kernels.h, multiplySomeRows):
// rows of a times a panel of b, in AVX2 (16 columns, up to 6 rows) or AVX-512 (16 or 32
// columns, up to 12 rows) vectors.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include "runtime/cpu/host_isa.h"
#include "runtime/cpu/winograd_kernels.h"

namespace weft::cpu::winograd {
namespace {

using Kernel = void (*)(const float*, int64_t, int64_t, const float*, int64_t, int64_t, float*, int64_t);

/// c[Rows x 16] (+)= a[Rows x depth] * b[depth x 16] in 256-bit vectors.
template <int Rows, bool Accumulate>
__attribute__((target("avx2,fma"))) void multiplyRows(const float* a, int64_t rowStride, int64_t depthStride,
                                                      const float* b, int64_t ldb, int64_t depth, float* c,
                                                      int64_t ldc) {
  __m256 acc[Rows][2];
#pragma GCC unroll 6
  for (int r = 0; r < Rows; ++r) {
    acc[r][0] = Accumulate ? _mm256_loadu_ps(c + r * ldc) : _mm256_setzero_ps();
    acc[r][1] = Accumulate ? _mm256_loadu_ps(c + r * ldc + 8) : _mm256_setzero_ps();
  }
  for (int64_t i = 0; i < depth; ++i, a += depthStride, b += ldb) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
    for (int r = 0; r < Rows; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * rowStride);
      acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < Rows; ++r) {
    _mm256_storeu_ps(c + r * ldc, acc[r][0]);
    _mm256_storeu_ps(c + r * ldc + 8, acc[r][1]);
  }
}

/// c[Rows x 16 Vectors] (+)= a * b in 512-bit vectors: on Intel's Xeons two 512-bit FMA pipes
/// do twice the work of AVX2's, and 32 registers hold twelve rows of two vectors' sums. On one
/// core of the Xeon of stop 42, from L1: 188-200 GFLOP/s for depths 32-256 (its peak ~198);
/// with the weight gradients' strided rows of a over a 1.3 MiB working set (L2), 155.
template <int Rows, int Vectors, bool Accumulate>
__attribute__((target("avx512f"))) void multiplyRows512(const float* a, int64_t rowStride, int64_t depthStride,
                                                        const float* b, int64_t ldb, int64_t depth, float* c,
                                                        int64_t ldc) {
  __m512 acc[Rows][Vectors];
#pragma GCC unroll 12
  for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 2
    for (int j = 0; j < Vectors; ++j)
      acc[r][j] = Accumulate ? _mm512_loadu_ps(c + r * ldc + 16 * j) : _mm512_setzero_ps();
  for (int64_t i = 0; i < depth; ++i, a += depthStride, b += ldb) {
    __m512 bv[Vectors];
#pragma GCC unroll 2
    for (int j = 0; j < Vectors; ++j) bv[j] = _mm512_loadu_ps(b + 16 * j);
#pragma GCC unroll 12
    for (int r = 0; r < Rows; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * rowStride]);
#pragma GCC unroll 2
      for (int j = 0; j < Vectors; ++j) acc[r][j] = _mm512_fmadd_ps(av, bv[j], acc[r][j]);
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 2
    for (int j = 0; j < Vectors; ++j) _mm512_storeu_ps(c + r * ldc + 16 * j, acc[r][j]);
}

/// multiplyRows512<1..12, Vectors, Accumulate>, indexed by rows - 1.
template <int Vectors, bool Accumulate, int... Rows>
constexpr std::array<Kernel, sizeof...(Rows)> wideKernels(std::integer_sequence<int, Rows...>) {
  return {&multiplyRows512<Rows + 1, Vectors, Accumulate>...};
}

}  // namespace

template <bool Accumulate>
void multiplySomeRows(int64_t rows, int64_t columns, const float* a, int64_t rowStride, int64_t depthStride,
                      const float* b, int64_t ldb, int64_t depth, float* c, int64_t ldc) {
  if (hostHasAvx512()) {
    static constexpr auto one = wideKernels<1, Accumulate>(std::make_integer_sequence<int, 12>{});
    static constexpr auto two = wideKernels<2, Accumulate>(std::make_integer_sequence<int, 12>{});
    const size_t row = static_cast<size_t>(std::clamp<int64_t>(rows, 1, 12) - 1);
    (columns > 16 ? two : one)[row](a, rowStride, depthStride, b, ldb, depth, c, ldc);
    return;
  }
  static constexpr Kernel kernels[6] = {&multiplyRows<1, Accumulate>, &multiplyRows<2, Accumulate>,
                                        &multiplyRows<3, Accumulate>, &multiplyRows<4, Accumulate>,
                                        &multiplyRows<5, Accumulate>, &multiplyRows<6, Accumulate>};
  const int64_t row = std::clamp<int64_t>(rows, 1, 6) - 1;
  for (int64_t j = 0; j < columns; j += 16) kernels[row](a, rowStride, depthStride, b + j, ldb, depth, c + j, ldc);
}

template void multiplySomeRows<false>(int64_t, int64_t, const float*, int64_t, int64_t, const float*, int64_t, int64_t,
                                      float*, int64_t);
template void multiplySomeRows<true>(int64_t, int64_t, const float*, int64_t, int64_t, const float*, int64_t, int64_t,
                                     float*, int64_t);

}  // namespace weft::cpu::winograd
