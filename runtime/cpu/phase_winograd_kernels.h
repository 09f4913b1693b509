#pragma once
/// F(7x7, 2x2)'s transforms on eight channels at a time (AVX2), for the phase Winograd steps
/// (native_phase_winograd.cpp): a 4x4, stride-2 convolution splits into 2x2, stride-1 ones
/// (one per phase of its input or result), each computed 7x7 results at a time from an 8x8
/// patch with 64 products per channel pair instead of 196. The points are 0, 1, -1, 2, -2,
/// 1/2, -1/2 and infinity (as NNPACK's F(6x6, 3x3)); with a 2x2 kernel g and a patch d:
///   forward   y = A^T [(G g G^T) . (B^T d B)] A      (7x7 results)
///   gradient  dg = G^T [(A e A^T) . (B^T d B)] G     (e: the tile's 7x7 result gradients).
/// The matrices (B^T 8x8, G 8x2, A^T 7x8) were derived by Toom-Cook in exact rationals.
#include <immintrin.h>

#include <cstdint>

namespace weft::cpu::winograd7 {

inline constexpr int64_t kPoints = 64;  ///< the 8x8 transformed points of a tile
inline constexpr int64_t kTile = 7;     ///< results per tile along each axis

#define WEFT_WINOGRAD7_INLINE __attribute__((target("avx2,fma"), always_inline)) inline

/// Shorthand for a broadcast constant.
WEFT_WINOGRAD7_INLINE __m256 splat(float f) { return _mm256_set1_ps(f); }

/// r = B^T d for eight vectors d (one row or column of a patch). Rows 1-6 pair up as an even
/// part plus and minus an odd part.
WEFT_WINOGRAD7_INLINE void inputTransform(const __m256 (&d)[8], __m256 (&r)[8]) {
  r[0] = _mm256_fmadd_ps(splat(5.25f), _mm256_sub_ps(d[4], d[2]), _mm256_sub_ps(d[0], d[6]));
  r[7] = _mm256_fmadd_ps(splat(5.25f), _mm256_sub_ps(d[3], d[5]), _mm256_sub_ps(d[7], d[1]));
  // (1, 1) and (1, -1): d2 - 4.25 d4 + d6 +- (d1 - 4.25 d3 + d5)
  __m256 even = _mm256_fnmadd_ps(splat(4.25f), d[4], _mm256_add_ps(d[2], d[6]));
  __m256 odd = _mm256_fnmadd_ps(splat(4.25f), d[3], _mm256_add_ps(d[1], d[5]));
  r[1] = _mm256_add_ps(even, odd);
  r[2] = _mm256_sub_ps(even, odd);
  // (2, -2) halves: 0.25 d2 - 1.25 d4 + d6 +- (0.5 d1 - 2.5 d3 + 2 d5)
  even = _mm256_fmadd_ps(splat(0.25f), d[2], _mm256_fnmadd_ps(splat(1.25f), d[4], d[6]));
  odd = _mm256_fmadd_ps(splat(0.5f), d[1], _mm256_fmsub_ps(splat(2.0f), d[5], _mm256_mul_ps(splat(2.5f), d[3])));
  r[3] = _mm256_add_ps(even, odd);
  r[4] = _mm256_sub_ps(even, odd);
  // (1/2, -1/2) doubled: 4 d2 - 5 d4 + d6 +- (2 d1 - 2.5 d3 + 0.5 d5)
  even = _mm256_fmadd_ps(splat(4.0f), d[2], _mm256_fnmadd_ps(splat(5.0f), d[4], d[6]));
  odd = _mm256_fmadd_ps(splat(2.0f), d[1], _mm256_fmsub_ps(splat(0.5f), d[5], _mm256_mul_ps(splat(2.5f), d[3])));
  r[5] = _mm256_add_ps(even, odd);
  r[6] = _mm256_sub_ps(even, odd);
}

/// r = A^T m for eight vectors m (one row or column of a tile's products).
WEFT_WINOGRAD7_INLINE void outputTransform(const __m256 (&m)[8], __m256 (&r)[7]) {
  const __m256 s1 = _mm256_add_ps(m[1], m[2]), d1 = _mm256_sub_ps(m[1], m[2]);
  const __m256 s2 = _mm256_add_ps(m[3], m[4]), d2 = _mm256_sub_ps(m[3], m[4]);
  const __m256 s3 = _mm256_add_ps(m[5], m[6]), d3 = _mm256_sub_ps(m[5], m[6]);
  r[0] = _mm256_add_ps(_mm256_add_ps(m[0], s1), _mm256_add_ps(s2, s3));
  r[1] = _mm256_fmadd_ps(splat(2.0f), d2, _mm256_fmadd_ps(splat(0.5f), d3, d1));
  r[2] = _mm256_fmadd_ps(splat(4.0f), s2, _mm256_fmadd_ps(splat(0.25f), s3, s1));
  r[3] = _mm256_fmadd_ps(splat(8.0f), d2, _mm256_fmadd_ps(splat(0.125f), d3, d1));
  r[4] = _mm256_fmadd_ps(splat(16.0f), s2, _mm256_fmadd_ps(splat(1.0f / 16), s3, s1));
  r[5] = _mm256_fmadd_ps(splat(32.0f), d2, _mm256_fmadd_ps(splat(1.0f / 32), d3, d1));
  r[6] = _mm256_add_ps(_mm256_fmadd_ps(splat(64.0f), s2, _mm256_fmadd_ps(splat(1.0f / 64), s3, s1)), m[7]);
}

/// r = G g for two vectors g (one row or column of a 2x2 kernel).
WEFT_WINOGRAD7_INLINE void weightTransform(const __m256 (&g)[2], __m256 (&r)[8]) {
  const __m256 sum = _mm256_add_ps(g[0], g[1]), diff = _mm256_sub_ps(g[0], g[1]);
  const __m256 doubled = _mm256_add_ps(g[0], g[0]);
  r[0] = g[0];
  r[1] = _mm256_mul_ps(splat(-2.0f / 9), sum);
  r[2] = _mm256_mul_ps(splat(-2.0f / 9), diff);
  r[3] = _mm256_mul_ps(splat(1.0f / 90), _mm256_fmadd_ps(splat(2.0f), g[1], g[0]));
  r[4] = _mm256_mul_ps(splat(1.0f / 90), _mm256_fnmadd_ps(splat(2.0f), g[1], g[0]));
  r[5] = _mm256_mul_ps(splat(16.0f / 45), _mm256_add_ps(doubled, g[1]));
  r[6] = _mm256_mul_ps(splat(16.0f / 45), _mm256_sub_ps(doubled, g[1]));
  r[7] = g[1];
}

/// r = A e for seven vectors e (one row or column of a tile's result gradients).
WEFT_WINOGRAD7_INLINE void gradientTransform(const __m256 (&e)[7], __m256 (&r)[8]) {
  const __m256 even1 = _mm256_add_ps(_mm256_add_ps(e[0], e[2]), _mm256_add_ps(e[4], e[6]));
  const __m256 odd1 = _mm256_add_ps(_mm256_add_ps(e[1], e[3]), e[5]);
  const __m256 even2 = _mm256_fmadd_ps(splat(64.0f), e[6], _mm256_fmadd_ps(splat(16.0f), e[4],
                                                                           _mm256_fmadd_ps(splat(4.0f), e[2], e[0])));
  const __m256 odd2 = _mm256_fmadd_ps(splat(32.0f), e[5], _mm256_fmadd_ps(splat(8.0f), e[3],
                                                                          _mm256_mul_ps(splat(2.0f), e[1])));
  const __m256 even3 = _mm256_fmadd_ps(splat(1.0f / 64), e[6], _mm256_fmadd_ps(splat(1.0f / 16), e[4],
                                                                               _mm256_fmadd_ps(splat(0.25f), e[2], e[0])));
  const __m256 odd3 = _mm256_fmadd_ps(splat(1.0f / 32), e[5], _mm256_fmadd_ps(splat(0.125f), e[3],
                                                                              _mm256_mul_ps(splat(0.5f), e[1])));
  r[0] = e[0];
  r[1] = _mm256_add_ps(even1, odd1);
  r[2] = _mm256_sub_ps(even1, odd1);
  r[3] = _mm256_add_ps(even2, odd2);
  r[4] = _mm256_sub_ps(even2, odd2);
  r[5] = _mm256_add_ps(even3, odd3);
  r[6] = _mm256_sub_ps(even3, odd3);
  r[7] = e[6];
}

/// r = G^T w for eight vectors w (one row or column of a kernel's transformed gradient).
WEFT_WINOGRAD7_INLINE void kernelTransform(const __m256 (&w)[8], __m256 (&r)[2]) {
  const __m256 s1 = _mm256_add_ps(w[1], w[2]), d1 = _mm256_sub_ps(w[1], w[2]);
  const __m256 s2 = _mm256_add_ps(w[3], w[4]), d2 = _mm256_sub_ps(w[3], w[4]);
  const __m256 s3 = _mm256_add_ps(w[5], w[6]), d3 = _mm256_sub_ps(w[5], w[6]);
  // z0 = w0 - 2/9 s1 + s2/90 + 32/45 s3;  z1 = -2/9 d1 + d2/45 + 16/45 d3 + w7
  r[0] = _mm256_fmadd_ps(splat(-2.0f / 9), s1,
                         _mm256_fmadd_ps(splat(1.0f / 90), s2, _mm256_fmadd_ps(splat(32.0f / 45), s3, w[0])));
  r[1] = _mm256_fmadd_ps(splat(-2.0f / 9), d1,
                         _mm256_fmadd_ps(splat(1.0f / 45), d2, _mm256_fmadd_ps(splat(16.0f / 45), d3, w[7])));
}

}  // namespace weft::cpu::winograd7
