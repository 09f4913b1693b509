// fold-conv-affine: batch norm in evaluation form after a conv folds into the conv's weights
// and one per-channel add, computing what the unfolded graph computes; other shapes of
// graph are left alone.
#include <gtest/gtest.h>

#include "ir/verifier.h"
#include "passes/builtin_passes.h"
#include "pass_test_util.h"

using namespace weft::ir;
using namespace weft::passes;
using namespace weft::passes::testing;

namespace {

TensorType f32(Shape shape) { return {DType::f32, std::move(shape)}; }

ValueId conv(Graph& g, ValueId x, ValueId w) {
  return g.addOp(OpKind::Conv, {x, w},
                 {{"stride", std::vector<int64_t>{1, 1}},
                  {"padding", std::vector<int64_t>{1, 1}},
                  {"dilation", std::vector<int64_t>{1, 1}},
                  {"groups", int64_t{1}}});
}

/// relu((conv(x, w) - mean) * scale + shift), per-channel operands of shape [1,4,1,1] or
/// [4,1,1]; with `convRead`, the conv's result is an output too.
Graph evalBatchNorm(bool convRead) {
  Graph g("bn");
  ValueId x = g.addInput("x", f32({2, 3, 5, 5})), w = g.addInput("w", f32({4, 3, 3, 3}));
  ValueId mean = g.addInput("mean", f32({1, 4, 1, 1})), scale = g.addInput("scale", f32({4, 1, 1}));
  ValueId shift = g.addInput("shift", f32({1, 4, 1, 1}));
  ValueId y = conv(g, x, w);
  if (convRead) g.addOutput("raw", y);
  ValueId normed = g.addOp(OpKind::Add, {g.addOp(OpKind::Mul, {g.addOp(OpKind::Sub, {y, mean}), scale}), shift});
  g.addOutput("y", g.addOp(OpKind::Relu, {normed}));
  return g;
}

}  // namespace

TEST(FoldConvAffine, EvalBatchNormBecomesScaledWeightsAndOneAdd) {
  Graph g = evalBatchNorm(false);
  Graph before = g;
  ASSERT_TRUE(foldConvAffine(g));
  eliminateDeadCode(g);
  ASSERT_TRUE(verifyErrors(g).empty());
  const Node& relu = g.node(g.outputs()[0].value);
  const Node& add = g.node(relu.operands[0]);
  ASSERT_EQ(add.op, OpKind::Add);
  const Node& folded = g.node(add.operands[0]);
  ASSERT_EQ(folded.op, OpKind::Conv);
  EXPECT_EQ(g.node(folded.operands[1]).op, OpKind::Mul);  // the weights, scaled per output channel
  EXPECT_EQ(countOps(g, OpKind::Conv), 1);
  weft::reference::TensorMap feeds = smoothFeeds(before, 0.7);
  for (int64_t i = 0; i < feeds.at("scale").numel(); ++i)  // scales around 1.5
    feeds.at("scale").set(i, feeds.at("scale").get(i) + 1.5);
  expectSameResults(before, g, feeds, 1e-4);
}

TEST(FoldConvAffine, ConvsReadElsewhereAndLoneBiasesAreLeftAlone) {
  Graph shared = evalBatchNorm(true);
  Graph before = shared;
  EXPECT_FALSE(foldConvAffine(shared));
  expectSameGraph(shared, before);

  Graph biased("bias");
  ValueId x = biased.addInput("x", f32({1, 3, 4, 4})), w = biased.addInput("w", f32({2, 3, 3, 3}));
  ValueId b = biased.addInput("b", f32({2, 1, 1}));
  biased.addOutput("y", biased.addOp(OpKind::Add, {conv(biased, x, w), b}));
  EXPECT_FALSE(foldConvAffine(biased));
}
