// Dimension coalescing of kernel bodies: which dimensions merge (shapes, axes, what stays),
// and that kernels compiled from coalesced bodies compute what the reference computes.
#include "backends/cpu/codegen/coalesce_dims.h"
#include "tests/unit/codegen/codegen_test_util.h"

using namespace cgtest;
using weft::cpu::codegen::coalesceDims;

namespace {

KernelCompiler& compiler() {
  static KernelCompiler instance;
  return instance;
}

TensorType f32(Shape shape) { return {DType::f32, std::move(shape)}; }

/// Inputs for every input of `body`, spread over [-2, 2).
std::vector<TensorData> inputsFor(const Graph& body) {
  std::vector<TensorData> inputs;
  int seed = 0;
  for (ValueId v : body.inputs()) inputs.push_back(spread(body.type(v), -2, 2, seed++));
  return inputs;
}

/// The generated kernel of `body` (compiled from its coalesced form) against the reference,
/// in one call and in three.
void expectSameAsReference(const Graph& body) {
  std::vector<TensorData> inputs = inputsFor(body);
  TensorData want = referenceRun(body, inputs);
  const GeneratedKernel* kernel = compiler().compile({&body}).at(0);
  expectClose(runKernel(*kernel, body, inputs), want, 1e-5);
  if (kernel->parallelExtent >= 3) expectClose(runKernel(*kernel, body, inputs, 3), want, 1e-5);
}

/// x [4,3,5,6] normalized by per-channel mean and scale of shape [1,3,1,1].
Graph batchNormBody() {
  Graph g("bn");
  ValueId x = g.addInput("x", f32({4, 3, 5, 6})), mean = g.addInput("mean", f32({1, 3, 1, 1}));
  ValueId scale = g.addInput("scale", f32({1, 3, 1, 1}));
  g.addOutput("y", g.addOp(OpKind::Mul, {g.addOp(OpKind::Sub, {x, mean}), scale}));
  return g;
}

}  // namespace

TEST(CoalesceDims, PerChannelOperandsMergeTheSpatialDims) {
  Graph g = batchNormBody();
  auto merged = coalesceDims(g);
  ASSERT_TRUE(merged.has_value());
  EXPECT_EQ(merged->type(merged->outputs()[0].value).shape, (Shape{4, 3, 30}));
  EXPECT_EQ(merged->type(*merged->find("x")).shape, (Shape{4, 3, 30}));
  EXPECT_EQ(merged->type(*merged->find("mean")).shape, (Shape{1, 3, 1}));
  expectSameAsReference(g);
}

TEST(CoalesceDims, ReductionKeepsReducedAndKeptDimsApart) {
  Graph g("bn_stats");
  ValueId x = g.addInput("x", f32({4, 3, 5, 6}));
  ValueId sq = g.addOp(OpKind::Mul, {x, x});
  g.addOutput("s", g.addOp(OpKind::ReduceSum, {sq}, {{"axes", std::vector<int64_t>{0, 2, 3}}, {"keepdims", int64_t{1}}}));
  auto merged = coalesceDims(g);
  ASSERT_TRUE(merged.has_value());
  ValueId out = merged->outputs()[0].value;
  EXPECT_EQ(merged->type(out).shape, (Shape{1, 3, 1}));
  EXPECT_EQ(AttrReader(merged->node(out).attrs, OpKind::ReduceSum).ints("axes"), (std::vector<int64_t>{0, 2}));
  expectSameAsReference(g);
}

TEST(CoalesceDims, ReductionOfEveryDimKeepsItsFirstApart) {
  // [8, 4, 16, 5] summed whole loops over [8, 320]: calls can split the 8 (partial sums).
  // With fewer than 256 elements after the first dim, or a first dim under 4, all merge.
  for (auto [shape, merged] : {std::pair{Shape{8, 4, 16, 5}, Shape{8, 320}}, std::pair{Shape{8, 4, 3, 5}, Shape{480}},
                               std::pair{Shape{3, 4, 16, 5}, Shape{960}}}) {
    Graph g("loss");
    ValueId x = g.addInput("x", f32(shape));
    g.addOutput("s", g.addOp(OpKind::ReduceSum, {g.addOp(OpKind::Exp, {x})},
                             {{"axes", std::vector<int64_t>{0, 1, 2, 3}}, {"keepdims", int64_t{0}}}));
    auto coalesced = coalesceDims(g);
    ASSERT_TRUE(coalesced.has_value());
    EXPECT_EQ(coalesced->type(*coalesced->find("x")).shape, merged);
    expectSameAsReference(g);
  }
}

TEST(CoalesceDims, ReductionWithoutKeepdimsMergesItsKeptDims) {
  Graph g("middle");
  ValueId x = g.addInput("x", f32({4, 3, 5, 6}));
  g.addOutput("s", g.addOp(OpKind::ReduceMax, {x}, {{"axes", std::vector<int64_t>{1}}, {"keepdims", int64_t{0}}}));
  auto merged = coalesceDims(g);
  ASSERT_TRUE(merged.has_value());
  EXPECT_EQ(merged->type(merged->outputs()[0].value).shape, (Shape{4, 30}));
  expectSameAsReference(g);
}

TEST(CoalesceDims, LowerRankOperandsArePaddedAndReshapesReadIndexForIndex) {
  Graph g("bias");
  ValueId x = g.addInput("x", f32({4, 3, 5, 6})), bias = g.addInput("bias", f32({5, 6}));
  ValueId gamma = g.addInput("gamma", f32({3})), s = g.addInput("s", f32({}));
  ValueId perChannel = g.addOp(OpKind::Reshape, {gamma}, {{"shape", std::vector<int64_t>{3, 1, 1}}});
  ValueId y = g.addOp(OpKind::Add, {g.addOp(OpKind::Mul, {x, perChannel}), g.addOp(OpKind::Mul, {bias, s})});
  g.addOutput("y", y);
  auto merged = coalesceDims(g);
  ASSERT_TRUE(merged.has_value());
  EXPECT_EQ(merged->type(y).shape, (Shape{4, 3, 30}));
  EXPECT_EQ(merged->type(*merged->find("bias")).shape, (Shape{1, 1, 30}));
  EXPECT_EQ(merged->type(perChannel).shape, (Shape{1, 3, 1}));
  EXPECT_EQ(merged->type(*merged->find("gamma")).shape, (Shape{1, 3, 1}));
  expectSameAsReference(g);
}

TEST(CoalesceDims, NothingMergesWhenEveryDimBroadcastsDifferently) {
  Graph g("outer");
  ValueId col = g.addInput("col", f32({7, 1})), row = g.addInput("row", f32({1, 9}));
  g.addOutput("out", g.addOp(OpKind::Mul, {col, row}));
  EXPECT_FALSE(coalesceDims(g).has_value());
}

TEST(CoalesceDims, TransposedReadsStopTheRewrite) {
  Graph g("transposed");
  ValueId x = g.addInput("x", f32({4, 5, 6})), y = g.addInput("y", f32({4, 6, 5}));
  ValueId yt = g.addOp(OpKind::Transpose, {y}, {{"perm", std::vector<int64_t>{0, 2, 1}}});
  g.addOutput("out", g.addOp(OpKind::Add, {x, yt}));
  EXPECT_FALSE(coalesceDims(g).has_value());
  expectSameAsReference(g);
}

TEST(CoalesceDims, FlatElementwiseBodiesMergeIntoOneDim) {
  Graph g("flat");
  ValueId x = g.addInput("x", f32({4, 3, 5, 6})), s = g.addInput("s", f32({}));
  g.addOutput("y", g.addOp(OpKind::Mul, {x, s}));
  auto merged = coalesceDims(g);
  ASSERT_TRUE(merged.has_value());
  EXPECT_EQ(merged->type(merged->outputs()[0].value).shape, (Shape{360}));
  EXPECT_EQ(merged->type(*merged->find("s")).shape, (Shape{1}));
  expectSameAsReference(g);
}

TEST(CoalesceDims, GroupNormSplitsChannelsIntoGroups) {
  // x [2,6,3,4] in 3 groups of 2 channels: normalized as [2,3,24], scaled per channel.
  Graph g("group_norm");
  ValueId x = g.addInput("x", f32({2, 6, 3, 4})), mean = g.addInput("mean", f32({2, 3, 1}));
  ValueId rstd = g.addInput("rstd", f32({2, 3, 1})), gamma = g.addInput("gamma", f32({6}));
  ValueId grouped = g.addOp(OpKind::Reshape, {x}, {{"shape", std::vector<int64_t>{2, 3, 24}}});
  ValueId normed = g.addOp(OpKind::Mul, {g.addOp(OpKind::Sub, {grouped, mean}), rstd});
  ValueId back = g.addOp(OpKind::Reshape, {normed}, {{"shape", std::vector<int64_t>{2, 6, 3, 4}}});
  ValueId perChannel = g.addOp(OpKind::Reshape, {gamma}, {{"shape", std::vector<int64_t>{6, 1, 1}}});
  g.addOutput("y", g.addOp(OpKind::Sigmoid, {g.addOp(OpKind::Mul, {back, perChannel})}));
  auto merged = coalesceDims(g);
  ASSERT_TRUE(merged.has_value());
  EXPECT_EQ(merged->type(merged->outputs()[0].value).shape, (Shape{2, 3, 2, 12}));
  EXPECT_EQ(merged->type(x).shape, (Shape{2, 3, 2, 12}));
  EXPECT_EQ(merged->type(mean).shape, (Shape{2, 3, 1, 1}));
  EXPECT_EQ(merged->type(gamma).shape, (Shape{1, 3, 2, 1}));
  expectSameAsReference(g);
}

TEST(CoalesceDims, GroupNormStatisticsReadTheInputContiguously) {
  Graph g("group_stats");
  ValueId x = g.addInput("x", f32({2, 6, 3, 4})), mean = g.addInput("mean", f32({6, 1}));
  ValueId grouped = g.addOp(OpKind::Reshape, {x}, {{"shape", std::vector<int64_t>{6, 24}}});
  ValueId centered = g.addOp(OpKind::Sub, {grouped, mean});
  ValueId squares = g.addOp(OpKind::Mul, {centered, centered});
  g.addOutput("v", g.addOp(OpKind::ReduceSum, {squares}, {{"axes", std::vector<int64_t>{1}}, {"keepdims", int64_t{1}}}));
  auto merged = coalesceDims(g);
  ASSERT_TRUE(merged.has_value());
  EXPECT_EQ(merged->type(x).shape, (Shape{6, 24}));
  EXPECT_EQ(merged->type(merged->outputs()[0].value).shape, (Shape{6, 1}));
  expectSameAsReference(g);
}

TEST(CoalesceDims, ReshapesWithoutACommonRefinementKeepTheirOperand) {
  // [4,6] read as [6,4]: the cuts 4 and 6 do not divide each other.
  Graph g("regrid");
  ValueId x = g.addInput("x", f32({4, 6})), z = g.addInput("z", f32({6, 4}));
  ValueId viewed = g.addOp(OpKind::Reshape, {x}, {{"shape", std::vector<int64_t>{6, 4}}});
  g.addOutput("y", g.addOp(OpKind::Add, {viewed, z}));
  auto merged = coalesceDims(g);
  ASSERT_TRUE(merged.has_value());
  EXPECT_EQ(merged->type(x).shape, (Shape{4, 6}));
  EXPECT_EQ(merged->type(z).shape, (Shape{24}));
  expectSameAsReference(g);
}

TEST(CoalesceDims, AFlattenOfChannelsLastDataLoopsOverChannelsAndPositions) {
  // x [2,3,4,5] (N, H, W, C) flattened channels-first, [N, C*H*W], then masked by m: the loops
  // run over [2, 5, 12] and read x as [2, 12, 5] through a transpose of its last two dims
  // (no coordinates worked out from a flat index), H and W merged in both.
  Graph g("flatten");
  ValueId x = g.addInput("x", f32({2, 3, 4, 5})), m = g.addInput("m", f32({2, 60}));
  ValueId t = g.addOp(OpKind::Transpose, {x}, {{"perm", std::vector<int64_t>{0, 3, 1, 2}}});
  ValueId flat = g.addOp(OpKind::Reshape, {t}, {{"shape", std::vector<int64_t>{2, 60}}});
  ValueId zero = g.addOp(OpKind::Constant, {}, {{"value", scalarConstant(DType::f32, 0)}});
  ValueId keep = g.addOp(OpKind::Gt, {m, zero});
  g.addOutput("y", g.addOp(OpKind::Select, {keep, flat, zero}));
  auto merged = coalesceDims(g);
  ASSERT_TRUE(merged.has_value());
  EXPECT_EQ(merged->type(merged->outputs()[0].value).shape, (Shape{2, 5, 12}));
  EXPECT_EQ(merged->type(x).shape, (Shape{2, 12, 5}));
  EXPECT_EQ(merged->type(m).shape, (Shape{2, 5, 12}));
  EXPECT_EQ(AttrReader(merged->node(t).attrs, OpKind::Transpose).ints("perm"), (std::vector<int64_t>{0, 2, 1}));
  expectSameAsReference(g);
  // The flatten alone, as a discriminator's last convolution feeds its linear layer.
  Graph alone("flatten_alone");
  ValueId y = alone.addInput("x", f32({2, 3, 4, 5}));
  ValueId ty = alone.addOp(OpKind::Transpose, {y}, {{"perm", std::vector<int64_t>{0, 3, 1, 2}}});
  alone.addOutput("y", alone.addOp(OpKind::Reshape, {ty}, {{"shape", std::vector<int64_t>{2, 60}}}));
  auto flattened = coalesceDims(alone);
  ASSERT_TRUE(flattened.has_value());
  EXPECT_EQ(flattened->type(y).shape, (Shape{2, 12, 5}));
  expectSameAsReference(alone);
}
