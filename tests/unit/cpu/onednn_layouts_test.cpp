// Layout propagation between oneDNN steps (Program::passComputedLayouts): chains of convs
// and pooling pass values on in their blocked layouts, and still compute what the reference
// interpreter computes; values something else reads stay row-major.
#include <gtest/gtest.h>

#include "backends/cpu/executable.h"
#include "cpu_test_util.h"

using namespace weft;

namespace {

using ir::OpKind;
using Ints = std::vector<int64_t>;

ir::TensorType f32(ir::Shape shape) { return {ir::DType::f32, std::move(shape)}; }

ir::ValueId conv(ir::Graph& g, ir::ValueId x, ir::ValueId w) {
  return g.addOp(OpKind::Conv, {x, w},
                 {{"stride", Ints{1, 1}}, {"padding", Ints{1, 1}}, {"dilation", Ints{1, 1}}, {"groups", int64_t{1}}});
}

/// x [2,16,7,7] -> conv 16->32 -> avg_pool 2x2 -> conv 32->32 -> conv 32->32 -> y (planes
/// too small for Winograd: direct convolutions); with `alsoAdded`, the first conv's result is
/// also read by an add (output "sum").
ir::Graph convChain(bool alsoAdded) {
  ir::Graph g("chain");
  ir::ValueId x = g.addInput("x", f32({2, 16, 7, 7}));
  ir::ValueId a = conv(g, x, g.addInput("w1", f32({32, 16, 3, 3})));
  ir::ValueId pooled =
      g.addOp(OpKind::AvgPool, {a}, {{"window", Ints{2, 2}}, {"stride", Ints{2, 2}}, {"padding", Ints{0, 0}}});
  ir::ValueId b = conv(g, pooled, g.addInput("w2", f32({32, 32, 3, 3})));
  g.addOutput("y", conv(g, b, g.addInput("w3", f32({32, 32, 3, 3}))));
  if (alsoAdded) g.addOutput("sum", g.addOp(OpKind::Add, {a, a}));
  return g;
}

/// x [2,16,12,12] -> `count` convs 16->32 of x, each an output: every conv reorders x into
/// its blocked layout and its result back into the row-major output.
ir::Graph parallelConvs(int count) {
  ir::Graph g("parallel");
  ir::ValueId x = g.addInput("x", f32({2, 16, 12, 12}));
  for (int i = 0; i < count; ++i)
    g.addOutput("y" + std::to_string(i), conv(g, x, g.addInput("w" + std::to_string(i), f32({32, 16, 3, 3}))));
  return g;
}

/// Runs `g` on the CPU backend (without the optimizing pipeline) and the reference; returns
/// the compile stats.
cpu::CompileStats expectMatchesReference(const ir::Graph& g) {
  reference::TensorMap feeds = cpu::testing::sineFeeds(g);
  cpu::CompileOptions options;
  options.optimize = false;
  cpu::Executable exe = cpu::compile(g, options);
  auto got = exe.run(feeds);
  auto want = reference::run(g, feeds);
  cpu::testing::expectCloseToLargest(got, want);
  return exe.stats();
}

}  // namespace

TEST(OneDnnLayouts, ConvPoolConvChainsPassBlockedValues) {
  // conv -> pool, pool -> conv and conv -> conv: the output y itself stays row-major.
  EXPECT_EQ(expectMatchesReference(convChain(false)).laidOutValues, 3);
}

TEST(OneDnnLayouts, ValuesReadByOtherStepsStayRowMajor) {
  // The first conv's result is read by the add too, so pooling reads it row-major and
  // computes row-major: only conv -> conv passes.
  EXPECT_EQ(expectMatchesReference(convChain(true)).laidOutValues, 1);
}

TEST(OneDnnLayouts, ConvolutionsConvertInTheirPlannedArenaRegions) {
  // The converted copies of x and of each result live only while their step runs, in the
  // region the memory plan reserved for the step: no scratch area beside the arena.
  cpu::CompileStats three = expectMatchesReference(parallelConvs(3));
  ASSERT_EQ(three.onednnPrimitives, 3);
  EXPECT_EQ(three.scratchBytes, 0);
  const int64_t inputBytes = 2 * 16 * 12 * 12 * 4 + 3 * (32 * 16 * 3 * 3 * 4), outputBytes = 3 * (2 * 32 * 12 * 12 * 4);
  EXPECT_EQ(three.peakBytes, three.arenaBytes + three.persistentBytes + inputBytes + outputBytes);
  // Each reorders x, its weight and its result (row-major <-> blocked), 4-byte elements.
  const int64_t x = 2 * 16 * 12 * 12, w = 32 * 16 * 3 * 3, y = 2 * 32 * 12 * 12;
  EXPECT_EQ(three.convertedBytes, 3 * 4 * (x + w + y));
}

/// x [16,16,64] (1-D) -> x + x -> max_pool_grad with dy: oneDNN reruns the forward pooling
/// into scratch it has no planned region for. With `deadBefore`, a large value dies just
/// before the step and leaves a gap for it.
ir::Graph poolGradAfter(bool deadBefore) {
  ir::Graph g("pool_grad");
  ir::ValueId x = g.addInput("x", f32({16, 16, 64}));
  ir::Attrs attrs{{"window", Ints{2}}, {"stride", Ints{2}}, {"padding", Ints{0}}};
  ir::ValueId dy = g.addInput("dy", f32({16, 16, 32}));
  if (deadBefore) {
    ir::ValueId big = g.addOp(OpKind::Add, {g.addInput("big", f32({64, 16, 64})), g.addInput("big2", f32({64, 16, 64}))});
    ir::ValueId summed = g.addOp(OpKind::ReduceSum, {big}, {{"axes", Ints{0}}, {"keepdims", int64_t{1}}});
    x = g.addOp(OpKind::Add, {x, g.addOp(OpKind::Broadcast, {summed}, {{"shape", Ints{16, 16, 64}}})});
  } else {
    x = g.addOp(OpKind::Add, {x, x});
  }
  g.addOutput("dx", g.addOp(OpKind::MaxPoolGrad, {x, dy}, attrs));
  return g;
}

TEST(OneDnnLayouts, ScratchFitsInArenaGaps) {
  EXPECT_GT(expectMatchesReference(poolGradAfter(false)).scratchBytes, 0);
  EXPECT_EQ(expectMatchesReference(poolGradAfter(true)).scratchBytes, 0);
}
