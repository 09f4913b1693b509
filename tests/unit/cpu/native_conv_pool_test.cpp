// The native conv + max pool step (runtime/cpu/native_conv_pool.h): a convolution from few
// input channels and the 2x2 max pool after it compute as the reference interpreter does,
// with or without bias and ReLU, padding, odd maps (the pool drops the last row and column),
// stored channels-last or channel-blocked; anything else keeps its two steps.
#include <gtest/gtest.h>

#include "cpu_test_util.h"

#include "backends/cpu/executable.h"
#include "runtime/cpu/native_conv_pool.h"

using namespace weft;

namespace {

using ir::OpKind;
using Ints = std::vector<int64_t>;

ir::TensorType f32(ir::Shape shape) { return {ir::DType::f32, std::move(shape)}; }

struct Case {
  int64_t size, inputs, outputs, kernel, padding;
  bool bias, relu;
};

/// x [2, size, size, inputs] -> fused conv (+ bias, + relu) -> max_pool 2x2 -> `then`:
/// "out" (the pool is the output) or "conv" (a blocked conv reads it).
ir::Graph convPool(const Case& c, bool blockedReader) {
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
    return g;
  }
  ir::ValueId w2 = g.addInput("w2", f32({32, c.outputs, 3, 3}));
  g.addOutput("y", g.addOp(OpKind::Conv, {pooled, w2}, cpu::testing::convAttrs(1, 1, true)));
  return g;
}

}  // namespace

TEST(NativeConvPool, MatchesTheReference) {
  if (!__builtin_cpu_supports("avx512f")) GTEST_SKIP() << "the native step needs AVX-512";
  const std::vector<Case> cases = {{28, 1, 32, 3, 0, true, true},  {15, 1, 16, 3, 1, true, false},
                                   {12, 3, 48, 5, 2, false, true}, {9, 2, 64, 3, 0, false, false}};
  for (const Case& c : cases)
    for (bool blockedReader : {false, true}) {
      SCOPED_TRACE("size " + std::to_string(c.size) + ", " + std::to_string(c.inputs) + " -> " +
                   std::to_string(c.outputs) + (blockedReader ? ", pooled data read by a conv" : ""));
      ir::Graph g = convPool(c, blockedReader);
      cpu::CompileOptions options;
      options.optimize = false;
      cpu::Executable exe = cpu::compile(g, options);
      reference::TensorMap feeds = cpu::testing::sineFeeds(g);
      cpu::testing::expectCloseToLargest(exe.run(feeds), reference::run(g, feeds), 2e-5);
      EXPECT_EQ(exe.stats().nativeSteps, 1);
    }
}

TEST(NativeConvPool, OnlyAConvReadByItsPoolAlone) {
  ir::Graph g = convPool({14, 1, 32, 3, 0, true, true}, false);
  const ir::ValueId pool = g.outputs()[0].value, conv = g.node(pool).operands[0];
  EXPECT_EQ(cpu::convPoolSource(g, pool), __builtin_cpu_supports("avx512f") ? conv : -1);
  g.addOutput("map", conv);  // the conv's map is wanted too: it is computed on its own
  EXPECT_EQ(cpu::convPoolSource(g, pool), -1);
  ir::Graph wide = convPool({14, 8, 32, 3, 0, true, true}, false);  // 8 input channels: oneDNN's
  EXPECT_EQ(cpu::convPoolSource(wide, wide.outputs()[0].value), -1);
}
