// The native conv + max pool step (runtime/cpu/native_conv_pool.h), in the kernels of this
// CPU's widest instruction set (AVX-512 or AVX2): a convolution from few
// input channels and the 2x2 max pool after it compute as the reference interpreter does,
// with or without bias and ReLU, padding, odd maps (the pool drops the last row and column),
// stored channels-last or channel-blocked, writing the conv's map as well where later nodes
// read it, or only its windows' winners where the weight gradient under the pool's gradient
// is the one (a training step); anything else keeps its two steps.
#include <gtest/gtest.h>

#include <cmath>

#include "cpu_test_util.h"

#include "backends/cpu/executable.h"
#include "runtime/cpu/host_isa.h"
#include "runtime/cpu/native_conv_pool.h"
#include "runtime/cpu/native_pool_weight_grad.h"
#include "runtime/cpu/native_steps.h"

using namespace weft;

namespace {

using ir::OpKind;
using Ints = std::vector<int64_t>;

ir::TensorType f32(ir::Shape shape) { return {ir::DType::f32, std::move(shape)}; }

/// True when this CPU runs the step's kernels (AVX-512, or AVX2 and FMA).
bool kernelsHere() {
  return cpu::hostHasAvx512() || cpu::hostHasAvx2Fma();
}

struct Case {
  int64_t size, inputs, outputs, kernel, padding;
  bool bias, relu;
};

/// What reads the conv's map besides the pool, after it (as a training step's gradients do):
/// with PoolWeightGrad, conv_weight_grad(x, max_pool_grad(map, dy)).
enum class MapReader { None, Elementwise, Conv, PoolWeightGrad };

/// x [2, size, size, inputs] -> fused conv (+ bias, + relu) -> max_pool 2x2 -> the output,
/// or with `blockedReader` a conv reading it (channel-blocked); `mapReader` reads the map too.
ir::Graph convPool(const Case& c, bool blockedReader, MapReader mapReader = MapReader::None) {
  ir::Graph g("conv_pool");
  ir::ValueId x = g.addInput("x", f32({2, c.size, c.size, c.inputs}));
  ir::ValueId w = g.addInput("w", f32({c.outputs, c.inputs, c.kernel, c.kernel}));
  std::vector<ir::ValueId> operands = {x, w};
  if (c.bias) operands.push_back(g.addInput("b", f32({c.outputs})));
  ir::ValueId conv = cpu::testing::addFused(g, "conv", operands, [&](ir::Graph& body, const std::vector<ir::ValueId>& in) {
    ir::ValueId y = body.addOp(OpKind::Conv, {in[0], in[1]}, cpu::testing::convAttrs(1, c.padding, true));
    if (c.bias) y = body.addOp(OpKind::Add, {y, body.addOp(OpKind::Reshape, {in[2]}, {{"shape", Ints{1, 1, 1, c.outputs}}})});
    if (c.relu) {
      auto zero = std::make_shared<ir::TensorData>(f32({}));
      y = body.addOp(OpKind::Maximum, {y, body.addConstant(zero)});
    }
    return y;
  });
  ir::ValueId pooled = g.addOp(OpKind::MaxPool, {conv},
                               {{"window", Ints{2, 2}}, {"stride", Ints{2, 2}}, {"padding", Ints{0, 0}},
                                {"channels_last", int64_t{1}}});
  if (!blockedReader) {
    g.addOutput("y", pooled);
  } else {
    ir::ValueId w2 = g.addInput("w2", f32({32, c.outputs, 3, 3}));
    g.addOutput("y", g.addOp(OpKind::Conv, {pooled, w2}, cpu::testing::convAttrs(1, 1, true)));
  }
  if (mapReader == MapReader::Elementwise) g.addOutput("map", g.addOp(OpKind::Mul, {conv, conv}));
  if (mapReader == MapReader::PoolWeightGrad) {
    ir::ValueId dy = g.addInput("dy", g.type(pooled));
    ir::ValueId dx = g.addOp(OpKind::MaxPoolGrad, {conv, dy}, g.node(pooled).attrs);
    ir::Attrs attrs = cpu::testing::convAttrs(1, c.padding, true);
    attrs["kernel"] = Ints{c.kernel, c.kernel};
    g.addOutput("dw", g.addOp(OpKind::ConvWeightGrad, {x, dx}, attrs));
  }
  if (mapReader == MapReader::Conv) {
    ir::ValueId w3 = g.addInput("w3", f32({16, c.outputs, 3, 3}));
    g.addOutput("map", g.addOp(OpKind::Conv, {conv, w3}, cpu::testing::convAttrs(1, 1, true)));
  }
  return g;
}

/// `g` compiled as it is computes what the reference interpreter does, in one native step
/// (besides the native Winograd steps of AVX2 CPUs).
void expectOneNativeStepLikeTheReference(const ir::Graph& g) {
  cpu::CompileOptions options;
  options.optimize = false;
  cpu::Executable exe = cpu::compile(g, options);
  reference::TensorMap feeds = cpu::testing::sineFeeds(g);
  // Winograd's transforms round more than a direct convolution (native_winograd_test.cpp).
  const double tolerance = exe.stats().nativeWinogradSteps > 0 ? 2e-4 : 2e-5;
  cpu::testing::expectCloseToLargest(exe.run(feeds), reference::run(g, feeds), tolerance);
  EXPECT_EQ(exe.stats().nativeSteps - exe.stats().nativeWinogradSteps, 1);  // a reading conv may be weft's Winograd
}

}  // namespace

TEST(NativeConvPool, MatchesTheReference) {
  if (!kernelsHere()) GTEST_SKIP() << "the native step needs AVX-512 or AVX2";
  const std::vector<Case> cases = {{28, 1, 32, 3, 0, true, true},  {15, 1, 16, 3, 1, true, false},
                                   {12, 3, 48, 5, 2, false, true}, {9, 2, 64, 3, 0, false, false}};
  for (const Case& c : cases)
    for (bool blockedReader : {false, true}) {
      SCOPED_TRACE("size " + std::to_string(c.size) + ", " + std::to_string(c.inputs) + " -> " +
                   std::to_string(c.outputs) + (blockedReader ? ", pooled data read by a conv" : ""));
      ir::Graph g = convPool(c, blockedReader);
      expectOneNativeStepLikeTheReference(g);
    }
}

TEST(NativeConvPool, WritesTheConvsMapForLaterReaders) {
  if (!kernelsHere()) GTEST_SKIP() << "the native step needs AVX-512 or AVX2";
  const std::vector<Case> cases = {{28, 1, 32, 3, 0, true, true}, {16, 3, 48, 5, 2, false, true},
                                   {10, 2, 64, 3, 0, false, false}};
  for (const Case& c : cases)
    for (MapReader reader : {MapReader::Elementwise, MapReader::Conv}) {
      SCOPED_TRACE("size " + std::to_string(c.size) + ", " + std::to_string(c.inputs) + " -> " +
                   std::to_string(c.outputs) + (reader == MapReader::Conv ? ", map read by a conv" : ""));
      ir::Graph g = convPool(c, reader == MapReader::Conv, reader);
      const ir::ValueId pool = g.node(g.outputs()[0].value).op == OpKind::MaxPool
                                   ? g.outputs()[0].value
                                   : g.node(g.outputs()[0].value).operands[0];
      ASSERT_TRUE(cpu::convPoolWritesConv(g, pool));
      expectOneNativeStepLikeTheReference(g);
    }
}

TEST(NativeConvPool, StoresOnlyTheWinnersForAWeightGradientUnderThePool) {
  if (!kernelsHere()) GTEST_SKIP() << "the native steps need AVX-512 or AVX2";
  const std::vector<Case> cases = {{28, 1, 32, 3, 0, true, true},
                                   {16, 3, 48, 5, 2, false, true},
                                   {10, 2, 64, 3, 0, false, false},
                                   {12, 1, 16, 3, 1, true, false}};
  for (const Case& c : cases) {
    SCOPED_TRACE("size " + std::to_string(c.size) + ", " + std::to_string(c.inputs) + " -> " +
                 std::to_string(c.outputs) + ", padding " + std::to_string(c.padding));
    ir::Graph g = convPool(c, false, MapReader::PoolWeightGrad);
    const ir::ValueId pool = g.outputs()[0].value, conv = g.node(pool).operands[0];
    const ir::ValueId dw = g.outputs().back().value, dx = g.node(dw).operands[1];
    ASSERT_EQ(cpu::poolWeightGradWinners(g, dw), conv);
    EXPECT_FALSE(cpu::convPoolWritesConv(g, pool));
    EXPECT_TRUE(cpu::convPoolWritesWinners(g, pool));
    EXPECT_FALSE(cpu::neverStored(g, conv));
    EXPECT_EQ(cpu::storedBytes(g, conv), g.type(pool).numel());  // a byte per pooled value
    EXPECT_TRUE(cpu::neverStored(g, dx));
    cpu::CompileOptions options;
    options.optimize = false;
    cpu::Executable exe = cpu::compile(g, options);
    const reference::TensorMap feeds = cpu::testing::sineFeeds(g);
    cpu::testing::expectCloseToLargest(exe.run(feeds), reference::run(g, feeds), 2e-5);
    EXPECT_EQ(exe.stats().nativeSteps, 2);
    // Wanted by another reader too, the map is written and read as before.
    ir::Graph read = convPool(c, false, MapReader::PoolWeightGrad);
    read.addOutput("map", read.addOp(OpKind::Neg, {read.node(read.outputs()[0].value).operands[0]}));
    EXPECT_EQ(cpu::poolWeightGradWinners(read, read.outputs()[1].value), -1);
    EXPECT_TRUE(cpu::convPoolWritesConv(read, read.outputs()[0].value));
    EXPECT_EQ(cpu::storedBytes(read, read.node(read.outputs()[0].value).operands[0]),
              static_cast<int64_t>(read.type(read.node(read.outputs()[0].value).operands[0]).byteSize()));
  }
}

TEST(NativeConvPool, OnlyAConvReadByItsPoolAlone) {
  ir::Graph g = convPool({14, 1, 32, 3, 0, true, true}, false);
  const ir::ValueId pool = g.outputs()[0].value, conv = g.node(pool).operands[0];
  EXPECT_EQ(cpu::convPoolSource(g, pool), kernelsHere() ? conv : -1);
  g.addOutput("map", conv);  // the conv's map is wanted too: it is computed on its own
  EXPECT_EQ(cpu::convPoolSource(g, pool), -1);
  ir::Graph updating = convPool({14, 1, 32, 3, 0, true, true}, false);  // or is a state's next value
  const ir::ValueId updatingPool = updating.outputs()[0].value, updatingConv = updating.node(updatingPool).operands[0];
  updating.addUpdate(updating.addParam("state", updating.type(updatingConv), {{"init", std::string("zeros")}}),
                     updatingConv);
  EXPECT_EQ(cpu::convPoolSource(updating, updatingPool), -1);
  // Read before the pool, or by later nodes while the pool leaves its last row uncovered.
  ir::Graph before = convPool({14, 1, 32, 3, 0, true, true}, false);
  const ir::ValueId beforePool = before.outputs()[0].value, beforeConv = before.node(beforePool).operands[0];
  ir::Graph early("early");  // the same nodes with a reader of the map placed before the pool
  for (ir::ValueId v = 0; v < before.size(); ++v) {
    if (v == beforePool) early.addOutput("map", early.addOp(OpKind::Neg, {beforeConv}));
    const ir::Node& n = before.node(v);
    if (n.op == OpKind::Input) early.addInput(n.name, n.type);
    else early.addNode(n);
  }
  early.addOutput("y", beforePool + 1);
  EXPECT_EQ(cpu::convPoolSource(early, beforePool + 1), -1);
  ir::Graph odd = convPool({13, 1, 32, 3, 1, true, true}, false, MapReader::Elementwise);
  EXPECT_EQ(cpu::convPoolSource(odd, odd.outputs()[0].value), -1);
  ir::Graph oddAlone = convPool({13, 1, 32, 3, 1, true, true}, false);  // read by the pool alone: taken
  EXPECT_EQ(cpu::convPoolSource(oddAlone, oddAlone.outputs()[0].value) >= 0, kernelsHere());
  ir::Graph wide = convPool({14, 8, 32, 3, 0, true, true}, false);  // 8 input channels: oneDNN's
  EXPECT_EQ(cpu::convPoolSource(wide, wide.outputs()[0].value), -1);
}

TEST(NativeConvPool, NaNsWinTheirWindowsAsInTheReference) {
  // A NaN pixel makes NaNs in the conv positions whose taps read it; a window holding one
  // pools to NaN wherever a larger number comes after it, and the ReLU keeps it (vmaxps
  // alone would drop it in both places).
  if (!kernelsHere()) GTEST_SKIP() << "the native step needs AVX-512 or AVX2";
  for (bool relu : {false, true}) {
    SCOPED_TRACE(relu ? "with ReLU" : "without ReLU");
    ir::Graph g = convPool({12, 1, 32, 3, 1, true, relu}, false, MapReader::Elementwise);
    cpu::CompileOptions options;
    options.optimize = false;
    cpu::Executable exe = cpu::compile(g, options);
    EXPECT_EQ(exe.stats().nativeSteps, 1);
    reference::TensorMap feeds = cpu::testing::sineFeeds(g);
    for (int64_t i = 5; i < feeds.at("x").numel(); i += 37) feeds.at("x").set(i, std::nan(""));
    reference::TensorMap got = exe.run(feeds), want = reference::run(g, feeds);
    for (const char* name : {"y", "map"}) {
      int nans = 0;
      for (int64_t i = 0; i < want.at(name).numel(); ++i) {
        const double w = want.at(name).get(i), v = got.at(name).get(i);
        nans += std::isnan(w);
        if (std::isnan(w) || std::isnan(v)) EXPECT_EQ(std::isnan(v), std::isnan(w)) << name << " element " << i;
        else EXPECT_NEAR(v, w, 1e-4 * std::max(1.0, std::fabs(w))) << name << " element " << i;
      }
      EXPECT_GT(nans, 0) << name;
    }
  }
}

TEST(NativeConvPool, WeightGradientUnderThePoolSpreadsNaNsAsTheReferenceDoes) {
  // The reference scatters dy into a map of zeros and sums x times it, so a NaN pixel makes
  // every tap's sum NaN (0 * NaN) wherever it falls under one: the step, which adds only each
  // window's winner where it can, takes all four positions' shares for windows over a NaN.
  if (!kernelsHere()) GTEST_SKIP() << "the native steps need AVX-512 or AVX2";
  for (bool relu : {false, true}) {
    SCOPED_TRACE(relu ? "with ReLU" : "without ReLU");
    ir::Graph g = convPool({14, 1, 32, 3, 0, true, relu}, false, MapReader::PoolWeightGrad);
    ASSERT_TRUE(cpu::convPoolWritesWinners(g, g.outputs()[0].value));
    cpu::CompileOptions options;
    options.optimize = false;
    cpu::Executable exe = cpu::compile(g, options);
    reference::TensorMap feeds = cpu::testing::sineFeeds(g);
    feeds.at("x").set(3 * 14 + 5, std::nan(""));  // image 0: one NaN pixel, its windows NaN
    reference::TensorMap got = exe.run(feeds), want = reference::run(g, feeds);
    int nans = 0;
    for (int64_t i = 0; i < want.at("dw").numel(); ++i) {
      const double w = want.at("dw").get(i), v = got.at("dw").get(i);
      nans += std::isnan(w);
      if (std::isnan(w) || std::isnan(v)) EXPECT_EQ(std::isnan(v), std::isnan(w)) << "dw element " << i;
      else EXPECT_NEAR(v, w, 1e-4 * std::max(1.0, std::fabs(w))) << "dw element " << i;
    }
    EXPECT_GT(nans, 0);
  }
}
