// Channel-blocked storage of convolution data (runtime/cpu/blocked_layout.h): the body
// rewrite computes what the body computes, the choice of blocked values follows its rules,
// and a ResNet training step with blocked activations matches the reference interpreter.
#include <gtest/gtest.h>

#include "cpu_test_util.h"

#include <cmath>

#include "backends/cpu/executable.h"
#include "ir/printer.h"
#include "models/families.h"
#include "passes/train_step.h"
#include "runtime/cpu/blocked_layout.h"

using namespace weft;

namespace {

using ir::OpKind;
using ir::Shape;
using Ints = std::vector<int64_t>;

ir::TensorType f32(Shape shape) { return {ir::DType::f32, std::move(shape)}; }

/// Element (n, h, w, c) of channels-last `t` [N, H, W, C] stored blocked [N, C/16, H, W, 16].
ir::TensorData toBlocked(const ir::TensorData& t) {
  const Shape& s = t.type.shape;
  ir::TensorData out(f32(*cpu::blockedShape(s)));
  const int64_t n = s[0], h = s[1], w = s[2], c = s[3], blocks = c / 16;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        for (int64_t k = 0; k < c; ++k)
          out.set((((i * blocks + k / 16) * h + y) * w + x) * 16 + k % 16, t.get(((i * h + y) * w + x) * c + k));
  return out;
}

/// A batch norm's statistics and apply over x [2, 3, 4, 32], as fused bodies hold them:
/// per-channel sums (kept dims and dropped), a scale from a [32] vector, relu.
ir::Graph batchNormBody() {
  ir::Graph g("bn");
  ir::ValueId x = g.addInput("x", f32({2, 3, 4, 32}));
  ir::ValueId gamma = g.addInput("gamma", f32({32}));
  ir::ValueId sum = g.addOp(OpKind::ReduceSum, {x}, {{"axes", Ints{0, 1, 2}}, {"keepdims", int64_t{1}}});
  ir::ValueId centered = g.addOp(OpKind::Sub, {x, sum});
  ir::ValueId scale = g.addOp(OpKind::Reshape, {gamma}, {{"shape", Ints{1, 1, 1, 32}}});
  ir::ValueId scaled = g.addOp(OpKind::Mul, {centered, scale});
  ir::ValueId shifted = g.addOp(OpKind::Add, {scaled, gamma});  // a [32] operand broadcast by rank
  ir::ValueId zero = g.addConstant(std::make_shared<ir::TensorData>(f32({})));
  g.addOutput("y", g.addOp(OpKind::Maximum, {shifted, zero}));
  return g;
}

/// Compiles `model`'s Adam training step, checks one run against the reference; returns the
/// compile stats.
cpu::CompileStats expectTrainingStepMatchesReference(const ir::Graph& model) {
  ir::Graph step = passes::buildTrainStep(model, passes::TrainConfig{});
  reference::TensorMap feeds = cpu::testing::trainingBatch(step, 1);
  cpu::Executable exe = cpu::compile(step);
  cpu::testing::expectCloseToLargest(exe.run(feeds), reference::run(step, feeds), 2e-4);
  return exe.stats();
}

}  // namespace

TEST(BlockedLayout, ShapesSplitTheChannelsIntoBlocksOf16) {
  EXPECT_EQ(cpu::blockedShape({32, 16, 16, 64}), (Shape{32, 4, 16, 16, 16}));
  EXPECT_EQ(cpu::blockedShape({1, 1, 1, 32}), (Shape{1, 2, 1, 1, 16}));
  EXPECT_EQ(cpu::blockedShape({2, 5, 5, 1}), (Shape{2, 1, 5, 5, 1}));
  EXPECT_FALSE(cpu::blockedShape({2, 5, 5, 3}));
  EXPECT_FALSE(cpu::blockedShape({2, 32}));
  EXPECT_TRUE(cpu::blockingMovesData({2, 4, 4, 32}));
  EXPECT_FALSE(cpu::blockingMovesData({2, 4, 4, 16}));  // one block: the same order
  EXPECT_FALSE(cpu::blockingMovesData({2, 1, 1, 64}));  // one position per image
}

TEST(BlockedLayout, BodyOverBlockedDataComputesTheSameElements) {
  ir::Graph body = batchNormBody();
  auto blocked = cpu::blockedBody(body);
  ASSERT_TRUE(blocked) << ir::printGraph(body);
  EXPECT_EQ(blocked->type(blocked->outputs()[0].value).shape, (Shape{2, 2, 3, 4, 16}));
  reference::TensorMap feeds = cpu::testing::sineFeeds(body);
  reference::TensorMap want = reference::run(body, feeds);
  feeds["x"] = toBlocked(feeds["x"]);
  reference::TensorMap got = reference::run(*blocked, feeds);
  EXPECT_EQ(got.at("y").bytes, toBlocked(want.at("y")).bytes);
}

TEST(BlockedLayout, ReductionsDroppingDimsKeepTheirBytes) {
  ir::Graph g("sums");
  ir::ValueId x = g.addInput("x", f32({2, 3, 4, 32}));
  g.addOutput("s", g.addOp(OpKind::ReduceSum, {x}, {{"axes", Ints{0, 1, 2}}, {"keepdims", int64_t{0}}}));
  auto blocked = cpu::blockedBody(g);
  ASSERT_TRUE(blocked);
  reference::TensorMap feeds = cpu::testing::sineFeeds(g);
  reference::TensorMap want = reference::run(g, feeds);
  feeds["x"] = toBlocked(feeds["x"]);
  const ir::TensorData got = reference::run(*blocked, feeds).at("s");
  EXPECT_EQ(got.type.shape, (Shape{2, 16}));
  for (int64_t i = 0; i < 32; ++i) EXPECT_NEAR(got.get(i), want.at("s").get(i), 1e-4);

  // Summing over the batch only leaves [H, W, C], whose blocked order differs: the sum
  // reads the blocked data in row-major order.
  ir::Graph overBatch("batch_sum");
  ir::ValueId y = overBatch.addInput("x", f32({2, 3, 4, 32}));
  overBatch.addOutput("s", overBatch.addOp(OpKind::ReduceSum, {y}, {{"axes", Ints{0}}, {"keepdims", int64_t{0}}}));
  auto rowMajor = cpu::blockedBody(overBatch);
  ASSERT_TRUE(rowMajor);
  reference::TensorMap batchFeeds = cpu::testing::sineFeeds(overBatch);
  reference::TensorMap batchWant = reference::run(overBatch, batchFeeds);
  batchFeeds["x"] = toBlocked(batchFeeds["x"]);
  EXPECT_EQ(reference::run(*rowMajor, batchFeeds).at("s"), batchWant.at("s"));
}

TEST(BlockedLayout, MovementOfDataIndexesThroughTheRowMajorOrder) {
  // A strided slice of blocked data (a stride-2 1x1 conv's input, as a matmul reads it) and
  // a pad back into blocked data (its gradient): both index through the row-major order.
  ir::Graph g("slice_pad");
  ir::ValueId x = g.addInput("x", f32({2, 4, 4, 32}));
  ir::ValueId half = g.addOp(OpKind::Slice, {x}, {{"start", Ints{0, 0, 0, 0}}, {"limit", Ints{2, 3, 3, 32}},
                                                  {"stride", Ints{1, 2, 2, 1}}});
  ir::ValueId rows = g.addOp(OpKind::Reshape, {half}, {{"shape", Ints{8, 32}}});
  ir::ValueId back = g.addOp(OpKind::Reshape, {rows}, {{"shape", Ints{2, 2, 1, 2, 1, 32}}});
  ir::ValueId padded = g.addOp(OpKind::Pad, {back}, {{"low", Ints{0, 0, 0, 0, 0, 0}}, {"high", Ints{0, 0, 1, 0, 1, 0}},
                                                     {"value", 0.0}});
  g.addOutput("y", g.addOp(OpKind::Reshape, {padded}, {{"shape", Ints{2, 4, 4, 32}}}));
  auto blocked = cpu::blockedBody(g);
  ASSERT_TRUE(blocked) << ir::printGraph(g);
  reference::TensorMap feeds = cpu::testing::sineFeeds(g);
  reference::TensorMap want = reference::run(g, feeds);
  feeds["x"] = toBlocked(feeds["x"]);
  EXPECT_EQ(reference::run(*blocked, feeds).at("y").bytes, toBlocked(want.at("y")).bytes);

  ir::Graph odd("odd_channels");  // 24 channels have no blocked view
  ir::ValueId z = odd.addInput("x", f32({2, 3, 4, 24}));
  odd.addOutput("y", odd.addOp(OpKind::Neg, {z}));
  EXPECT_FALSE(cpu::blockedBody(odd));
}

TEST(BlockedLayout, ResnetTrainingStepWithBlockedActivationsMatchesTheReference) {
  if (!cpu::testing::hasAvx512()) GTEST_SKIP() << cpu::testing::kNeedsAvx512;
  const cpu::testing::OneDnnWinogradWhereItHasIt oneDnnWinograd;
  // Two blocks of 32 and 64 channels on 8x8 planes: Winograd convolutions, batch norms and
  // residual adds over blocked data, a stride-2 block whose shortcut reads it too.
  models::ResnetConfig c{.batch = 2, .size = 8, .stem = 32, .blocks = {{32, 1}, {64, 2}}, .classes = 5};
  cpu::CompileStats stats = expectTrainingStepMatchesReference(models::buildResnet("resnet_blocked", c));
  EXPECT_GT(stats.blockedValues, 4);
  EXPECT_GT(stats.winogradSteps, 0);
}

TEST(BlockedLayout, DdpmTrainingStepWithBlockedFusedConvolutionsMatchesTheReference) {
  if (!cpu::testing::hasAvx512()) GTEST_SKIP() << cpu::testing::kNeedsAvx512;
  // Convolutions fused with their bias (oneDNN's bias argument) take blocked data too; the
  // group norms' sums and the SiLUs around them run over the blocked views. No convolution
  // converts data into copies the arena has no room for (the scratch stays empty).
  models::DdpmConfig c{.batch = 2, .size = 8, .c1 = 32, .c2 = 64, .temb = 16, .groups = 4, .steps = 10};
  cpu::CompileStats stats = expectTrainingStepMatchesReference(models::buildDdpm("ddpm_blocked", c));
  EXPECT_GT(stats.blockedValues, 4);
  EXPECT_EQ(stats.scratchBytes, 0);
}

TEST(BlockedLayout, PoolsBetweenConvolutionsReadAndWriteBlockedData) {
  if (!cpu::testing::hasAvx512()) GTEST_SKIP() << cpu::testing::kNeedsAvx512;
  const cpu::testing::OneDnnWinogradWhereItHasIt oneDnnWinograd;
  // Channels-last x [2, 10, 10, 32] -> conv -> avg_pool 2x2 -> conv -> max_pool 3x3 (stride 2,
  // padding 1) -> y: the conv results and the average pool's are stored blocked; the max
  // pool (a native step) reads blocked data and writes the channels-last output.
  ir::Graph g("conv_pools");
  auto conv = [&g](ir::ValueId x, const std::string& w) {
    return g.addOp(OpKind::Conv, {x, g.addInput(w, f32({32, 32, 3, 3}))},
                   {{"channels_last", int64_t{1}}, {"stride", Ints{1, 1}}, {"padding", Ints{1, 1}},
                    {"dilation", Ints{1, 1}}, {"groups", int64_t{1}}});
  };
  auto pool = [&g](OpKind op, ir::ValueId x, int64_t window, int64_t stride, int64_t padding) {
    return g.addOp(op, {x}, {{"channels_last", int64_t{1}}, {"window", Ints{window, window}},
                             {"stride", Ints{stride, stride}}, {"padding", Ints{padding, padding}}});
  };
  ir::ValueId a = conv(g.addInput("x", f32({2, 10, 10, 32})), "w1");
  ir::ValueId b = conv(pool(OpKind::AvgPool, a, 2, 2, 0), "w2");
  g.addOutput("y", pool(OpKind::MaxPool, b, 3, 2, 1));

  reference::TensorMap feeds = cpu::testing::sineFeeds(g);
  cpu::CompileOptions options;
  options.optimize = false;
  cpu::Executable exe = cpu::compile(g, options);
  cpu::testing::expectCloseToLargest(exe.run(feeds), reference::run(g, feeds));
  EXPECT_EQ(exe.stats().blockedValues, 3);
  EXPECT_EQ(exe.stats().onednnPrimitives, 3);
  EXPECT_EQ(exe.stats().nativeSteps, 1);

  // A pool of channels-last data (the input x) into a blocked result read by a convolution.
  ir::Graph h("pool_into_blocked");
  ir::ValueId pooled = h.addOp(OpKind::MaxPool, {h.addInput("x", f32({2, 10, 10, 32}))},
                               {{"channels_last", int64_t{1}}, {"window", Ints{2, 2}}, {"stride", Ints{2, 2}},
                                {"padding", Ints{0, 0}}});
  h.addOutput("y", h.addOp(OpKind::Conv, {pooled, h.addInput("w", f32({32, 32, 3, 3}))},
                           {{"channels_last", int64_t{1}}, {"stride", Ints{1, 1}}, {"padding", Ints{1, 1}},
                            {"dilation", Ints{1, 1}}, {"groups", int64_t{1}}}));
  reference::TensorMap hFeeds = cpu::testing::sineFeeds(h);
  cpu::Executable hExe = cpu::compile(h, options);
  cpu::testing::expectCloseToLargest(hExe.run(hFeeds), reference::run(h, hFeeds));
  EXPECT_EQ(hExe.stats().blockedValues, 1);
}

TEST(BlockedLayout, LenetInferenceKeepsItsConvolutionsAndPoolsBlocked) {
  if (!cpu::testing::hasAvx512()) GTEST_SKIP() << cpu::testing::kNeedsAvx512;
  // conv1 -> max_pool -> conv2 -> max_pool: conv2's result and the first pool's, which the
  // native step of conv1 and its pool (native_conv_pool.h) writes blocked; conv1's result is
  // never written.
  models::LenetConfig c{.batch = 2, .size = 14, .c1 = 32, .c2 = 32, .hidden = 8, .classes = 5, .training = false};
  ir::Graph g = models::buildLenet("lenet_blocked", c);
  reference::TensorMap feeds = cpu::testing::sineFeeds(g);
  cpu::Executable exe = cpu::compile(g);
  cpu::testing::expectCloseToLargest(exe.run(feeds), reference::run(g, feeds), 2e-4);
  EXPECT_EQ(exe.stats().blockedValues, 2);
}

TEST(BlockedLayout, ConcatsAndFewChannelConvolutionsTakeBlockedData) {
  if (!cpu::testing::hasAvx512()) GTEST_SKIP() << cpu::testing::kNeedsAvx512;
  // a = conv(x) stays blocked, b = conv(x) is an output (channels-last); their concat c is
  // stored blocked from both, and the native convolution to one channel and the native
  // weight gradient to one channel read it blocked, as the direct conv d does.
  ir::Graph g("concat_blocked");
  ir::Attrs attrs{{"channels_last", int64_t{1}}, {"stride", Ints{1, 1}}, {"padding", Ints{1, 1}},
                  {"dilation", Ints{1, 1}}, {"groups", int64_t{1}}};
  auto conv = [&](ir::ValueId x, const std::string& w, int64_t out, int64_t in) {
    return g.addOp(OpKind::Conv, {x, g.addInput(w, f32({out, in, 3, 3}))}, attrs);
  };
  ir::ValueId x = g.addInput("x", f32({2, 6, 6, 32}));
  ir::ValueId a = conv(x, "w1", 32, 32), b = conv(x, "w2", 32, 32);
  ir::ValueId c = g.addOp(OpKind::Concat, {a, b}, {{"axis", int64_t{3}}});
  ir::Attrs gradAttrs = attrs;
  gradAttrs["kernel"] = Ints{3, 3};
  g.addOutput("b", b);
  g.addOutput("d", conv(c, "w3", 32, 64));
  g.addOutput("y", conv(c, "w4", 1, 64));
  g.addOutput("dw", g.addOp(OpKind::ConvWeightGrad, {c, g.addInput("dy", f32({2, 6, 6, 1}))}, gradAttrs));

  reference::TensorMap feeds = cpu::testing::sineFeeds(g);
  cpu::CompileOptions options;
  options.optimize = false;
  cpu::Executable exe = cpu::compile(g, options);
  cpu::testing::expectCloseToLargest(exe.run(feeds), reference::run(g, feeds));
  EXPECT_EQ(exe.stats().blockedValues, 2);  // a and c
  EXPECT_EQ(exe.stats().nativeSteps, 3);     // the concat, y and dw
}

TEST(BlockedLayout, ConvolutionsAddingAResidualTakeItBlocked) {
  if (!cpu::testing::hasAvx512()) GTEST_SKIP() << cpu::testing::kNeedsAvx512;
  // y = relu(conv1x1(x) + b + r) with r = conv(x): oneDNN's sum post-op adds r from the
  // destination, both blocked; x, r and the result stay blocked for the convolution after.
  ir::Graph g("residual_blocked");
  ir::Attrs attrs{{"channels_last", int64_t{1}}, {"stride", Ints{1, 1}}, {"padding", Ints{1, 1}},
                  {"dilation", Ints{1, 1}}, {"groups", int64_t{1}}};
  ir::Attrs pointwise = attrs;
  pointwise["padding"] = Ints{0, 0};
  ir::ValueId x = g.addOp(OpKind::Conv, {g.addInput("in", f32({2, 6, 6, 32})), g.addInput("w0", f32({32, 32, 3, 3}))}, attrs);
  ir::ValueId r = g.addOp(OpKind::Conv, {x, g.addInput("w1", f32({32, 32, 3, 3}))}, attrs);
  ir::ValueId skip = g.addOp(OpKind::Conv, {x, g.addInput("w2", f32({32, 32, 1, 1}))}, pointwise);
  ir::ValueId bias = g.addOp(OpKind::Reshape, {g.addInput("b", f32({32}))}, {{"shape", Ints{1, 1, 1, 32}}});
  ir::ValueId sum = g.addOp(OpKind::Add, {g.addOp(OpKind::Add, {skip, bias}), r});
  ir::ValueId zero = g.addConstant(std::make_shared<ir::TensorData>(f32({})));
  ir::ValueId y = g.addOp(OpKind::Maximum, {sum, zero});
  g.addOutput("z", g.addOp(OpKind::Conv, {y, g.addInput("w3", f32({32, 32, 3, 3}))}, attrs));

  reference::TensorMap feeds = cpu::testing::sineFeeds(g);
  cpu::Executable exe = cpu::compile(g);
  cpu::testing::expectCloseToLargest(exe.run(feeds), reference::run(g, feeds), 2e-4);
  EXPECT_EQ(exe.stats().blockedValues, 3);  // x, r and y
  EXPECT_EQ(exe.stats().generatedKernels, 0);  // bias, residual and relu run as oneDNN post-ops
}
