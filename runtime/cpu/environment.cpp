// Strict reading of the CPU backend's environment variables (see environment.h).
#include "runtime/cpu/environment.h"

#include <algorithm>
#include <cstdlib>

#include "ir/error.h"

namespace weft::cpu {

std::string environmentValue(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

long long environmentInteger(const char* name, long long fallback, long long low, long long high) {
  const std::string value = environmentValue(name);
  if (value.empty()) return fallback;
  long long n = 0;
  size_t used = 0;
  try {
    n = std::stoll(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != value.size() || n < low || n > high)
    throw Error(std::string(name) + "=" + value + ": expected an integer from " + std::to_string(low) + " to " +
                std::to_string(high));
  return n;
}

size_t environmentChoice(const char* name, const std::vector<std::string>& choices, const std::string& expected) {
  const std::string value = environmentValue(name);
  if (value.empty()) return 0;
  auto it = std::find(choices.begin(), choices.end(), value);
  if (it == choices.end()) throw Error(std::string(name) + "=" + value + ": expected " + expected);
  return static_cast<size_t>(it - choices.begin());
}

}  // namespace weft::cpu
