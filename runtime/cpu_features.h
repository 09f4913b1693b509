#pragma once
/// The x86 features a bundle's code may need, by the names LLVM's target features and GCC's
/// __builtin_cpu_supports share: the bundle writer lists those its target machine has
/// (weft_bundle::cpu_features), and weft_model_create refuses a CPU that lacks one, instead of
/// the program dying of an illegal instruction in the first kernel.
#include <string>

namespace weft::runtime {

/// The features checked, in the order they are listed.
inline constexpr const char* kCheckedCpuFeatures[] = {
    "sse4.2", "popcnt",   "avx",      "avx2",     "fma",      "bmi",        "bmi2",
    "avx512f", "avx512cd", "avx512vl", "avx512bw", "avx512dq", "avx512vnni", "avx512bf16"};

/// The features of comma-separated `list` this CPU lacks, comma-separated ("" when none);
/// a name not in kCheckedCpuFeatures counts as lacking.
std::string missingCpuFeatures(const std::string& list);

}  // namespace weft::runtime
