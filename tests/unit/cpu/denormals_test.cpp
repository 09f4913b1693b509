// Runs flush denormal floats (FTZ and DAZ on their threads) unless told to keep them, and
// leave every thread's floating-point control as they found it.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "backends/cpu/executable.h"
#include "cpu_test_util.h"
#include "ir/error.h"
#include "runtime/cpu/denormals.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define WEFT_TEST_MXCSR 1
#endif

using namespace weft;

namespace {

constexpr int64_t kCount = 1 << 16;  ///< elements: enough for the kernel to split across threads

/// y = x * s over kCount elements, s a scalar input.
ir::Graph scaledGraph() {
  ir::Graph g;
  auto x = g.addInput("x", {ir::DType::f32, {kCount}});
  auto s = g.addInput("s", {ir::DType::f32, {}});
  g.addOutput("y", g.addOp(ir::OpKind::Mul, {x, s}));
  return g;
}

/// y of scaledGraph() compiled with `flush`, for x filled with `x` and s = `s`.
ir::TensorData scaled(bool flush, float x, float s) {
  cpu::CompileOptions options;
  options.flushDenormals = flush;
  cpu::Executable exe = cpu::compile(scaledGraph(), options);
  ir::TensorData xs({ir::DType::f32, {kCount}}), ss({ir::DType::f32, {}});
  for (int64_t i = 0; i < kCount; ++i) xs.set(i, x);
  ss.set(0, s);
  return exe.run({{"x", xs}, {"s", ss}}).at("y");
}

/// Sets WEFT_DENORMALS to `value` (unset when nullopt) while alive.
struct DenormalsVariable : cpu::testing::EnvironmentVariable {
  explicit DenormalsVariable(const std::optional<std::string>& value) : EnvironmentVariable("WEFT_DENORMALS", value) {}
};

}  // namespace

TEST(Denormals, FlushedRunsWriteZeroForDenormalResults) {
  const ir::TensorData y = scaled(true, 1e-30f, 1e-10f);  // 1e-40 is below f32's smallest normal
  for (int64_t i = 0; i < kCount; ++i) ASSERT_EQ(y.get(i), 0.0) << "element " << i;
}

TEST(Denormals, FlushedRunsReadDenormalOperandsAsZero) {
  const ir::TensorData y = scaled(true, 1e-40f, 2.0f);
  for (int64_t i = 0; i < kCount; ++i) ASSERT_EQ(y.get(i), 0.0) << "element " << i;
}

TEST(Denormals, KeptDenormalsComputeAsIeeeSays) {
  const ir::TensorData y = scaled(false, 1e-30f, 1e-10f);
  const float want = 1e-30f * 1e-10f;
  ASSERT_EQ(std::fpclassify(want), FP_SUBNORMAL);
  for (int64_t i = 0; i < kCount; ++i) ASSERT_EQ(static_cast<float>(y.get(i)), want) << "element " << i;
  const ir::TensorData doubled = scaled(false, 1e-40f, 2.0f);
  EXPECT_EQ(static_cast<float>(doubled.get(0)), 1e-40f * 2.0f);
}

TEST(Denormals, NormalValuesAreUnchanged) {
  const ir::TensorData y = scaled(true, 3.0f, 0.5f);
  EXPECT_EQ(y.get(0), 1.5);
  EXPECT_EQ(y.get(kCount - 1), 1.5);
}

TEST(Denormals, TheEnvironmentChoosesTheDefault) {
  {
    DenormalsVariable unset(std::nullopt);
    EXPECT_TRUE(cpu::defaultFlushDenormals());
  }
  {
    DenormalsVariable flush(std::string("flush"));
    EXPECT_TRUE(cpu::defaultFlushDenormals());
  }
  {
    DenormalsVariable keep(std::string("keep"));
    EXPECT_FALSE(cpu::defaultFlushDenormals());
    cpu::Executable exe = cpu::compile(scaledGraph());  // no flushDenormals: the variable decides
    ir::TensorData xs({ir::DType::f32, {kCount}}), ss({ir::DType::f32, {}});
    for (int64_t i = 0; i < kCount; ++i) xs.set(i, 1e-30f);
    ss.set(0, 1e-10f);
    EXPECT_NE(exe.run({{"x", xs}, {"s", ss}}).at("y").get(0), 0.0);
  }
  {
    DenormalsVariable wrong(std::string("sometimes"));
    try {
      cpu::defaultFlushDenormals();
      FAIL() << "WEFT_DENORMALS=sometimes was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("WEFT_DENORMALS=sometimes"), std::string::npos) << e.what();
    }
    EXPECT_THROW(cpu::compile(scaledGraph()), Error);
  }
}

#ifdef WEFT_TEST_MXCSR
TEST(Denormals, EveryThreadGetsItsControlBack) {
  constexpr unsigned kBits = 0x8040;  // FTZ | DAZ
  const int threads = 2;
  std::vector<unsigned> before(threads), during(threads), after(threads);
#pragma omp parallel num_threads(threads)
  before[static_cast<size_t>(omp_get_thread_num())] = _mm_getcsr();
  {
    cpu::DenormalsFlushed flushed(true, threads);
#pragma omp parallel num_threads(threads)
    during[static_cast<size_t>(omp_get_thread_num())] = _mm_getcsr();
  }
#pragma omp parallel num_threads(threads)
  after[static_cast<size_t>(omp_get_thread_num())] = _mm_getcsr();
  for (int t = 0; t < threads; ++t) {
    SCOPED_TRACE("thread " + std::to_string(t));
    EXPECT_EQ(during[static_cast<size_t>(t)] & kBits, kBits);
    EXPECT_EQ(after[static_cast<size_t>(t)], before[static_cast<size_t>(t)]);
  }
  EXPECT_EQ(_mm_getcsr() & kBits, before[0] & kBits);

  // A run leaves the calling thread as it was, too.
  const unsigned control = _mm_getcsr();
  scaled(true, 1.0f, 2.0f);
  EXPECT_EQ(_mm_getcsr(), control);
}

TEST(Denormals, NotFlushingTouchesNothing) {
  const unsigned control = _mm_getcsr();
  {
    cpu::DenormalsFlushed kept(false, 2);
    EXPECT_EQ(_mm_getcsr(), control);
  }
  EXPECT_EQ(_mm_getcsr(), control);
}
#endif

#ifdef WEFT_TEST_MXCSR
TEST(Denormals, NestedScopesLeaveTheOriginalBits) {
  const unsigned control = _mm_getcsr();
  {
    cpu::DenormalsFlushed outer(true, 2);
    {
      cpu::DenormalsFlushed inner(true, 2);
      EXPECT_EQ(_mm_getcsr() & 0x8040u, 0x8040u);
    }
    EXPECT_EQ(_mm_getcsr(), control);  // the inner end restored the bits saved first
  }
  EXPECT_EQ(_mm_getcsr(), control);
}
#endif
