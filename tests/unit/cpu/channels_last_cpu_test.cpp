// Channels-last convolutions on oneDNN: data read and written in place ([N, H, W, C] buffers
// seen as channels-first dims), with a bias and a residual sum fused, strided gradients whose
// windows reach only a prefix of the data, a one-channel result, pools, and a residual sum
// accumulated in place; each computes what the reference interpreter computes, with no
// windowed op left to reference kernels, weft's or oneDNN's.
#include <gtest/gtest.h>

#include "backends/cpu/executable.h"
#include "cpu_test_util.h"
#include "runtime/cpu/host_isa.h"
#include "runtime/cpu/memory_plan.h"
#include "runtime/cpu/native_few_channels.h"

using namespace weft;

namespace {

using ir::OpKind;
using Ints = std::vector<int64_t>;

ir::TensorType f32(ir::Shape shape) { return {ir::DType::f32, std::move(shape)}; }

/// A channels-last conv-family node's attributes.
ir::Attrs convAttrs(int64_t stride, int64_t padding) { return cpu::testing::convAttrs(stride, padding, true); }

/// Compile options with the CPU pipeline run or not (false: the graph is lowered as built).
cpu::CompileOptions optimizing(bool optimize) {
  cpu::CompileOptions options;
  options.optimize = optimize;
  return options;
}

void expectMatchesReference(const ir::Graph& g, bool optimize) {
  reference::TensorMap feeds = cpu::testing::sineFeeds(g);
  cpu::Executable exe = cpu::compile(g, optimizing(optimize));
  for (const std::string& step : exe.stats().referenceSteps)  // elementwise ops may, unfused
    EXPECT_TRUE(step.find("conv") == std::string::npos && step.find("pool") == std::string::npos) << step;
  EXPECT_EQ(exe.stats().onednnReferenceSteps, std::vector<std::string>{});  // nor to oneDNN's
  auto got = exe.run(feeds);
  auto want = reference::run(g, feeds);
  cpu::testing::expectCloseToLargest(got, want);
}

}  // namespace

TEST(ChannelsLastCpu, ConvWithBiasReluAndResidualSum) {
  ir::Graph g("fused");
  ir::ValueId x = g.addInput("x", f32({2, 7, 7, 16}));  // planes too small for Winograd: in place
  ir::ValueId y = g.addOp(OpKind::Conv, {x, g.addInput("w", f32({16, 16, 3, 3}))}, convAttrs(1, 1));
  ir::ValueId biased = g.addOp(OpKind::Add, {y, g.addInput("b", f32({16}))});
  ir::ValueId summed = g.addOp(OpKind::Add, {biased, x});
  g.addOutput("y", g.addOp(OpKind::Maximum, {summed, g.addConstant(std::make_shared<ir::TensorData>(f32({})))}));
  expectMatchesReference(g, true);  // fuse-epilogues makes one conv+bias+sum+relu step
}

TEST(ChannelsLastCpu, StridedGradientsAndOneChannelResult) {
  ir::Graph g("grads");
  ir::ValueId x = g.addInput("x", f32({2, 12, 12, 8}));  // stride 2 windows reach rows 0..10
  ir::ValueId dy = g.addInput("dy", f32({2, 5, 5, 16}));
  ir::ValueId w = g.addInput("w", f32({16, 8, 3, 3}));
  ir::Attrs weightGrad = convAttrs(2, 0);
  weightGrad["kernel"] = Ints{3, 3};
  g.addOutput("dw", g.addOp(OpKind::ConvWeightGrad, {x, dy}, weightGrad));
  ir::Attrs dataGrad = convAttrs(2, 0);
  dataGrad["output_padding"] = Ints{1, 1};  // the last row and column no window reaches
  g.addOutput("dx", g.addOp(OpKind::ConvTranspose, {dy, w}, dataGrad));
  g.addOutput("gray", g.addOp(OpKind::Conv, {x, g.addInput("w1", f32({1, 8, 3, 3}))}, convAttrs(1, 1)));
  expectMatchesReference(g, false);
}

TEST(ChannelsLastCpu, PoolsAndTheirGradient) {
  // 2x2 windows tiling the image (with a last row and column no window covers) and
  // overlapping padded 3x3 windows; ties in x (every value repeats) go to the first maximum.
  for (bool tiled : {true, false}) {
    SCOPED_TRACE(tiled ? "2x2 stride 2" : "3x3 stride 2 padding 1");
    ir::Graph g("pools");
    ir::ValueId x = g.addInput("x", f32({2, 9, 9, 24}));
    ir::Attrs attrs{{"window", Ints{tiled ? 2 : 3, tiled ? 2 : 3}},
                    {"stride", Ints{2, 2}},
                    {"padding", Ints{tiled ? 0 : 1, tiled ? 0 : 1}},
                    {"channels_last", int64_t{1}}};
    ir::ValueId rounded = g.addOp(OpKind::Floor, {g.addOp(OpKind::Mul, {x, g.addInput("k", f32({}))})});
    ir::ValueId pooled = g.addOp(OpKind::MaxPool, {rounded}, attrs);
    g.addOutput("max", pooled);
    g.addOutput("avg", g.addOp(OpKind::AvgPool, {rounded}, attrs));
    g.addOutput("dx", g.addOp(OpKind::MaxPoolGrad, {rounded, g.addInput("dy", g.type(pooled))}, attrs));
    expectMatchesReference(g, false);
  }
}

namespace {

/// -x as a generated kernel's result (an arena value).
ir::ValueId negation(ir::Graph& g, ir::ValueId x) {
  return cpu::testing::addFused(g, "loop", {x}, [](ir::Graph& b, const std::vector<ir::ValueId>& in) {
    return b.addOp(OpKind::Neg, {in[0]});
  });
}

}  // namespace

TEST(ChannelsLastCpu, ResidualSumOverwritesTheResidualItAdds) {
  // y = conv(x, w) + r, r computed here and read by nothing else: the step's sum post-op
  // accumulates onto r's own bytes (no copy of r into the result first).
  ir::Graph g("residual");
  ir::ValueId x = g.addInput("x", f32({2, 10, 10, 16}));
  ir::ValueId w = g.addInput("w", f32({16, 16, 3, 3}));
  ir::ValueId r = negation(g, x);
  ir::ValueId y = cpu::testing::addFused(g, "conv", {x, w, r}, [](ir::Graph& b, const std::vector<ir::ValueId>& in) {
    return b.addOp(OpKind::Add, {b.addOp(OpKind::Conv, {in[0], in[1]}, convAttrs(1, 1)), in[2]});
  });
  g.addOutput("y", g.addOp(OpKind::Neg, {y}));
  EXPECT_TRUE(cpu::readsOperandAtOwnIndex(g, y, 2));
  EXPECT_FALSE(cpu::readsOperandAtOwnIndex(g, y, 0));  // the convolution reads x's windows
  cpu::MemoryPlan plan = cpu::planMemory(g);
  EXPECT_EQ(plan.values[static_cast<size_t>(y)].offset, plan.values[static_cast<size_t>(r)].offset);
  expectMatchesReference(g, false);
}

TEST(ChannelsLastCpu, ResidualReadTwiceOrAsBiasIsNotOverwritten) {
  // r added twice (the second add a binary post-op reading r while the result is written), or
  // a per-channel operand (the convolution's bias): no sum post-op owns it, it keeps its bytes.
  ir::Graph g("twice");
  ir::ValueId x = g.addInput("x", f32({1, 4, 4, 8}));
  ir::ValueId w = g.addInput("w", f32({8, 8, 3, 3}));
  ir::ValueId r = negation(g, x);
  ir::ValueId twice = cpu::testing::addFused(g, "conv", {x, w, r}, [](ir::Graph& b, const std::vector<ir::ValueId>& in) {
    ir::ValueId y = b.addOp(OpKind::Add, {b.addOp(OpKind::Conv, {in[0], in[1]}, convAttrs(1, 1)), in[2]});
    return b.addOp(OpKind::Add, {y, in[2]});
  });
  EXPECT_FALSE(cpu::readsOperandAtOwnIndex(g, twice, 2));
  // One position: the bias [1,1,1,8] has the result's full shape too, yet it is the bias.
  ir::ValueId small = g.addInput("small", f32({1, 3, 3, 8}));
  ir::ValueId bias = g.addInput("b", f32({1, 1, 1, 8}));
  ir::ValueId residual = negation(g, g.addInput("r1", f32({1, 1, 1, 8})));
  ir::ValueId biased = cpu::testing::addFused(g, "conv", {small, w, bias, residual}, [](ir::Graph& b, const std::vector<ir::ValueId>& in) {
    ir::ValueId y = b.addOp(OpKind::Add, {b.addOp(OpKind::Conv, {in[0], in[1]}, convAttrs(1, 0)), in[2]});
    return b.addOp(OpKind::Add, {y, in[3]});
  });
  EXPECT_FALSE(cpu::readsOperandAtOwnIndex(g, biased, 2));  // the bias
  EXPECT_TRUE(cpu::readsOperandAtOwnIndex(g, biased, 3));   // the residual
}

TEST(ChannelsLastCpu, ConvolutionsToFewChannelsRunNatively) {
  if (!cpu::hostHasAvx2Fma()) GTEST_SKIP() << "the native step needs AVX2 or AVX-512";
  // Up to 3 result channels, up to 64 values per input position (channels x taps): one to four
  // registers of taps, blocks of positions that do not divide the image, taps past the edges
  // (padding), positions no tap reaches (output_padding, strides), dilation, an asymmetric
  // kernel; conv_transpose (w [C, O, KH, KW]) and conv (w [O, C, KH, KW]).
  struct Case {
    OpKind op;
    ir::Shape x, w;
    Ints stride, padding, dilation, outputPadding;
  };
  const Case cases[] = {
      {OpKind::ConvTranspose, {3, 7, 7, 24}, {24, 1, 4, 4}, {2, 2}, {1, 1}, {1, 1}, {0, 0}},  // dcgan's image layer
      {OpKind::ConvTranspose, {2, 5, 6, 16}, {16, 2, 3, 3}, {2, 2}, {0, 0}, {2, 1}, {1, 1}},
      {OpKind::ConvTranspose, {2, 4, 5, 9}, {9, 3, 4, 4}, {3, 3}, {2, 2}, {1, 1}, {0, 0}},
      {OpKind::ConvTranspose, {1, 6, 6, 32}, {32, 3, 3, 5}, {1, 2}, {1, 2}, {1, 1}, {0, 1}},
      {OpKind::ConvTranspose, {2, 3, 3, 8}, {8, 1, 8, 8}, {1, 1}, {3, 3}, {1, 1}, {0, 0}},
      {OpKind::Conv, {3, 9, 9, 32}, {1, 32, 3, 3}, {1, 1}, {1, 1}, {1, 1}, {}},  // ddpm's output layer
      // Convs of 8k input channels gather (interior positions in pairs, 8 to 64 channels,
      // else one at a time): strides, dilation, three result channels, 40 and 72 channels.
      {OpKind::Conv, {2, 12, 13, 16}, {3, 16, 3, 3}, {2, 1}, {1, 2}, {1, 2}, {}},
      {OpKind::Conv, {1, 10, 11, 64}, {2, 64, 3, 2}, {1, 1}, {0, 1}, {1, 1}, {}},
      {OpKind::Conv, {2, 6, 7, 40}, {1, 40, 3, 3}, {1, 1}, {1, 1}, {1, 1}, {}},
      {OpKind::Conv, {1, 5, 5, 72}, {1, 72, 2, 2}, {1, 1}, {0, 0}, {1, 1}, {}},
      {OpKind::Conv, {2, 11, 10, 5}, {3, 5, 4, 4}, {2, 3}, {1, 2}, {1, 1}, {}},
      {OpKind::Conv, {2, 9, 9, 7}, {2, 7, 3, 3}, {1, 1}, {2, 2}, {2, 2}, {}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(ir::opName(c.op)) + " " + ir::shapeStr(c.w));
    ir::Graph g("few");
    ir::Attrs attrs = {{"stride", c.stride},     {"padding", c.padding},   {"dilation", c.dilation},
                       {"groups", int64_t{1}},   {"channels_last", int64_t{1}}};
    if (c.op == OpKind::ConvTranspose) attrs["output_padding"] = c.outputPadding;
    g.addOutput("y", g.addOp(c.op, {g.addInput("x", f32(c.x)), g.addInput("w", f32(c.w))}, attrs));
    cpu::Executable exe = cpu::compile(g, optimizing(false));
    EXPECT_EQ(exe.stats().nativeSteps, 1);
    EXPECT_EQ(exe.stats().onednnPrimitives, 0);
    reference::TensorMap feeds = cpu::testing::sineFeeds(g);
    cpu::testing::expectCloseToLargest(exe.run(feeds), reference::run(g, feeds));
  }
  // A conv fused with a bias (per channel or one value) starts from it; a relu after the
  // bias is more than the native step takes (oneDNN runs it).
  for (int64_t biasSize : {int64_t{2}, int64_t{1}})
    for (bool relu : {false, true}) {
      SCOPED_TRACE("bias " + std::to_string(biasSize) + (relu ? " relu" : ""));
      ir::Graph g("few_fused");
      ir::ValueId y = g.addOp(OpKind::Conv, {g.addInput("x", f32({2, 8, 8, 16})), g.addInput("w", f32({2, 16, 3, 3}))},
                              convAttrs(1, 1));
      y = g.addOp(OpKind::Add, {y, g.addInput("b", f32({biasSize}))});
      if (relu) y = g.addOp(OpKind::Maximum, {y, g.addConstant(std::make_shared<ir::TensorData>(f32({})))});
      g.addOutput("y", y);
      cpu::Executable exe = cpu::compile(g);  // fuse-epilogues makes one fused conv
      EXPECT_EQ(exe.stats().nativeSteps, relu ? 0 : 1);
      EXPECT_EQ(exe.stats().kernels, 1);
      reference::TensorMap feeds = cpu::testing::sineFeeds(g);
      cpu::testing::expectCloseToLargest(exe.run(feeds), reference::run(g, feeds));
    }
  // Four result channels: oneDNN's kernels.
  ir::Graph g("deconv4");
  ir::Attrs attrs = convAttrs(2, 1);
  attrs["output_padding"] = Ints{0, 0};
  g.addOutput("y", g.addOp(OpKind::ConvTranspose, {g.addInput("x", f32({2, 5, 5, 16})), g.addInput("w", f32({16, 4, 4, 4}))},
                           attrs));
  EXPECT_EQ(cpu::compile(g, optimizing(false)).stats().nativeSteps, 0);
}

TEST(ChannelsLastCpu, GatheringConvolutionsToFewChannelsReadChannelBlockedData) {
  if (!cpu::hostHasAvx2Fma()) GTEST_SKIP() << "the native step needs AVX2 or AVX-512";
  // x stored channel-blocked ([C/16, H*W, 16], as on CPUs with 16-channel blocks): the
  // gathering step reads each position's eight channels where the blocks put them.
  ir::Graph g("few_blocked");
  ir::ValueId conv = g.addOp(OpKind::Conv, {g.addInput("x", f32({1, 7, 6, 48})), g.addInput("w", f32({2, 48, 3, 3}))},
                             convAttrs(1, 1));
  g.addOutput("y", conv);
  ASSERT_TRUE(cpu::runsFewChannelConv(g, conv));
  reference::TensorMap feeds = cpu::testing::sineFeeds(g);
  const ir::TensorData& x = feeds.at("x");
  const int64_t positions = 7 * 6, channels = 48;
  std::vector<float> blockedX(static_cast<size_t>(positions * channels));
  for (int64_t p = 0; p < positions; ++p)
    for (int64_t c = 0; c < channels; ++c)
      blockedX[static_cast<size_t>((c / 16) * positions * 16 + p * 16 + c % 16)] = static_cast<float>(x.get(p * channels + c));
  std::vector<bool> blocked(static_cast<size_t>(g.size()), false);
  blocked[static_cast<size_t>(g.node(conv).operands[0])] = true;
  const std::vector<const void*> operands = {blockedX.data(), feeds.at("w").bytes.data()};
  ir::TensorData out(g.type(conv));
  cpu::runFewChannelConv(cpu::NativeCall{g, conv, operands, out.bytes.data(), 0, &blocked});
  reference::TensorMap got;
  got["y"] = std::move(out);
  cpu::testing::expectCloseToLargest(got, reference::run(g, feeds));
}

TEST(ChannelsLastCpu, WeightGradientsToFewChannelsRunNatively) {
  const bool avx2 = cpu::hostHasAvx2Fma();
  if (!cpu::testing::hasAvx512() && !avx2) GTEST_SKIP() << "the native step needs AVX-512 or AVX2";
  // dy with up to 3 channels, x with up to 64 (one to four registers, the last one partly
  // filled), kernels up to 4 wide: taps past the edges (padding), strides, dilation, an
  // asymmetric kernel, one image (no threads) and several. AVX2 takes x of up to 32 channels
  // (one to four registers of eight) and kernels up to 3 wide; oneDNN the others.
  struct Case {
    ir::Shape x;
    int64_t outChannels;
    Ints kernel, stride, padding, dilation;
  };
  const Case cases[] = {
      {{3, 9, 9, 32}, 1, {3, 3}, {1, 1}, {1, 1}, {1, 1}},  // ddpm's output layer
      {{2, 11, 10, 5}, 3, {4, 4}, {2, 3}, {1, 2}, {1, 1}},
      {{2, 9, 9, 50}, 2, {3, 2}, {1, 1}, {2, 0}, {2, 2}},
      {{1, 8, 7, 64}, 1, {2, 4}, {1, 1}, {0, 1}, {1, 1}},
      {{2, 9, 8, 20}, 3, {3, 3}, {2, 1}, {1, 2}, {1, 2}},
      {{3, 7, 9, 8}, 2, {2, 1}, {1, 1}, {0, 0}, {1, 1}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(ir::shapeStr(c.x) + " -> " + std::to_string(c.outChannels) + " channels, kernel " + ir::shapeStr(c.kernel));
    auto outExtent = [&](size_t d) {
      return (c.x[d + 1] + 2 * c.padding[d] - c.dilation[d] * (c.kernel[d] - 1) - 1) / c.stride[d] + 1;
    };
    ir::Graph g("few_grad");
    ir::Attrs attrs = {{"kernel", c.kernel},   {"stride", c.stride}, {"padding", c.padding},
                       {"dilation", c.dilation}, {"groups", int64_t{1}}, {"channels_last", int64_t{1}}};
    ir::ValueId x = g.addInput("x", f32(c.x));
    ir::ValueId dy = g.addInput("dy", f32({c.x[0], outExtent(0), outExtent(1), c.outChannels}));
    g.addOutput("dw", g.addOp(OpKind::ConvWeightGrad, {x, dy}, attrs));
    cpu::Executable exe = cpu::compile(g, optimizing(false));
    // The step picks its kernels by the CPU (host_isa.h), not by the ISA oneDNN is limited to.
    const bool native = cpu::hostHasAvx512() || (c.x[3] <= 32 && c.kernel[1] <= 3);
    EXPECT_EQ(exe.stats().nativeSteps, native ? 1 : 0);
    reference::TensorMap feeds = cpu::testing::sineFeeds(g);
    cpu::testing::expectCloseToLargest(exe.run(feeds), reference::run(g, feeds));
  }
  // Four dy channels: oneDNN's kernels.
  ir::Graph g("grad4");
  ir::Attrs attrs = {{"kernel", Ints{3, 3}},   {"stride", Ints{1, 1}}, {"padding", Ints{1, 1}},
                     {"dilation", Ints{1, 1}}, {"groups", int64_t{1}}, {"channels_last", int64_t{1}}};
  g.addOutput("dw", g.addOp(OpKind::ConvWeightGrad, {g.addInput("x", f32({2, 6, 6, 16})), g.addInput("dy", f32({2, 6, 6, 4}))},
                            attrs));
  EXPECT_EQ(cpu::compile(g, optimizing(false)).stats().nativeSteps, 0);
}
