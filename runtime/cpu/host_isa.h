#pragma once
/// Which of weft's vector kernels this CPU runs: the one check the native steps make to pick
/// their AVX-512 kernels, their AVX2 ones (with FMA), or neither.

namespace weft::cpu {

/// True when this CPU runs AVX-512F kernels.
inline bool hostHasAvx512() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
}

/// True when this CPU runs AVX-512F kernels and its 512-bit FMAs keep the pace of its 256-bit
/// ones (two 512-bit FMA pipes, as Intel's Xeons have; AMD's Zen 4 splits each into two 256-bit
/// halves, at half the rate). Measured once, on the first call: twelve chains of FMAs in each
/// width, the fastest of seven tries, a 512-bit round within 1.5 times a 256-bit one. `weft
/// bench` reports it (its vectors line), since it moves how oneDNN's and weft's kernels compare.
bool hostRunsWideVectorsAtFullRate();

/// True when this CPU runs AVX2 kernels that use FMA.
inline bool hostHasAvx2Fma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

}  // namespace weft::cpu
