// The CPU feature check of bundles (see cpu_features.h).
#include "runtime/cpu_features.h"

#include <sstream>

namespace weft::runtime {
namespace {

/// True when this CPU has feature `name` (__builtin_cpu_supports takes only literals).
bool supports(const std::string& name) {
  if (name == "sse4.2") return __builtin_cpu_supports("sse4.2");
  if (name == "popcnt") return __builtin_cpu_supports("popcnt");
  if (name == "avx") return __builtin_cpu_supports("avx");
  if (name == "avx2") return __builtin_cpu_supports("avx2");
  if (name == "fma") return __builtin_cpu_supports("fma");
  if (name == "bmi") return __builtin_cpu_supports("bmi");
  if (name == "bmi2") return __builtin_cpu_supports("bmi2");
  if (name == "avx512f") return __builtin_cpu_supports("avx512f");
  if (name == "avx512cd") return __builtin_cpu_supports("avx512cd");
  if (name == "avx512vl") return __builtin_cpu_supports("avx512vl");
  if (name == "avx512bw") return __builtin_cpu_supports("avx512bw");
  if (name == "avx512dq") return __builtin_cpu_supports("avx512dq");
  if (name == "avx512vnni") return __builtin_cpu_supports("avx512vnni");
  if (name == "avx512bf16") return __builtin_cpu_supports("avx512bf16");
  return false;
}

}  // namespace

std::string missingCpuFeatures(const std::string& list) {
  std::string missing, name;
  std::istringstream in(list);
  while (std::getline(in, name, ','))
    if (!name.empty() && !supports(name)) missing += (missing.empty() ? "" : ",") + name;
  return missing;
}

}  // namespace weft::runtime
