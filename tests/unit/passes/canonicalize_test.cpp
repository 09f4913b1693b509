// canonicalize: each identity on a small graph, the broadcasting guard, and no-change graphs.
#include <gtest/gtest.h>

#include "ir/verifier.h"
#include "passes/builtin_passes.h"
#include "pass_test_util.h"

using namespace weft::ir;
using namespace weft::passes;
using namespace weft::passes::testing;

namespace {

const TensorType kF32x23{DType::f32, {2, 3}};

/// Builds `x op c` (or `c op x` when constantFirst) with c a constant filled with `value`,
/// and returns the graph after canonicalize, which must report `expectChange`.
Graph simplifyBinary(OpKind op, TensorType constType, double value, bool constantFirst, bool expectChange) {
  Graph g("b");
  auto x = g.addInput("x", kF32x23);
  auto c = g.addConstant(filled(constType, value));
  auto r = constantFirst ? g.addOp(op, {c, x}, {}, "r") : g.addOp(op, {x, c}, {}, "r");
  g.addOutput("out", g.addOp(OpKind::Exp, {r}));
  Graph before = g;
  EXPECT_EQ(canonicalize(g), expectChange) << opName(op);
  EXPECT_TRUE(verifyErrors(g).empty());
  if (!expectChange) expectSameGraph(g, before);
  return g;
}

}  // namespace

TEST(Canonicalize, NeutralElementsDisappear) {
  struct Case {
    OpKind op;
    double value;
    bool constantFirst;
  };
  for (Case c : {Case{OpKind::Add, 0, false}, Case{OpKind::Add, 0, true}, Case{OpKind::Sub, 0, false},
                 Case{OpKind::Mul, 1, false}, Case{OpKind::Mul, 1, true}, Case{OpKind::Div, 1, false}}) {
    Graph g = simplifyBinary(c.op, {DType::f32, {3}}, c.value, c.constantFirst, true);
    ValueId exp = g.outputs()[0].value;
    EXPECT_EQ(g.node(exp).operands, (std::vector<ValueId>{0})) << opName(c.op) << ": exp must read x directly";
    EXPECT_EQ(g.node(exp).op, OpKind::Exp);
  }
}

TEST(Canonicalize, NonNeutralOrWrongSideIsKept) {
  simplifyBinary(OpKind::Sub, {DType::f32, {3}}, 0, /*constantFirst=*/true, false);  // 0 - x
  simplifyBinary(OpKind::Div, {DType::f32, {3}}, 1, /*constantFirst=*/true, false);  // 1 / x
  simplifyBinary(OpKind::Add, {DType::f32, {3}}, 1, false, false);
  simplifyBinary(OpKind::Mul, {DType::f32, {3}}, 0, false, false);
  simplifyBinary(OpKind::Mul, {DType::f32, {3}}, -1, false, false);
}

TEST(Canonicalize, IdentityThatWouldChangeTheTypeIsKept) {
  // x: f32[2,3] + zeros f32[4,2,3] broadcasts to f32[4,2,3]: not x.
  simplifyBinary(OpKind::Add, {DType::f32, {4, 2, 3}}, 0, false, false);
  simplifyBinary(OpKind::Mul, {DType::f32, {5, 1, 1}}, 1, true, false);
}

TEST(Canonicalize, ConstantWithOneDifferentElementIsNotNeutral) {
  Graph g("b");
  auto x = g.addInput("x", kF32x23);
  auto c = g.addConstant(tensor({DType::f32, {3}}, {0, 0, 1e-30}));
  g.addOutput("out", g.addOp(OpKind::Add, {x, c}));
  EXPECT_FALSE(canonicalize(g));
}

TEST(Canonicalize, BroadcastOfAZeroScalarIsNeutral) {
  Graph g("b");
  auto x = g.addInput("x", kF32x23);
  auto zero = g.addConstant(filled({DType::f32, {}}, 0));
  auto wide = g.addOp(OpKind::Broadcast, {zero}, {{"shape", Shape{2, 3}}});
  g.addOutput("out", g.addOp(OpKind::Add, {x, wide}, {}, "sum"));
  EXPECT_TRUE(canonicalize(g));
  EXPECT_EQ(g.outputs()[0].value, 0);
}

TEST(Canonicalize, DoubleNegationAndNamesMoveToTheKeptValue) {
  Graph g("n");
  auto x = g.addInput("x", kF32x23);
  auto e = g.addOp(OpKind::Exp, {x});
  auto n1 = g.addOp(OpKind::Neg, {e});
  auto n2 = g.addOp(OpKind::Neg, {n1}, {}, "back");
  auto n3 = g.addOp(OpKind::Neg, {n2});
  auto n4 = g.addOp(OpKind::Neg, {n3});
  g.addOutput("out", n4);
  g.addOutput("mid", n2);
  EXPECT_TRUE(canonicalize(g));
  ASSERT_TRUE(verifyErrors(g).empty());
  // Both outputs are exp(x); the unnamed exp takes the name of the first node it replaces.
  EXPECT_EQ(g.outputs()[0].value, 1);
  EXPECT_EQ(g.outputs()[1].value, 1);
  EXPECT_EQ(g.outputs()[1].name, "mid");
  EXPECT_EQ(g.node(1).name, "back");
}

TEST(Canonicalize, ReshapeChainsCollapse) {
  Graph g("r");
  auto x = g.addInput("x", {DType::f32, {2, 3, 4}});
  auto a = g.addOp(OpKind::Reshape, {x}, {{"shape", Shape{6, 4}}});
  auto b = g.addOp(OpKind::Reshape, {a}, {{"shape", Shape{24}}});
  auto c = g.addOp(OpKind::Reshape, {b}, {{"shape", Shape{4, 6}}}, "c", "model.cpp:7");
  auto same = g.addOp(OpKind::Reshape, {c}, {{"shape", Shape{4, 6}}});
  g.addOutput("out", same);
  EXPECT_TRUE(canonicalize(g));
  ASSERT_TRUE(verifyErrors(g).empty());
  const Node& out = g.node(g.outputs()[0].value);
  EXPECT_EQ(out.op, OpKind::Reshape);
  EXPECT_EQ(out.operands, (std::vector<ValueId>{0}));
  EXPECT_EQ(out.type.shape, (Shape{4, 6}));
  EXPECT_EQ(out.name, "c");
  EXPECT_EQ(out.loc, "model.cpp:7");
}

TEST(Canonicalize, ReshapeBackToTheOriginalShapeIsX) {
  Graph g("r");
  auto x = g.addInput("x", {DType::f32, {2, 3}});
  auto a = g.addOp(OpKind::Reshape, {x}, {{"shape", Shape{3, 2}}});
  g.addOutput("out", g.addOp(OpKind::Reshape, {a}, {{"shape", Shape{2, 3}}}));
  EXPECT_TRUE(canonicalize(g));
  EXPECT_EQ(g.outputs()[0].value, x);
}

TEST(Canonicalize, TransposesCompose) {
  Graph g("t");
  auto x = g.addInput("x", {DType::f32, {2, 3, 4}});
  auto a = g.addOp(OpKind::Transpose, {x}, {{"perm", std::vector<int64_t>{1, 2, 0}}});  // [3,4,2]
  auto b = g.addOp(OpKind::Transpose, {a}, {{"perm", std::vector<int64_t>{0, 2, 1}}});  // [3,2,4]
  g.addOutput("out", b);
  EXPECT_TRUE(canonicalize(g));
  ASSERT_TRUE(verifyErrors(g).empty());
  const Node& out = g.node(g.outputs()[0].value);
  EXPECT_EQ(out.op, OpKind::Transpose);
  EXPECT_EQ(out.operands, (std::vector<ValueId>{x}));
  // out[i] = x dim perm[i]: dims (1, 0, 2) give [3,2,4].
  EXPECT_EQ(std::get<std::vector<int64_t>>(out.attrs.at("perm")), (std::vector<int64_t>{1, 0, 2}));
  EXPECT_EQ(out.type.shape, (Shape{3, 2, 4}));
}

TEST(Canonicalize, InverseAndIdentityTransposesVanish) {
  Graph g("t");
  auto x = g.addInput("x", {DType::f32, {2, 3, 4}});
  auto a = g.addOp(OpKind::Transpose, {x}, {{"perm", std::vector<int64_t>{1, 2, 0}}});
  auto b = g.addOp(OpKind::Transpose, {a}, {{"perm", std::vector<int64_t>{2, 0, 1}}});
  auto c = g.addOp(OpKind::Transpose, {x}, {{"perm", std::vector<int64_t>{0, 1, 2}}});
  g.addOutput("inverse", b);
  g.addOutput("identity", c);
  EXPECT_TRUE(canonicalize(g));
  EXPECT_EQ(g.outputs()[0].value, x);
  EXPECT_EQ(g.outputs()[1].value, x);
}

TEST(Canonicalize, BroadcastAndCastToTheSameTypeVanish) {
  Graph g("bc");
  auto x = g.addInput("x", kF32x23);
  auto b = g.addOp(OpKind::Broadcast, {x}, {{"shape", Shape{2, 3}}});
  auto c = g.addOp(OpKind::Cast, {b}, {{"dtype", DType::f32}});
  auto wide = g.addOp(OpKind::Broadcast, {c}, {{"shape", Shape{5, 2, 3}}});
  auto wider = g.addOp(OpKind::Broadcast, {wide}, {{"shape", Shape{7, 5, 2, 3}}});
  g.addOutput("same", c);
  g.addOutput("wider", wider);
  EXPECT_TRUE(canonicalize(g));
  ASSERT_TRUE(verifyErrors(g).empty());
  EXPECT_EQ(g.outputs()[0].value, x);
  const Node& w = g.node(g.outputs()[1].value);
  EXPECT_EQ(w.op, OpKind::Broadcast);
  EXPECT_EQ(w.operands, (std::vector<ValueId>{x}));
  EXPECT_EQ(w.type.shape, (Shape{7, 5, 2, 3}));
}

TEST(Canonicalize, RealCastsStay) {
  Graph g("c");
  auto x = g.addInput("x", kF32x23);
  g.addOutput("out", g.addOp(OpKind::Cast, {x}, {{"dtype", DType::f64}}));
  Graph before = g;
  EXPECT_FALSE(canonicalize(g));
  expectSameGraph(g, before);
}

TEST(Canonicalize, GraphWithoutIdentitiesIsUntouched) {
  Graph g("plain");
  auto x = g.addInput("x", {DType::f32, {2, 3}});
  auto w = g.addParam("w", {DType::f32, {3, 4}}, {{"init", std::string("zeros")}});
  auto m = g.addOp(OpKind::Matmul, {x, w}, {}, "", "m.cpp:1");
  auto r = g.addOp(OpKind::Reshape, {m}, {{"shape", Shape{8}}});
  auto t = g.addOp(OpKind::Transpose, {m}, {{"perm", std::vector<int64_t>{1, 0}}});
  auto two = g.addConstant(filled({DType::f32, {}}, 2));
  g.addOutput("a", g.addOp(OpKind::Mul, {r, two}));
  g.addOutput("b", g.addOp(OpKind::Neg, {t}));
  Graph before = g;
  EXPECT_FALSE(canonicalize(g));
  expectSameGraph(g, before);
}

namespace {

/// sum over the batch of x^T dy: reduce_sum(matmul(x, dy, transpose_lhs), axes) on
/// x [2,3,5,4] and dy [2,3,5,6]; `shared` also outputs the stack of partial products.
Graph batchSummedWeightGradient(std::vector<int64_t> axes, bool shared) {
  Graph g("wgrad");
  auto x = g.addInput("x", {DType::f32, {2, 3, 5, 4}});
  auto dy = g.addInput("dy", {DType::f32, {2, 3, 5, 6}});
  auto stack = g.addOp(OpKind::Matmul, {x, dy}, {{"transpose_lhs", int64_t{1}}});
  g.addOutput("dw", g.addOp(OpKind::ReduceSum, {stack}, {{"axes", axes}, {"keepdims", int64_t{0}}}));
  if (shared) g.addOutput("stack", stack);
  return g;
}

}  // namespace

TEST(Canonicalize, BatchSummedWeightGradientBecomesOneMatmul) {
  Graph g = batchSummedWeightGradient({0, 1}, false);
  Graph before = g;
  ASSERT_TRUE(canonicalize(g));
  ASSERT_TRUE(verifyErrors(g).empty());
  const Node& out = g.node(g.outputs()[0].value);
  ASSERT_EQ(out.op, OpKind::Reshape);
  const Node& product = g.node(out.operands[0]);
  ASSERT_EQ(product.op, OpKind::Matmul);
  EXPECT_EQ(product.type.shape, (Shape{4, 6}));
  EXPECT_EQ(g.type(product.operands[0]).shape, (Shape{30, 4}));
  EXPECT_EQ(g.node(g.outputs()[0].value).type, before.node(before.outputs()[0].value).type);
  expectSameResults(before, g, smoothFeeds(before, 0.9), 1e-5);
}

TEST(Canonicalize, PartialBatchSumsAndSharedStacksAreKept) {
  for (bool shared : {false, true}) {
    Graph g = batchSummedWeightGradient(shared ? std::vector<int64_t>{0, 1} : std::vector<int64_t>{0}, shared);
    Graph before = g;
    EXPECT_FALSE(canonicalize(g));
    expectSameGraph(g, before);
  }
}

// The gradient of three slices of one axis (an attention's q, k, v split) is a sum of zero
// pads that tile the axis: one concat. Pads that leave a gap, overlap, or pad two axes stay.
TEST(Canonicalize, PadsTilingAnAxisBecomeAConcat) {
  auto padAttrs = [](int64_t low, int64_t high) {
    return Attrs{{"low", std::vector<int64_t>{0, low}}, {"high", std::vector<int64_t>{0, high}}, {"value", 0.0}};
  };
  for (int variant = 0; variant < 3; ++variant) {
    SCOPED_TRACE(variant);
    Graph g("split_grad");
    auto a = g.addInput("a", {DType::f32, {2, 4}});
    auto b = g.addInput("b", {DType::f32, {2, 4}});
    auto c = g.addInput("c", {DType::f32, {2, 4}});
    // variant 0 tiles [0,12) as c, a, b; 1 leaves a gap; 2 overlaps
    int64_t bLow = variant == 1 ? 9 : variant == 2 ? 3 : 8;
    auto pa = g.addOp(OpKind::Pad, {a}, padAttrs(4, 4));
    auto pb = g.addOp(OpKind::Pad, {b}, padAttrs(bLow, 12 - 4 - bLow + (variant == 1 ? 1 : 0)));
    auto pc = g.addOp(OpKind::Pad, {c}, padAttrs(0, 8 + (variant == 1 ? 1 : 0)));
    if (variant == 1) pa = g.addOp(OpKind::Pad, {a}, padAttrs(4, 5));
    g.addOutput("dx", g.addOp(OpKind::Add, {g.addOp(OpKind::Add, {pa, pb}), pc}));
    Graph before = g;
    canonicalize(g);
    eliminateDeadCode(g);
    EXPECT_EQ(countOps(g, OpKind::Concat), variant == 0 ? 1 : 0);
    EXPECT_EQ(countOps(g, OpKind::Pad), variant == 0 ? 0 : 3);
    expectSameResults(before, g, smoothFeeds(before, 0.7), 0);
  }
}
