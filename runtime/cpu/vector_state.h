#pragma once
/// The state of the vector registers between kernels. AVX and AVX-512 code (oneDNN's, the
/// generated kernels', weft's intrinsics) can leave the upper halves of the registers in use;
/// on Intel CPUs, SSE code that runs after that on the same thread (weft's C++ is compiled for
/// the x86-64 baseline: the random draws, scalar loops) then runs several times slower. On the
/// Intel Xeon of stop 20, ddpm's 25088 normal draws took 5.4-6.6 ms after AVX-512 kernels on
/// the same threads, 1.0 ms with the upper halves cleared first (AMD CPUs show no such cost).
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace weft::cpu {

#if defined(__x86_64__)
/// vzeroupper, compiled for AVX whatever the translation unit's target.
[[gnu::target("avx")]] inline void zeroUpperHalves() { _mm256_zeroupper(); }

/// Clears the upper halves (vzeroupper) when it goes out of scope. GCC inserts no vzeroupper
/// into a function compiled for AVX-512 through a target attribute, so such a kernel declares
/// one first: the SSE code that runs after it on the thread then keeps its speed.
struct UpperHalvesClearedOnExit {
  UpperHalvesClearedOnExit() = default;
  UpperHalvesClearedOnExit(const UpperHalvesClearedOnExit&) = delete;
  UpperHalvesClearedOnExit& operator=(const UpperHalvesClearedOnExit&) = delete;
  ~UpperHalvesClearedOnExit() { zeroUpperHalves(); }
};

/// Marks the upper halves of the vector registers unused on this thread (vzeroupper) where
/// the CPU has AVX; nothing elsewhere. Call it before SSE code that follows vector kernels.
inline void clearUpperVectorState() {
  static const bool avx = __builtin_cpu_supports("avx");
  if (avx) zeroUpperHalves();
}
#else
/// Nothing to clear on this architecture.
inline void clearUpperVectorState() {}
#endif

}  // namespace weft::cpu
