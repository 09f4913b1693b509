#pragma once
// Shared by the CPU backend tests: comparing tensor maps against the reference interpreter.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "backends/reference/interpreter.h"

namespace weft::cpu::testing {

/// Every tensor of `got` matches `want` within `rel` relative (absolute below 1); reports at
/// most three elements per tensor, prefixed by `what`.
inline void expectClose(const reference::TensorMap& got, const reference::TensorMap& want, const std::string& what,
                        double rel = 1e-4) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (const auto& [name, w] : want) {
    ASSERT_TRUE(got.count(name)) << what << ": no " << name;
    const ir::TensorData& x = got.at(name);
    ASSERT_EQ(x.type, w.type) << what << ": " << name;
    int failures = 0;
    for (int64_t i = 0; i < w.numel() && failures < 3; ++i)
      if (std::fabs(x.get(i) - w.get(i)) > rel * std::max(1.0, std::fabs(w.get(i)))) {
        ADD_FAILURE() << what << ": " << name << "[" << i << "] is " << x.get(i) << ", reference " << w.get(i);
        ++failures;
      }
  }
}

}  // namespace weft::cpu::testing
