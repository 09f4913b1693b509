#pragma once
/// Which of weft's vector kernels this CPU runs: the one check the native steps make to pick
/// their AVX-512 kernels, their AVX2 ones (with FMA), or neither.

namespace weft::cpu {

/// The widest of weft's own vector kernels that may run, as WEFT_CPU_ISA sets it: `avx512`
/// (the default: whatever this CPU has), `avx2` (the AVX2 kernels even on an AVX-512 CPU,
/// so that such a machine runs and tests them) or `none` (no vector kernels: their steps
/// fall to oneDNN or the reference kernels). Read once; never throws (an unknown value reads
/// as the default here: checkCpuIsaEnvironment rejects it before anything compiles).
enum class CpuIsaCap { kAvx512, kAvx2, kNone };
CpuIsaCap cpuIsaCap();

/// The WEFT_CPU_ISA value of `cap` ("avx512", "avx2" or "none").
const char* cpuIsaCapName(CpuIsaCap cap);

/// Throws weft::Error naming WEFT_CPU_ISA when its value is none of avx512, avx2 and none.
void checkCpuIsaEnvironment();

/// True when this CPU runs AVX-512F kernels and WEFT_CPU_ISA allows them.
inline bool hostHasAvx512() {
  static const bool has = __builtin_cpu_supports("avx512f") && cpuIsaCap() == CpuIsaCap::kAvx512;
  return has;
}

/// True when this CPU runs AVX-512F kernels and its 512-bit FMAs keep the pace of its 256-bit
/// ones (two 512-bit FMA pipes, as Intel's Xeons have; AMD's Zen 4 splits each into two 256-bit
/// halves, at half the rate). Measured once, on the first call: twelve chains of FMAs in each
/// width, the fastest of seven tries, a 512-bit round within 1.5 times a 256-bit one. `weft
/// bench` reports it (its vectors line), since it moves how oneDNN's and weft's kernels compare.
bool hostRunsWideVectorsAtFullRate();

/// True when this CPU runs AVX2 kernels that use FMA and WEFT_CPU_ISA allows them.
inline bool hostHasAvx2Fma() {
  static const bool has =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpuIsaCap() != CpuIsaCap::kNone;
  return has;
}

}  // namespace weft::cpu
