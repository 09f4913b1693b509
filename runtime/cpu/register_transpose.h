#pragma once
/// An 8 x 8 block of floats transposed in AVX2 registers, for the steps that pack or move
/// data across its rows (the triangular step's transposed B, the native transpose).
#include <immintrin.h>

namespace weft::cpu {

/// `rows[i]` holds row i of an 8 x 8 block; on return `rows[j]` holds its column j.
[[gnu::target("avx2")]] inline void transpose8(__m256 rows[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {  // pairs of 32 bits: (r_i, r_i+1) of columns 0 1 | 4 5, 2 3 | 6 7
    t[i] = _mm256_unpacklo_ps(rows[i], rows[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(rows[i], rows[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {  // pairs of 64 bits: columns j and j + 4 of four rows
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int j = 0; j < 4; ++j) {  // 128-bit halves: column j from rows 0-3 and 4-7, then column j + 4
    rows[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
    rows[j + 4] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
  }
}

}  // namespace weft::cpu
