// The CPU backend's environment variables (WEFT_THREADS, WEFT_PROFILE, WEFT_TUNE_MATMULS):
// accepted values, defaults, and an error naming the variable for anything else.
#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

#include "cpu_test_util.h"
#include "ir/error.h"
#include "runtime/cpu/matmul_tuning.h"
#include "runtime/cpu/program.h"

namespace weft {
namespace {

using cpu::testing::EnvironmentVariable;

/// Runs `read` with `name`=`value` and expects an Error whose message holds `phrase`.
template <typename Read>
void expectRejected(const char* name, const std::string& value, Read read, const std::string& phrase) {
  EnvironmentVariable set(name, value);
  try {
    read();
    ADD_FAILURE() << name << "=" << value << " was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(phrase), std::string::npos) << e.what();
  }
}

TEST(Environment, ThreadsDefaultToTwoAndTakeWholeCountsInRange) {
  {
    EnvironmentVariable unset("WEFT_THREADS", std::nullopt);
    EXPECT_EQ(cpu::defaultThreads(), 2);
  }
  {
    EnvironmentVariable empty("WEFT_THREADS", std::string());
    EXPECT_EQ(cpu::defaultThreads(), 2);
  }
  for (const auto& [text, want] : {std::pair<std::string, int>{"1", 1}, {"7", 7}, {"1024", cpu::kMaxThreads}}) {
    EnvironmentVariable set("WEFT_THREADS", text);
    EXPECT_EQ(cpu::defaultThreads(), want) << text;
  }
  for (const std::string bad : {"0", "-4", "abc", "1e3", "3 ", "1025", "100000", "99999999999999999999"})
    expectRejected("WEFT_THREADS", bad, [] { cpu::defaultThreads(); },
                   "WEFT_THREADS=" + bad + ": expected an integer from 1 to 1024");
}

TEST(Environment, ThreadCountsOutsideTheRangeAreErrorsNamingTheirSource) {
  EXPECT_EQ(cpu::checkedThreads(1, "--threads"), 1);
  EXPECT_EQ(cpu::checkedThreads(cpu::kMaxThreads, "--threads"), cpu::kMaxThreads);
  for (long long bad : {0LL, -1LL, 1025LL, 100000LL}) {
    try {
      cpu::checkedThreads(bad, "--threads");
      ADD_FAILURE() << bad << " threads were accepted";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), "--threads: " + std::to_string(bad) + " threads: expected 1 to 1024");
    }
  }
}

TEST(Environment, ProfileIsOffUnsetAndListsTwelveOrNSteps) {
  for (const auto& [text, want] : {std::pair<std::optional<std::string>, size_t>{std::nullopt, 0},
                                   {std::string(), 0},
                                   {std::string("0"), 0},
                                   {std::string("1"), 12},
                                   {std::string("40"), 40}}) {
    EnvironmentVariable set("WEFT_PROFILE", text);
    EXPECT_EQ(cpu::profileSteps(), want) << text.value_or("(unset)");
  }
  for (const std::string bad : {"yes", "-5", "2.5", "1000001"})
    expectRejected("WEFT_PROFILE", bad, [] { cpu::profileSteps(); }, "WEFT_PROFILE=" + bad + ": expected an integer");
}

TEST(Environment, MatmulTuningIsOnUnlessTurnedOff) {
  for (const auto& [text, want] : {std::pair<std::optional<std::string>, bool>{std::nullopt, true},
                                   {std::string(), true},
                                   {std::string("1"), true},
                                   {std::string("0"), false}}) {
    EnvironmentVariable set("WEFT_TUNE_MATMULS", text);
    EXPECT_EQ(cpu::tuneMatmulsFromEnvironment(), want) << text.value_or("(unset)");
  }
  expectRejected("WEFT_TUNE_MATMULS", "off", [] { cpu::tuneMatmulsFromEnvironment(); },
                 "WEFT_TUNE_MATMULS=off: expected 1");
}

}  // namespace
}  // namespace weft
