// The compiled CPU backend on single matmul and conv nodes, against hand-computed values.
#include <gtest/gtest.h>

#include <cmath>

#include "backends/cpu/executable.h"
#include "cpu_test_util.h"
#include "ir/error.h"
#include "runtime/cpu/memory_plan.h"

using namespace weft;

namespace {

ir::TensorData tensor(ir::Shape shape, const std::vector<double>& values) {
  ir::TensorData t(ir::TensorType{ir::DType::f32, std::move(shape)});
  for (size_t i = 0; i < values.size(); ++i) t.set(static_cast<int64_t>(i), values[i]);
  return t;
}

ir::TensorType f32(ir::Shape shape) { return {ir::DType::f32, std::move(shape)}; }

/// Expects every element of `got` to equal `want` (within 1e-4).
void expectValues(const ir::TensorData& got, const std::vector<double>& want) {
  ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got.get(static_cast<int64_t>(i)), want[i], 1e-4) << "at " << i;
}

}  // namespace

TEST(CpuMatmul, BothOperandsTransposed) {
  ir::Graph g;
  auto a = g.addInput("a", f32({3, 2}));
  auto b = g.addInput("b", f32({2, 3}));
  g.addOutput("y", g.addOp(ir::OpKind::Matmul, {a, b}, {{"transpose_lhs", int64_t{1}}, {"transpose_rhs", int64_t{1}}}));
  cpu::Executable exe = cpu::compile(g);
  EXPECT_EQ(exe.oneDnnNodeCount(), 1);
  auto out = exe.run({{"a", tensor({3, 2}, {1, 2, 3, 4, 5, 6})}, {"b", tensor({2, 3}, {1, 0, 1, 0, 1, 1})}});
  // a^T = [[1,3,5],[2,4,6]], b^T = [[1,0],[0,1],[1,1]].
  EXPECT_EQ(out.at("y").type, f32({2, 2}));
  expectValues(out.at("y"), {6, 8, 8, 10});
}

TEST(CpuMatmul, TransposedLhsIsCopiedRowMajorOnAvx2WhereTheSgemmReadsItSlowly) {
  // A weight gradient's x^T dy: on CPUs where oneDNN's sgemm reads a transposed lhs slowly (no
  // AVX-512) the step copies it row-major first (its conversion bytes) when it has 512 or more
  // rows and columns, or rows a multiple of 256 floats (1 KiB) apart and 64 or more result
  // columns to pay for the copy; the product is the same either way.
  struct Case {
    ir::Shape x, dy;
    bool copied;
  };
  const Case cases[] = {
      {{520, 600}, {520, 24}, true},   // many rows and columns
      {{40, 512}, {40, 256}, true},    // mlp's second weight gradient, fewer rows
      {{24, 256}, {24, 64}, true},     // rows 1 KiB apart
      {{24, 256}, {24, 10}, false},    // too few result columns to pay for the copy
      {{40, 400}, {40, 256}, false},   // rows not 1 KiB-multiples apart
  };
  for (const Case& c : cases) {
    ir::Graph g;
    g.addOutput("y", g.addOp(ir::OpKind::Matmul, {g.addInput("x", f32(c.x)), g.addInput("dy", f32(c.dy))},
                             {{"transpose_lhs", int64_t{1}}}));
    SCOPED_TRACE(g.type(g.outputs()[0].value).str());
    cpu::Executable exe = cpu::compile(g);
    EXPECT_EQ(exe.stats().convertedBytes, c.copied && !cpu::channelBlocksFit() ? c.x[0] * c.x[1] * 4 : 0);
    EXPECT_EQ(cpu::conversionBound(g, g.outputs()[0].value), c.copied ? (c.x[0] * c.x[1] * 4 + 63) / 64 * 64 : 0);
    reference::TensorMap feeds = cpu::testing::sineFeeds(g);
    cpu::testing::expectCloseToLargest(exe.run(feeds), reference::run(g, feeds));
  }
}

TEST(CpuMatmul, RhsRowsOfAMultipleOf256FloatsArePaddedOnAvx2) {
  // Where oneDNN's sgemm reads row-major rhs rows 1 KiB-multiples apart slowly (no AVX-512),
  // the step copies a rhs of 512 or more such columns with rows a cache line longer (its
  // conversion bytes) when it has 64 or more rows to multiply; the product is the same. The
  // memory plan reserves room for the copy at the step on every CPU (a function of the graph
  // alone), so it lies in the arena, not in a buffer of its own.
  struct Case {
    ir::Shape lhs, rhs;
    bool padded;
  };
  const Case cases[] = {
      {{96, 40}, {40, 512}, true},          // mlp's first layer, smaller
      {{2, 70, 24}, {2, 24, 768}, true},    // a batch of matrices
      {{32, 40}, {40, 512}, false},         // too few rows to pay for the copy
      {{96, 40}, {40, 400}, false},         // rows not 1 KiB-multiples apart
  };
  for (const Case& c : cases) {
    ir::Graph g;
    g.addOutput("y", g.addOp(ir::OpKind::Matmul, {g.addInput("x", f32(c.lhs)), g.addInput("w", f32(c.rhs))}));
    SCOPED_TRACE(g.type(g.outputs()[0].value).str());
    cpu::Executable exe = cpu::compile(g);
    int64_t rhsBytes = 4;
    for (int64_t d : c.rhs) rhsBytes *= d;
    EXPECT_EQ(exe.stats().convertedBytes, c.padded && !cpu::channelBlocksFit() ? rhsBytes : 0);
    const int64_t paddedBytes = rhsBytes / c.rhs.back() * (c.rhs.back() + 16);
    EXPECT_EQ(cpu::conversionBound(g, g.outputs()[0].value), c.padded ? (paddedBytes + 63) / 64 * 64 : 0);
    EXPECT_EQ(exe.stats().scratchBytes, 0);
    reference::TensorMap feeds = cpu::testing::sineFeeds(g);
    cpu::testing::expectCloseToLargest(exe.run(feeds), reference::run(g, feeds));
  }
}

TEST(CpuMatmul, BatchDimsBroadcast) {
  ir::Graph g;
  auto a = g.addInput("a", f32({2, 1, 2, 2}));
  auto b = g.addInput("b", f32({3, 2, 2}));
  g.addOutput("y", g.addOp(ir::OpKind::Matmul, {a, b}));
  cpu::Executable exe = cpu::compile(g);
  EXPECT_EQ(exe.oneDnnNodeCount(), 1);
  // a[i] = (i + 1) * identity, b[j] = [[j, 1], [2, 3]], so y[i][j] = (i + 1) * b[j].
  auto out = exe.run({{"a", tensor({2, 1, 2, 2}, {1, 0, 0, 1, 2, 0, 0, 2})},
                      {"b", tensor({3, 2, 2}, {0, 1, 2, 3, 1, 1, 2, 3, 2, 1, 2, 3})}});
  EXPECT_EQ(out.at("y").type, f32({2, 3, 2, 2}));
  std::vector<double> want;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (double v : {double(j), 1.0, 2.0, 3.0}) want.push_back((i + 1) * v);
  expectValues(out.at("y"), want);
}

TEST(CpuConv, StridePaddingDilationGroups) {
  ir::Graph g;
  auto x = g.addInput("x", f32({1, 2, 4, 4}));
  auto w = g.addInput("w", f32({2, 1, 2, 2}));
  ir::Attrs attrs{{"stride", std::vector<int64_t>{2, 2}},
                  {"padding", std::vector<int64_t>{1, 1}},
                  {"dilation", std::vector<int64_t>{2, 2}},
                  {"groups", int64_t{2}}};
  g.addOutput("y", g.addOp(ir::OpKind::Conv, {x, w}, attrs));
  cpu::Executable exe = cpu::compile(g);
  EXPECT_EQ(exe.oneDnnNodeCount(), 1);
  std::vector<double> xs;
  for (int c = 0; c < 2; ++c)
    for (int i = 0; i < 16; ++i) xs.push_back(c * 100 + i);
  auto out = exe.run({{"x", tensor({1, 2, 4, 4}, xs)}, {"w", tensor({2, 1, 2, 2}, {1, 1, 1, 1, 2, 2, 2, 2})}});
  // Taps land on rows/cols {-1, 1} or {1, 3}: channel 0 sums {5}, {5,7}, {5,13}, {5,7,13,15};
  // channel 1 (weight 2) sums the same positions plus 100 per tap.
  EXPECT_EQ(out.at("y").type, f32({1, 2, 2, 2}));
  expectValues(out.at("y"), {5, 12, 18, 40, 210, 424, 436, 880});
}

TEST(CpuConv, MatchesReferenceOnAsymmetricAttributes) {
  ir::Graph g;
  auto x = g.addInput("x", f32({2, 6, 7, 9}));
  auto w = g.addInput("w", f32({9, 2, 3, 2}));
  ir::Attrs attrs{{"stride", std::vector<int64_t>{2, 1}},
                  {"padding", std::vector<int64_t>{1, 0}},
                  {"dilation", std::vector<int64_t>{1, 2}},
                  {"groups", int64_t{3}}};
  g.addOutput("y", g.addOp(ir::OpKind::Conv, {x, w}, attrs));
  reference::TensorMap feeds;
  for (const char* name : {"x", "w"}) {
    ir::TensorData t(g.type(*g.find(name)));
    for (int64_t i = 0; i < t.numel(); ++i) t.set(i, std::sin(0.37 * double(i)));
    feeds[name] = t;
  }
  cpu::Executable exe = cpu::compile(g);
  EXPECT_EQ(exe.oneDnnNodeCount(), 1);
  auto got = exe.run(feeds).at("y");
  auto want = reference::run(g, feeds).at("y");
  ASSERT_EQ(got.type, want.type);
  for (int64_t i = 0; i < want.numel(); ++i) EXPECT_NEAR(got.get(i), want.get(i), 1e-4) << "at " << i;
}

TEST(CpuExecutable, NonF32MatmulFallsBackToReference) {
  ir::Graph g;
  auto a = g.addInput("a", {ir::DType::f64, {2, 2}});
  g.addOutput("y", g.addOp(ir::OpKind::Matmul, {a, a}));
  cpu::Executable exe = cpu::compile(g);
  EXPECT_EQ(exe.oneDnnNodeCount(), 0);
  ir::TensorData t({ir::DType::f64, {2, 2}});
  for (int i = 0; i < 4; ++i) t.set(i, i + 1);
  auto out = exe.run({{"a", t}});
  EXPECT_EQ(out.at("y").get(0), 7);   // [[1,2],[3,4]]^2 = [[7,10],[15,22]]
  EXPECT_EQ(out.at("y").get(3), 22);
}

TEST(CpuExecutable, BadFeedsThrowLikeTheReference) {
  ir::Graph g;
  auto a = g.addInput("a", f32({2, 2}));
  g.addOutput("y", g.addOp(ir::OpKind::Matmul, {a, a}));
  cpu::Executable exe = cpu::compile(g);
  EXPECT_THROW(exe.run({{"a", tensor({2, 2}, {1, 2, 3, 4})}, {"nope", tensor({1}, {0})}}), Error);
  EXPECT_THROW(exe.run({}), Error);
  EXPECT_THROW(exe.run({{"a", tensor({3}, {1, 2, 3})}}), Error);
}

TEST(CpuReduce, PerChannelSumsOfAChannelsLastBatchAddUpPartialSums) {
  // Batch norm's statistics over [N, H, W, C]: 32 channels split badly across threads, so the
  // generated sum splits the N*H*W positions; the threads' partial sums add up to the result.
  ir::Graph g;
  auto x = g.addInput("x", f32({16, 8, 8, 32}));
  auto squares = g.addOp(ir::OpKind::Mul, {x, x});
  g.addOutput("y", g.addOp(ir::OpKind::ReduceSum, {squares}, {{"axes", std::vector<int64_t>{0, 1, 2}},
                                                              {"keepdims", int64_t{0}}}));
  ir::TensorData input(f32({16, 8, 8, 32}));
  std::vector<double> want(32, 0.0);
  for (int64_t i = 0; i < input.numel(); ++i) {
    double v = std::sin(0.37 * static_cast<double>(i));
    input.set(i, v);
    want[static_cast<size_t>(i % 32)] += static_cast<double>(static_cast<float>(v)) * static_cast<float>(v);
  }
  for (int threads : {1, 2}) {
    SCOPED_TRACE(threads);
    cpu::CompileOptions options;
    options.threads = threads;
    cpu::Executable exe = cpu::compile(g, options);
    EXPECT_EQ(exe.stats().partialSumKernels, 1);
    for (int run = 0; run < 2; ++run) {  // a second run reuses the threads' scratch
      auto out = exe.run({{"x", input}});
      ASSERT_EQ(out.at("y").type, f32({32}));
      for (size_t c = 0; c < 32; ++c) EXPECT_NEAR(out.at("y").get(static_cast<int64_t>(c)), want[c], 1e-3) << c;
    }
  }
}
