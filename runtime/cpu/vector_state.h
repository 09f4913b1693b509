#pragma once
/// The state of the vector registers after weft's own AVX-512 kernels. Code that leaves the
/// upper halves of the registers in use makes the SSE code that runs after it on the same
/// thread (weft's C++ is compiled for the x86-64 baseline: the random draws, scalar loops)
/// several times slower on Intel CPUs (AMD CPUs show no such cost). The generated kernels
/// (LLVM) and oneDNN's end with vzeroupper; weft's intrinsic kernels clear them with
/// UpperHalvesClearedOnExit. On the Intel Xeon of stop 20, ddpm's 25088 normal draws took
/// 5.4-6.6 ms after the few-channel convolution's kernel on the same threads, 0.73 ms with it
/// clearing them.
#include <immintrin.h>

namespace weft::cpu {

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

}  // namespace weft::cpu
