// Causal attention's products as the triangular matmul step runs them
// (runtime/cpu/native_triangular_matmul.h, hints from the triangular-matmuls pass) in an
// Adam training step's forward pass, its backward pass as the causal attention gradient
// step, and inference's whole attention as the causal attention step
// (runtime/cpu/native_attention.h, the fuse-attention pass), both computing with the same
// tiles: small GPTs whose sizes leave partial row tiles and panels, and head widths below, at
// and above the 16-wide blocks of the transposed packing, compute as the reference
// interpreter does.
#include <gtest/gtest.h>

#include "cpu_test_util.h"

#include "backends/cpu/executable.h"
#include "models/families.h"
#include "runtime/cpu/native_attention.h"
#include "runtime/cpu/native_triangular_matmul.h"

using namespace weft;

namespace {

struct Sizes {
  int64_t seq, dim, heads;
};

ir::Graph smallGpt(const Sizes& s, bool training) {
  models::GptConfig c{.batch = 2, .seq = s.seq, .dim = s.dim, .heads = s.heads, .ff = 2 * s.dim, .layers = 1};
  c.training = training;
  return models::buildGpt("gpt_small", c);
}

/// The matmul nodes of `g` (plain or fused) that run as the triangular matmul step.
int triangularSteps(const ir::Graph& g) {
  int count = 0;
  for (ir::ValueId v = 0; v < g.size(); ++v) count += cpu::runsTriangularMatmul(g, v) ? 1 : 0;
  return count;
}

/// The attention nodes of `g` that run as the causal attention step.
int attentionSteps(const ir::Graph& g) {
  int count = 0;
  for (ir::ValueId v = 0; v < g.size(); ++v) count += cpu::runsCausalAttention(g, v) ? 1 : 0;
  return count;
}

/// The attention gradient nodes of `g` that run as the causal attention gradient step.
int attentionGradSteps(const ir::Graph& g) {
  int count = 0;
  for (ir::ValueId v = 0; v < g.size(); ++v) count += cpu::runsCausalAttentionGrad(g, v) ? 1 : 0;
  return count;
}

class TriangularMatmul : public ::testing::TestWithParam<Sizes> {};

TEST_P(TriangularMatmul, InferenceRunsAsOneAttentionStepAndMatchesTheReference) {
  ir::Graph g = smallGpt(GetParam(), false);
  if (cpu::hostTileIsa() == cpu::TileIsa::plain) GTEST_SKIP() << "the steps need AVX-512 or AVX2";
  const ir::Graph optimized = cpu::optimizeForCpu(g);
  EXPECT_EQ(attentionSteps(optimized), 1);  // scores, softmax and probabilities @ v
  EXPECT_EQ(triangularSteps(optimized), 0);
  cpu::Executable exe = cpu::compile(g);
  reference::TensorMap feeds = cpu::testing::sineFeeds(g);
  cpu::testing::expectCloseToLargest(exe.run(feeds), reference::run(g, feeds), 1e-5);
}

TEST_P(TriangularMatmul, TrainingStepMatchesTheReference) {
  passes::TrainConfig config;
  config.optimizer = passes::parseOptimizer("adam");
  ir::Graph g = passes::buildTrainStep(smallGpt(GetParam(), true), config);
  if (cpu::hostTileIsa() == cpu::TileIsa::plain) GTEST_SKIP() << "the step needs AVX-512 or AVX2";
  const ir::Graph optimized = cpu::optimizeForCpu(g);
  EXPECT_EQ(attentionSteps(optimized), 1);       // the scores and softmax, writing the probabilities
  EXPECT_EQ(triangularSteps(optimized), 1);      // p @ v: the backward pass reads p
  EXPECT_EQ(attentionGradSteps(optimized), 1);   // dy v^T, ds, dq, dk, dv
  cpu::Executable exe = cpu::compile(g);
  // Not the key biases: softmax ignores them, so their gradients are rounding noise that
  // Adam's first step turns into +-lr (generated_steps_test.cpp).
  cpu::testing::expectStepMatchesReference(exe, g, 1e-4, "qkv.bias");
}

// seq 37: a last row tile of 1 and a last panel 5 wide; head width 12 (packed, below 16),
// 32 (rows read in place, 16 x 16 transposes) and 40 (partial panel of v, transposes plus a
// rest of 8).
INSTANTIATE_TEST_SUITE_P(Sizes, TriangularMatmul,
                         ::testing::Values(Sizes{37, 24, 2}, Sizes{70, 64, 2}, Sizes{33, 80, 2}),
                         [](const ::testing::TestParamInfo<Sizes>& info) {
                           return "seq" + std::to_string(info.param.seq) + "_head" +
                                  std::to_string(info.param.dim / info.param.heads);
                         });

}  // namespace
