#pragma once
/// The CPU backend's environment variables, read strictly: unset or empty takes the default,
/// a listed value its meaning, and anything else is a weft::Error naming the variable and
/// what it takes (a typo must not quietly mean the default).
#include <string>
#include <vector>

namespace weft::cpu {

/// The value of environment variable `name` ("" when unset).
std::string environmentValue(const char* name);

/// `name` as a whole number from `low` to `high`; `fallback` when unset or empty.
long long environmentInteger(const char* name, long long fallback, long long low, long long high);

/// The index in `choices` of `name`'s value; 0 (the default) when unset or empty. Other
/// values throw, the message saying `expected` (e.g. "'flush' (the default) or 'keep'").
size_t environmentChoice(const char* name, const std::vector<std::string>& choices, const std::string& expected);

}  // namespace weft::cpu
