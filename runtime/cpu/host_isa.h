#pragma once
/// Which of weft's vector kernels this CPU runs: the one check the native steps make to pick
/// their AVX-512 kernels, their AVX2 ones (with FMA), or neither.

namespace weft::cpu {

/// True when this CPU runs AVX-512F kernels.
inline bool hostHasAvx512() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
}

/// True when this CPU runs AVX2 kernels that use FMA.
inline bool hostHasAvx2Fma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

}  // namespace weft::cpu
