#pragma once
/// The rule weft's native pooling kernels find a window's maximum by, the reference's for
/// max_pool and max_pool_grad: taps are visited in window order and a tap takes the window
/// over when the maximum so far is no NaN and the tap is a NaN or larger, so that ties go to
/// the first largest and a NaN wins its window (PyTorch's max pools propagate NaN too; the
/// reference lets a later NaN take over an earlier one: the same value, another payload).
/// vmaxps alone would drop a NaN met before a number.
#include <immintrin.h>

#include <cstdint>

namespace weft::cpu {

/// True when tap value `v` takes a window over from maximum-so-far `best`.
inline bool takesWindow(float best, float v) { return best == best && (v != v || v > best); }

/// takesWindow on sixteen lanes.
__attribute__((target("avx512f"))) inline __mmask16 takesWindow16(__m512 best, __m512 v) {
  return static_cast<__mmask16>(_mm512_cmp_ps_mask(best, best, _CMP_ORD_Q) &
                                (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ)));
}

/// takesWindow on eight lanes, as all-ones lanes.
__attribute__((target("avx2"))) inline __m256 takesWindow8(__m256 best, __m256 v) {
  return _mm256_and_ps(_mm256_cmp_ps(best, best, _CMP_ORD_Q),
                       _mm256_or_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q), _mm256_cmp_ps(v, best, _CMP_GT_OQ)));
}

/// The new maximum of sixteen windows after tap `v`: the value takesWindow16 picks, in
/// three instructions instead of six (vmaxps returns its second source, `best`, on ties and
/// when either is a NaN; a NaN `v` is then blended in). The conv-pool step spent 11% more
/// time with the six (lenet: 0.176 -> 0.198 ms). The max goes through an explicit source
/// (a full mask): GCC 12 warns that the one _mm512_max_ps passes may be used uninitialized.
__attribute__((target("avx512f"))) inline __m512 windowMax16(__m512 best, __m512 v) {
  const __m512 larger = _mm512_mask_max_ps(v, static_cast<__mmask16>(0xFFFF), v, best);
  return _mm512_mask_mov_ps(larger, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v);
}

/// maximum(v, 0) per lane as the reference computes it: a NaN stays, -0 becomes +0 (vmaxps
/// returns its second source when the two are equal or either is a NaN).
__attribute__((target("avx512f"))) inline __m512 relu16(__m512 v) {
  return _mm512_mask_max_ps(v, _mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v, _mm512_setzero_ps());
}

/// maximum(v, 0) per lane as the reference computes it, on eight lanes: a NaN stays, -0
/// becomes +0.
__attribute__((target("avx2"))) inline __m256 relu8(__m256 v) {
  return _mm256_blendv_ps(v, _mm256_max_ps(v, _mm256_setzero_ps()), _mm256_cmp_ps(v, v, _CMP_ORD_Q));
}

/// The first `count` of sixteen lanes (none for count <= 0): a row's or a channel run's last,
/// partial vector.
inline __mmask16 firstLanes(int64_t count) {
  return count >= 16 ? 0xFFFF : count <= 0 ? 0 : static_cast<__mmask16>((1u << count) - 1);
}

}  // namespace weft::cpu
