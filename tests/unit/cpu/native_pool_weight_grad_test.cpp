// The native pool-gradient weight gradient (runtime/cpu/native_pool_weight_grad.h):
// conv_weight_grad(x, max_pool_grad(c, dy)) computes as the reference interpreter does, with
// ties and NaNs in the pool windows, padding, odd maps (the pool drops the last row and
// column) and a map the step reads after its last reader in the graph (planMemory keeps it);
// anything else keeps its two steps.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "cpu_test_util.h"

#include "backends/cpu/executable.h"
#include "runtime/cpu/host_isa.h"
#include "runtime/cpu/native_pool_weight_grad.h"

using namespace weft;

namespace {

using ir::OpKind;
using Ints = std::vector<int64_t>;

ir::TensorType f32(ir::Shape shape) { return {ir::DType::f32, std::move(shape)}; }

struct Case {
  int64_t size, inputs, outputs, kernel, padding;
};

/// dw = conv_weight_grad(x, max_pool_grad(c, dy)) for x [2, size, size, inputs]; with
/// `mapInArena` the map c is -m computed in the graph and a value of its size is
/// computed between the pool gradient and the weight gradient.
ir::Graph poolWeightGrad(const Case& k, bool mapInArena) {
  ir::Graph g("pool_weight_grad");
  const int64_t map = k.size + 2 * k.padding - k.kernel + 1, pooled = map / 2;
  ir::ValueId x = g.addInput("x", f32({2, k.size, k.size, k.inputs}));
  ir::ValueId c = g.addInput(mapInArena ? "m" : "c", f32({2, map, map, k.outputs}));
  ir::ValueId dy = g.addInput("dy", f32({2, pooled, pooled, k.outputs}));
  if (mapInArena) c = g.addOp(OpKind::Neg, {c});
  ir::ValueId dx = g.addOp(OpKind::MaxPoolGrad, {c, dy},
                           {{"window", Ints{2, 2}}, {"stride", Ints{2, 2}}, {"padding", Ints{0, 0}},
                            {"channels_last", int64_t{1}}});
  if (mapInArena) g.addOutput("between", g.addOp(OpKind::Abs, {g.node(c).operands[0]}));
  ir::Attrs attrs = cpu::testing::convAttrs(1, k.padding, true);
  attrs["kernel"] = Ints{k.kernel, k.kernel};
  g.addOutput("dw", g.addOp(OpKind::ConvWeightGrad, {x, dx}, attrs));
  return g;
}

/// Sine feeds with the map rounded to halves (ties in most windows, zeros) and two NaNs.
reference::TensorMap feeds(const ir::Graph& g) {
  reference::TensorMap f = cpu::testing::sineFeeds(g);
  ir::TensorData& map = f.count("c") ? f.at("c") : f.at("m");
  for (int64_t i = 0; i < map.numel(); ++i) map.set(i, std::round(map.get(i) * 2) / 2);
  map.set(3, std::numeric_limits<double>::quiet_NaN());
  map.set(map.numel() / 2 + 17, std::numeric_limits<double>::quiet_NaN());
  return f;
}

}  // namespace

TEST(NativePoolWeightGrad, MatchesTheReference) {
  if (!cpu::hostHasAvx512() && !cpu::hostHasAvx2Fma())
    GTEST_SKIP() << "the native step needs AVX-512 or AVX2";
  const std::vector<Case> cases = {{28, 1, 32, 3, 0}, {12, 3, 48, 5, 2}, {9, 2, 64, 3, 0}, {10, 4, 16, 7, 3}};
  for (const Case& k : cases)
    for (bool mapInArena : {false, true}) {
      SCOPED_TRACE("size " + std::to_string(k.size) + ", " + std::to_string(k.inputs) + " -> " +
                   std::to_string(k.outputs) + ", kernel " + std::to_string(k.kernel) +
                   (mapInArena ? ", map in the arena" : ""));
      ir::Graph g = poolWeightGrad(k, mapInArena);
      const ir::ValueId dw = g.outputs().back().value;
      ASSERT_EQ(cpu::poolWeightGradSource(g, dw), g.node(dw).operands[1]);
      cpu::CompileOptions options;
      options.optimize = false;
      cpu::Executable exe = cpu::compile(g, options);
      const reference::TensorMap f = feeds(g);
      reference::TensorMap want = reference::run(g, f), got = exe.run(f);
      if (mapInArena) {  // the map's NaNs reach "between"; compare the weight gradient
        want.erase("between");
        got.erase("between");
      }
      cpu::testing::expectCloseToLargest(got, want, 2e-5);
      EXPECT_EQ(exe.stats().nativeSteps, 1);
    }
}

TEST(NativePoolWeightGrad, OnlyAPoolGradientReadByTheWeightGradientAlone) {
  ir::Graph g = poolWeightGrad({28, 1, 32, 3, 0}, false);
  const ir::ValueId dw = g.outputs().back().value, dx = g.node(dw).operands[1];
  EXPECT_EQ(cpu::poolWeightGradShape(g, dw), dx);
  g.addOutput("dx", dx);  // the pool gradient is wanted too: the two keep their steps
  EXPECT_EQ(cpu::poolWeightGradShape(g, dw), -1);
  ir::Graph wide = poolWeightGrad({28, 8, 32, 3, 0}, false);  // 8 input channels
  EXPECT_EQ(cpu::poolWeightGradShape(wide, wide.outputs().back().value), -1);
  ir::Graph narrow = poolWeightGrad({28, 1, 8, 3, 0}, false);  // 8 result channels: no 16-lane blocks
  EXPECT_EQ(cpu::poolWeightGradShape(narrow, narrow.outputs().back().value), -1);
}
