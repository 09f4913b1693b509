// The measured half of host_isa.h: whether 512-bit FMAs run at the rate of 256-bit ones; and
// WEFT_CPU_ISA, the cap on weft's own vector kernels.
#include "runtime/cpu/host_isa.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/cpu/environment.h"

namespace weft::cpu {
namespace {

const std::vector<std::string> kIsaCaps = {"avx512", "avx2", "none"};  // CpuIsaCap's order

constexpr int kChains = 12;  // independent FMAs in flight: past latency x pipes on every x86 CPU
constexpr int64_t kRounds = 16384;  // ~30 us a try: past the power-up of idle 512-bit units

using Clock = std::chrono::steady_clock;

/// a * b + c in one rounding, in 256- or 512-bit vectors.
[[gnu::target("avx512f,fma"), gnu::always_inline]] inline __m256 fused(__m256 a, __m256 b, __m256 c) {
  return _mm256_fmadd_ps(a, b, c);
}
[[gnu::target("avx512f,fma"), gnu::always_inline]] inline __m512 fused(__m512 a, __m512 b, __m512 c) {
  return _mm512_fmadd_ps(a, b, c);
}

/// Seconds for kRounds rounds of kChains dependent FMA chains in vectors V (__m256 or
/// __m512). Compiled for AVX-512: only a CPU with it measures.
template <class V>
[[gnu::target("avx512f,fma"), gnu::noinline]] double roundsSeconds() {
  V acc[kChains];
  for (int j = 0; j < kChains; ++j) acc[j] = V{} + static_cast<float>(j);
  const V scale = V{} + 0.999f, shift = V{} + 0.001f;
  const Clock::time_point start = Clock::now();
  for (int64_t r = 0; r < kRounds; ++r)
#pragma GCC unroll 12
    for (int j = 0; j < kChains; ++j) acc[j] = fused(acc[j], scale, shift);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  V sum = acc[0];
  for (int j = 1; j < kChains; ++j) sum += acc[j];
  volatile float sink = sum[0];  // the chains' results are used
  (void)sink;
  _mm256_zeroupper();
  return seconds;
}

bool measureWideVectorsAtFullRate() {
  if (!hostHasAvx512() || !hostHasAvx2Fma()) return false;
  double narrow = 1e9, wide = 1e9;
  for (int attempt = 0; attempt < 7; ++attempt) {  // alternating: a busy moment slows both
    narrow = std::min(narrow, roundsSeconds<__m256>());
    wide = std::min(wide, roundsSeconds<__m512>());
  }
  return wide < 1.5 * narrow;
}

}  // namespace

CpuIsaCap cpuIsaCap() {
  static const CpuIsaCap cap = [] {
    const std::string value = environmentValue("WEFT_CPU_ISA");
    const auto it = std::find(kIsaCaps.begin(), kIsaCaps.end(), value);
    return it == kIsaCaps.end() ? CpuIsaCap::kAvx512 : static_cast<CpuIsaCap>(it - kIsaCaps.begin());
  }();
  return cap;
}

const char* cpuIsaCapName(CpuIsaCap cap) { return kIsaCaps.at(static_cast<size_t>(cap)).c_str(); }

void checkCpuIsaEnvironment() {
  environmentChoice("WEFT_CPU_ISA", kIsaCaps, "'avx512' (the default: what this CPU has), 'avx2' or 'none'");
}

bool hostRunsWideVectorsAtFullRate() {
  static const bool fullRate = measureWideVectorsAtFullRate();
  return fullRate;
}

}  // namespace weft::cpu
