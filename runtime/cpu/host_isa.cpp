// The measured half of host_isa.h: whether 512-bit FMAs run at the rate of 256-bit ones.
#include "runtime/cpu/host_isa.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace weft::cpu {
namespace {

constexpr int kChains = 12;  // independent FMAs in flight: past latency x pipes on every x86 CPU
constexpr int64_t kRounds = 16384;  // ~30 us a try: past the power-up of idle 512-bit units

using Clock = std::chrono::steady_clock;

/// Seconds for kRounds rounds of kChains dependent 256-bit FMA chains.
[[gnu::target("avx2,fma"), gnu::noinline]] double narrowRoundsSeconds() {
  __m256 acc[kChains];
  for (int j = 0; j < kChains; ++j) acc[j] = _mm256_set1_ps(static_cast<float>(j));
  const __m256 scale = _mm256_set1_ps(0.999f), shift = _mm256_set1_ps(0.001f);
  const Clock::time_point start = Clock::now();
  for (int64_t r = 0; r < kRounds; ++r)
#pragma GCC unroll 12
    for (int j = 0; j < kChains; ++j) acc[j] = _mm256_fmadd_ps(acc[j], scale, shift);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  __m256 sum = acc[0];
  for (int j = 1; j < kChains; ++j) sum = _mm256_add_ps(sum, acc[j]);
  volatile float sink = _mm256_cvtss_f32(sum);  // the chains' results are used
  (void)sink;
  _mm256_zeroupper();
  return seconds;
}

/// The same rounds in 512-bit vectors.
[[gnu::target("avx512f"), gnu::noinline]] double wideRoundsSeconds() {
  __m512 acc[kChains];
  for (int j = 0; j < kChains; ++j) acc[j] = _mm512_set1_ps(static_cast<float>(j));
  const __m512 scale = _mm512_set1_ps(0.999f), shift = _mm512_set1_ps(0.001f);
  const Clock::time_point start = Clock::now();
  for (int64_t r = 0; r < kRounds; ++r)
#pragma GCC unroll 12
    for (int j = 0; j < kChains; ++j) acc[j] = _mm512_fmadd_ps(acc[j], scale, shift);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  __m512 sum = acc[0];
  for (int j = 1; j < kChains; ++j) sum = _mm512_add_ps(sum, acc[j]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, sum);
  volatile float sink = lanes[0];
  (void)sink;
  _mm256_zeroupper();
  return seconds;
}

bool measureWideVectorsAtFullRate() {
  if (!hostHasAvx512() || !hostHasAvx2Fma()) return false;
  double narrow = 1e9, wide = 1e9;
  for (int attempt = 0; attempt < 7; ++attempt) {  // alternating: a busy moment slows both
    narrow = std::min(narrow, narrowRoundsSeconds());
    wide = std::min(wide, wideRoundsSeconds());
  }
  return wide < 1.5 * narrow;
}

}  // namespace

bool hostRunsWideVectorsAtFullRate() {
  static const bool fullRate = measureWideVectorsAtFullRate();
  return fullRate;
}

}  // namespace weft::cpu
