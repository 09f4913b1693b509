// The native direct weight gradient (runtime/cpu/native_direct_weight_grad.h): strided
// conv_weight_grad nodes compute as the reference interpreter does, with paddings whose taps
// miss x along whole rows, odd sizes, dilation, x channels that are no multiple of the tile's
// 12, dy channels in a lone vector of 16, one image and more images than workers; stride-1
// ones, few channels and grouped ones keep their other steps.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cpu_test_util.h"

#include "backends/cpu/executable.h"
#include "models/families.h"
#include "passes/train_step.h"
#include "runtime/cpu/host_isa.h"
#include "runtime/cpu/native_direct_weight_grad.h"

using namespace weft;

namespace {

using ir::OpKind;
using Ints = std::vector<int64_t>;

struct Case {
  int64_t images, height, width, inputs, outputs;
  Ints kernel, stride, padding, dilation;
};

std::string describe(const Case& k) {
  auto pair = [](const Ints& v) { return std::to_string(v[0]) + "x" + std::to_string(v[1]); };
  return std::to_string(k.images) + " images " + pair({k.height, k.width}) + ", " + std::to_string(k.inputs) + " -> " +
         std::to_string(k.outputs) + ", kernel " + pair(k.kernel) + ", stride " + pair(k.stride) + ", padding " +
         pair(k.padding) + ", dilation " + pair(k.dilation);
}

/// dw = conv_weight_grad(x, dy) for x [images, height, width, inputs] (channels-last) and dy
/// the convolution's result size.
ir::Graph weightGrad(const Case& k) {
  ir::Graph g("direct_weight_grad");
  Ints out(2);
  for (size_t d = 0; d < 2; ++d) {
    const int64_t extent = d == 0 ? k.height : k.width;
    out[d] = (extent + 2 * k.padding[d] - k.dilation[d] * (k.kernel[d] - 1) - 1) / k.stride[d] + 1;
  }
  ir::ValueId x = g.addInput("x", {ir::DType::f32, {k.images, k.height, k.width, k.inputs}});
  ir::ValueId dy = g.addInput("dy", {ir::DType::f32, {k.images, out[0], out[1], k.outputs}});
  ir::Attrs attrs{{"stride", k.stride},   {"padding", k.padding}, {"dilation", k.dilation},
                  {"groups", int64_t{1}}, {"kernel", k.kernel},   {"channels_last", int64_t{1}}};
  g.addOutput("dw", g.addOp(OpKind::ConvWeightGrad, {x, dy}, attrs));
  return g;
}

}  // namespace

TEST(NativeDirectWeightGrad, MatchesTheReference) {
  if (!cpu::hostHasAvx512()) GTEST_SKIP() << "the direct step needs AVX-512";
  const std::vector<Case> cases = {
      {3, 16, 16, 32, 64, {3, 3}, {2, 2}, {1, 1}, {1, 1}},  // resnet's shape, smaller
      {1, 9, 11, 13, 16, {3, 3}, {2, 2}, {1, 1}, {1, 1}},   // odd sizes, 13 = 12 + 1 channels, one image
      {4, 14, 14, 8, 48, {3, 3}, {2, 2}, {0, 0}, {1, 1}},   // 48 = 32 + a lone vector of 16
      {2, 12, 10, 24, 32, {3, 2}, {2, 1}, {2, 0}, {1, 1}},  // stride 2 down, 1 across; padding reaching a whole row
      {2, 13, 13, 16, 16, {3, 3}, {2, 3}, {2, 1}, {2, 2}},  // dilation
      {5, 7, 7, 20, 32, {1, 1}, {2, 2}, {0, 0}, {1, 1}},    // a 1x1 kernel
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(describe(k));
    ir::Graph g = weightGrad(k);
    ASSERT_TRUE(cpu::runsDirectWeightGrad(g, g.outputs()[0].value));
    cpu::CompileOptions options;
    options.optimize = false;
    for (int threads : {1, 2, 3}) {
      SCOPED_TRACE(std::to_string(threads) + " threads");
      options.threads = threads;
      cpu::Executable exe = cpu::compile(g, options);
      EXPECT_EQ(exe.stats().nativeSteps, 1);
      const reference::TensorMap feeds = cpu::testing::sineFeeds(g);
      cpu::testing::expectCloseToLargest(exe.run(feeds), reference::run(g, feeds), 2e-5);
    }
  }
}

TEST(NativeDirectWeightGrad, OnlyStridedWithEnoughChannels) {
  if (!cpu::hostHasAvx512()) GTEST_SKIP() << "the direct step needs AVX-512";
  const Case strided = {2, 16, 16, 32, 64, {3, 3}, {2, 2}, {1, 1}, {1, 1}};
  auto runs = [](const Case& k) {
    ir::Graph g = weightGrad(k);
    return cpu::runsDirectWeightGrad(g, g.outputs()[0].value);
  };
  EXPECT_TRUE(runs(strided));
  Case k = strided;
  k.stride = {1, 1};  // stride 1: weft's Winograd steps, or oneDNN
  EXPECT_FALSE(runs(k));
  k = strided;
  k.inputs = 4;  // few channels of x: a tile of four rows would waste the loads
  EXPECT_FALSE(runs(k));
  k = strided;
  k.outputs = 40;  // dy's channels in no whole vectors
  EXPECT_FALSE(runs(k));
  k = strided;
  k.kernel = {4, 4};  // weft's phase steps, or oneDNN
  EXPECT_FALSE(runs(k));
}

TEST(NativeDirectWeightGrad, ReadsChannelBlockedData) {
  if (!cpu::testing::hasAvx512()) GTEST_SKIP() << cpu::testing::kNeedsAvx512;
  const cpu::testing::OneDnnWinogradWhereItHasIt oneDnnWinograd;
  // x and dy computed by oneDNN convolutions, read by the weight gradient alone: both are
  // stored channel-blocked (48 channels: three blocks, tiles of 8 of x's channels; dy's 64
  // in two tiles of two vectors).
  ir::Graph g("blocked_direct_weight_grad");
  auto conv = [&g](ir::ValueId in, const std::string& w, int64_t channels) {
    const int64_t inputs = g.type(in).shape[3];
    return g.addOp(OpKind::Conv, {in, g.addInput(w, {ir::DType::f32, {channels, inputs, 3, 3}})},
                   cpu::testing::convAttrs(1, 1, true));
  };
  ir::ValueId x = conv(g.addInput("a", {ir::DType::f32, {3, 12, 12, 16}}), "wx", 48);
  ir::ValueId dy = conv(g.addInput("b", {ir::DType::f32, {3, 6, 6, 16}}), "wd", 64);
  ir::Attrs attrs = cpu::testing::convAttrs(2, 1, true);
  attrs["kernel"] = Ints{3, 3};
  g.addOutput("dw", g.addOp(OpKind::ConvWeightGrad, {x, dy}, attrs));
  ASSERT_TRUE(cpu::runsDirectWeightGrad(g, g.outputs()[0].value));
  cpu::CompileOptions options;
  options.optimize = false;
  cpu::Executable exe = cpu::compile(g, options);
  EXPECT_EQ(exe.stats().blockedValues, 2);
  EXPECT_EQ(exe.stats().nativeSteps, 1);
  const reference::TensorMap feeds = cpu::testing::sineFeeds(g);
  cpu::testing::expectCloseToLargest(exe.run(feeds), reference::run(g, feeds), 2e-5);
}

TEST(NativeDirectWeightGrad, ResnetTrainingStepMatchesTheReference) {
  if (!cpu::hostHasAvx512()) GTEST_SKIP() << "the direct step needs AVX-512";
  // A stride-2 block (32 -> 64 channels at 8x8 -> 4x4): its 3x3 convolution's weight gradient
  // runs the direct step inside a whole Adam step.
  models::ResnetConfig c{.batch = 2, .size = 8, .stem = 32, .blocks = {{32, 1}, {64, 2}}, .classes = 5};
  ir::Graph step = passes::buildTrainStep(models::buildResnet("resnet_direct", c), passes::TrainConfig{});
  cpu::Executable exe = cpu::compile(step);
  int direct = 0;
  for (ir::ValueId v = 0; v < exe.graph().size(); ++v) direct += cpu::runsDirectWeightGrad(exe.graph(), v);
  EXPECT_EQ(direct, 1);
  const reference::TensorMap feeds = cpu::testing::trainingBatch(step, 1);
  cpu::testing::expectCloseToLargest(exe.run(feeds), reference::run(step, feeds), 2e-4);
}
