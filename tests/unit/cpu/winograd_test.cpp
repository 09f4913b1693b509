// Winograd convolutions (runtime/cpu/winograd.h): which conv-family nodes try them, and that
// the forward conv (with bias, residual sum and relu fused), its data gradient and its weight
// gradient compute what the reference interpreter computes, channels-last or not, with the
// conversions in the regions the memory plan reserved.
#include <gtest/gtest.h>

#include "backends/cpu/executable.h"
#include "cpu_test_util.h"
#include "runtime/cpu/aligned_buffer.h"
#include "runtime/cpu/onednn_ops.h"
#include "runtime/cpu/winograd.h"

using namespace weft;

namespace {

using ir::OpKind;
using Ints = std::vector<int64_t>;

ir::TensorType f32(ir::Shape shape) { return {ir::DType::f32, std::move(shape)}; }

/// A padding-1 conv-family node's attributes.
ir::Attrs convAttrs(int64_t stride, bool channelsLast) { return cpu::testing::convAttrs(stride, 1, channelsLast); }

/// The data shape [N, C, H, W], or [N, H, W, C] when `channelsLast`.
ir::Shape data(int64_t n, int64_t c, int64_t hw, bool channelsLast) {
  return channelsLast ? ir::Shape{n, hw, hw, c} : ir::Shape{n, c, hw, hw};
}

/// A conv (bias, residual sum, relu), its data gradient and its weight gradient over
/// `channels` channels of `hw` x `hw` planes. With `roomFirst`, x is first offset by the sum
/// of a larger value that dies before the convolutions run, leaving them room in the arena.
ir::Graph convAndGradients(int64_t channels, int64_t hw, bool channelsLast, bool roomFirst = false) {
  ir::Graph g("wino");
  ir::ValueId x = g.addInput("x", f32(data(2, channels, hw, channelsLast)));
  if (roomFirst) {
    ir::ValueId big = g.addInput("big", f32(data(32, channels, hw, channelsLast)));
    ir::ValueId doubled = g.addOp(OpKind::Add, {big, big});
    x = g.addOp(OpKind::Add, {x, g.addOp(OpKind::ReduceSum, {doubled}, {{"axes", Ints{0, 1, 2, 3}}, {"keepdims", int64_t{0}}})});
  }
  ir::ValueId w = g.addInput("w", f32({channels, channels, 3, 3}));
  ir::ValueId y = g.addOp(OpKind::Conv, {x, w}, convAttrs(1, channelsLast));
  ir::ValueId bias = g.addInput("b", f32(channelsLast ? ir::Shape{channels} : ir::Shape{channels, 1, 1}));
  ir::ValueId summed = g.addOp(OpKind::Add, {g.addOp(OpKind::Add, {y, bias}), x});
  g.addOutput("y", g.addOp(OpKind::Maximum, {summed, g.addConstant(std::make_shared<ir::TensorData>(f32({})))}));
  ir::ValueId dy = g.addInput("dy", f32(data(2, channels, hw, channelsLast)));
  ir::Attrs dataGrad = convAttrs(1, channelsLast);
  dataGrad["output_padding"] = Ints{0, 0};
  g.addOutput("dx", g.addOp(OpKind::ConvTranspose, {dy, w}, dataGrad));
  ir::Attrs weightGrad = convAttrs(1, channelsLast);
  weightGrad["kernel"] = Ints{3, 3};
  g.addOutput("dw", g.addOp(OpKind::ConvWeightGrad, {x, dy}, weightGrad));
  return g;
}

/// Compiles `g` (with the optimizing pipeline when `optimize`), checks it against the
/// reference and returns the compile stats.
cpu::CompileStats expectMatchesReference(const ir::Graph& g, bool optimize = true) {
  reference::TensorMap feeds = cpu::testing::sineFeeds(g);
  cpu::CompileOptions options;
  options.optimize = optimize;
  cpu::Executable exe = cpu::compile(g, options);
  EXPECT_EQ(exe.stats().onednnReferenceSteps, std::vector<std::string>{});
  auto got = exe.run(feeds);
  cpu::testing::expectCloseToLargest(got, reference::run(g, feeds));
  return exe.stats();
}

/// Builds the oneDNN step of output `name` of `g` (whose operands are inputs of `g`) with
/// room for `roomBytes` of copies, runs it on `feeds`, checks it against the reference and
/// returns what it describes itself as.
std::string stepWithRoom(const ir::Graph& g, const std::string& name, size_t roomBytes,
                         const reference::TensorMap& feeds) {
  ir::ValueId v = -1;
  for (const auto& out : g.outputs())
    if (out.name == name) v = out.value;
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  cpu::StepLayouts layouts;
  layouts.conversionFits = [roomBytes](size_t bytes) { return bytes <= roomBytes; };
  std::unique_ptr<cpu::OneDnnStep> step = cpu::compileOneDnnNode(g, v, engine, layouts);
  EXPECT_TRUE(step) << name;
  if (!step) return "";
  if (step->describe().find("wino") != std::string::npos) {
    EXPECT_LE(step->scratchBytes(), roomBytes);
  }
  cpu::AlignedBuffer scratch(static_cast<int64_t>(step->scratchBytes()), /*zeroed=*/false);
  step->useScratch(scratch.data());
  std::vector<const void*> operands;
  for (ir::ValueId o : g.node(v).operands) operands.push_back(feeds.at(g.node(o).name).bytes.data());
  ir::TensorData result(g.type(v));
  dnnl::stream stream(engine);
  step->run(operands, result.bytes.data(), stream);
  reference::TensorMap want = reference::run(g, feeds);
  cpu::testing::expectCloseToLargest({{name, result}}, {{name, want.at(name)}});
  return step->describe();
}

}  // namespace

TEST(Winograd, TriedFor3x3Stride1WithChannelsOf16AndPlanesOf8) {
  ir::Graph g("choice");
  ir::Shape x = {2, 32, 16, 16}, w = {32, 32, 3, 3};
  ir::Node conv = g.node(g.addOp(OpKind::Conv, {g.addInput("x", f32(x)), g.addInput("w", f32(w))}, convAttrs(1, false)));
  EXPECT_TRUE(cpu::triesWinograd(conv, x, w));
  ir::Node strided = conv;
  strided.attrs["stride"] = Ints{2, 2};
  EXPECT_FALSE(cpu::triesWinograd(strided, x, w));
  EXPECT_FALSE(cpu::triesWinograd(conv, x, {32, 32, 5, 5}));  // a 5x5 window
  EXPECT_FALSE(cpu::triesWinograd(conv, x, {24, 32, 3, 3}));  // 24 output channels
  ir::Node small = conv;
  small.type.shape = {2, 32, 7, 7};
  EXPECT_FALSE(cpu::triesWinograd(small, {2, 32, 7, 7}, w));  // 7x7 planes
  // A data gradient keeps its planes (padding 1), not a padding-0 conv's 16x16 -> 18x18.
  ir::Attrs dataGrad = convAttrs(1, false);
  dataGrad["output_padding"] = Ints{0, 0};
  ir::Node transposed = g.node(g.addOp(OpKind::ConvTranspose, {g.addInput("dy", f32(x)), g.addInput("wt", f32(w))}, dataGrad));
  EXPECT_TRUE(cpu::triesWinograd(transposed, x, w));
  transposed.attrs["padding"] = Ints{0, 0};
  transposed.type.shape = {2, 32, 18, 18};
  EXPECT_FALSE(cpu::triesWinograd(transposed, x, w));
  // A weight gradient needs 64 input channels, or 32 over planes of 24x24 or more (x [N, H,
  // W, C] channels-last here).
  ir::Node weightGrad;
  weightGrad.op = OpKind::ConvWeightGrad;
  weightGrad.attrs = convAttrs(1, true);
  weightGrad.attrs["kernel"] = Ints{3, 3};
  weightGrad.type = f32({64, 32, 3, 3});
  EXPECT_FALSE(cpu::triesWinograd(weightGrad, {2, 16, 16, 32}, {2, 16, 16, 64}));
  EXPECT_FALSE(cpu::triesWinograd(weightGrad, {2, 23, 24, 32}, {2, 23, 24, 64}));
  EXPECT_TRUE(cpu::triesWinograd(weightGrad, {2, 24, 24, 32}, {2, 24, 24, 64}));
  weightGrad.type = f32({64, 16, 3, 3});
  EXPECT_FALSE(cpu::triesWinograd(weightGrad, {2, 32, 32, 16}, {2, 32, 32, 64}));
  weightGrad.type = f32({64, 64, 3, 3});
  EXPECT_TRUE(cpu::triesWinograd(weightGrad, {2, 16, 16, 64}, {2, 16, 16, 64}));
}

TEST(Winograd, ConvAndGradientsMatchTheReference) {
  if (!cpu::testing::hasAvx512()) GTEST_SKIP() << cpu::testing::kNeedsAvx512;
  const cpu::testing::OneDnnWinogradWhereItHasIt oneDnnWinograd;
  // Channels-first data is converted either way, in the regions the plan reserves. 32
  // channels: the fused forward conv and the data gradient run Winograd; 64: the weight
  // gradient too.
  EXPECT_EQ(expectMatchesReference(convAndGradients(32, 8, false)).winogradSteps, 2);
  cpu::CompileStats wide = expectMatchesReference(convAndGradients(64, 10, false));
  EXPECT_EQ(wide.winogradSteps, 3);
  EXPECT_EQ(wide.scratchBytes, 0);
}

TEST(Winograd, ChannelsLastCopiesFindRoomInTheArena) {
  if (!cpu::testing::hasAvx512()) GTEST_SKIP() << cpu::testing::kNeedsAvx512;
  const cpu::testing::OneDnnWinogradWhereItHasIt oneDnnWinograd;
  // Unoptimized (the steps as written, big materialized): after big dies its bytes hold the
  // copies; without it the room the plan keeps at each convolution weft's Winograd step
  // could run (winogradPlannedBytes, alike on every CPU) holds them. Neither takes memory
  // beside the arena.
  cpu::CompileStats roomy = expectMatchesReference(convAndGradients(64, 10, true, true), false);
  EXPECT_EQ(roomy.winogradSteps, 3);
  EXPECT_EQ(roomy.scratchBytes, 0);
  cpu::CompileStats tight = expectMatchesReference(convAndGradients(64, 10, true), false);
  EXPECT_EQ(tight.winogradSteps, 3);
  EXPECT_EQ(tight.scratchBytes, 0);
}

TEST(Winograd, SmallPlanesStayDirect) {
  EXPECT_EQ(expectMatchesReference(convAndGradients(32, 6, false)).winogradSteps, 0);
}

TEST(Winograd, ChannelsLastStepsSplitTheBatchWhereOnlyPartOfTheCopiesFit) {
  if (!cpu::testing::hasAvx512()) GTEST_SKIP() << cpu::testing::kNeedsAvx512;
  // A conv with bias, residual sum and relu fused, and a data gradient, over 8 channels-last
  // images of 32x32x16 (512 KiB): whole copies take over 1 MiB, a quarter of the batch's
  // 264 KiB; chunks of one image (1024 positions) would be too small.
  ir::Graph g("chunks");
  const ir::Shape data = {8, 32, 32, 16};
  ir::ValueId x = g.addInput("x", f32(data)), w = g.addInput("w", f32({16, 16, 3, 3}));
  ir::ValueId b = g.addInput("b", f32({1, 1, 1, 16})), r = g.addInput("r", f32(data));
  ir::Attrs attrs = convAttrs(1, true);
  g.addOutput("y", cpu::testing::addFused(g, "conv", {x, w, b, r}, [&](ir::Graph& body, const auto& in) {
    ir::ValueId y = body.addOp(OpKind::Conv, {in[0], in[1]}, attrs);
    ir::ValueId summed = body.addOp(OpKind::Add, {body.addOp(OpKind::Add, {y, in[2]}), in[3]});
    return body.addOp(OpKind::Maximum, {summed, body.addConstant(std::make_shared<ir::TensorData>(f32({})))});
  }));
  ir::Attrs dataGrad = attrs;
  dataGrad["output_padding"] = Ints{0, 0};
  g.addOutput("dx", g.addOp(OpKind::ConvTranspose, {g.addInput("dy", f32(data)), w}, dataGrad));
  reference::TensorMap feeds = cpu::testing::sineFeeds(g);
  for (const std::string name : {"y", "dx"}) {
    SCOPED_TRACE(name);
    std::string whole = stepWithRoom(g, name, size_t{4} << 20, feeds);
    EXPECT_NE(whole.find("wino"), std::string::npos) << whole;
    EXPECT_EQ(whole.find("chunks"), std::string::npos) << whole;
    std::string quarters = stepWithRoom(g, name, 300 << 10, feeds);
    EXPECT_NE(quarters.find("in 4 batch chunks [jit_wino"), std::string::npos) << quarters;
    std::string direct = stepWithRoom(g, name, 0, feeds);
    EXPECT_EQ(direct.find("wino"), std::string::npos) << direct;
  }
}

TEST(Winograd, ChannelsLastWeightGradientsSumTheirBatchChunks) {
  if (!cpu::testing::hasAvx512()) GTEST_SKIP() << cpu::testing::kNeedsAvx512;
  // 8 images of 32x32x64 (2 MiB for x and for dy): whole copies take over 4 MiB, a quarter
  // of the batch's about 1.3 MiB with the chunks' gradients summed.
  ir::Graph g("weight_chunks");
  const ir::Shape data = {8, 32, 32, 64};
  ir::Attrs weightGrad = convAttrs(1, true);
  weightGrad["kernel"] = Ints{3, 3};
  g.addOutput("dw", g.addOp(OpKind::ConvWeightGrad, {g.addInput("x", f32(data)), g.addInput("dy", f32(data))},
                            weightGrad));
  reference::TensorMap feeds = cpu::testing::sineFeeds(g);
  std::string whole = stepWithRoom(g, "dw", size_t{8} << 20, feeds);
  EXPECT_NE(whole.find("wino"), std::string::npos) << whole;
  EXPECT_EQ(whole.find("chunks"), std::string::npos) << whole;
  std::string quarters = stepWithRoom(g, "dw", size_t{3} << 19, feeds);
  EXPECT_NE(quarters.find("in 4 batch chunks [jit_wino"), std::string::npos) << quarters;
  EXPECT_EQ(stepWithRoom(g, "dw", 0, feeds).find("wino"), std::string::npos);
}
