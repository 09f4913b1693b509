// cse and dce on small graphs: what merges, what never merges, names, outputs, no-change.
#include <gtest/gtest.h>

#include "ir/verifier.h"
#include "passes/builtin_passes.h"
#include "pass_test_util.h"

using namespace weft::ir;
using namespace weft::passes;
using namespace weft::passes::testing;

namespace {
const TensorType kF32x4{DType::f32, {4}};

Attrs normalAttrs(int64_t seed) {
  return {{"shape", Shape{4}}, {"dtype", DType::f32}, {"seed", seed}, {"mean", 0.0}, {"std", 1.0}};
}
}  // namespace

TEST(Cse, EqualSubgraphsCollapseInOneSweep) {
  Graph g("g");
  auto x = g.addInput("x", kF32x4);
  auto a1 = g.addOp(OpKind::Exp, {x});
  auto a2 = g.addOp(OpKind::Exp, {x});
  auto b1 = g.addOp(OpKind::Log, {a1});
  auto b2 = g.addOp(OpKind::Log, {a2});
  g.addOutput("out", g.addOp(OpKind::Add, {b1, b2}));
  EXPECT_TRUE(eliminateCommonSubexpressions(g));
  ASSERT_TRUE(verifyErrors(g).empty());
  EXPECT_EQ(opNames(g), (std::vector<std::string>{"input", "exp", "log", "add"}));
  EXPECT_EQ(g.node(3).operands, (std::vector<ValueId>{2, 2}));
}

TEST(Cse, AttributesAndOperandOrderMatter) {
  Graph g("g");
  auto x = g.addInput("x", {DType::f32, {2, 3}});
  auto y = g.addInput("y", {DType::f32, {2, 3}});
  auto s0 = g.addOp(OpKind::ReduceSum, {x}, axesAttrs({0}, false));
  auto s1 = g.addOp(OpKind::ReduceSum, {x}, axesAttrs({1}, false));
  auto k0 = g.addOp(OpKind::ReduceSum, {x}, axesAttrs({0}, true));
  auto xy = g.addOp(OpKind::Sub, {x, y});
  auto yx = g.addOp(OpKind::Sub, {y, x});
  for (ValueId v : {s0, s1, k0, xy, yx}) g.addOutput("o" + std::to_string(v), v);
  Graph before = g;
  EXPECT_FALSE(eliminateCommonSubexpressions(g));
  expectSameGraph(g, before);
}

TEST(Cse, ConstantsMergeByValueAndFloatAttrsBitwise) {
  Graph g("g");
  auto x = g.addInput("x", kF32x4);
  auto c1 = g.addConstant(tensor(kF32x4, {1, 2, 3, 4}));
  auto c2 = g.addConstant(tensor(kF32x4, {1, 2, 3, 4}));
  auto c3 = g.addConstant(tensor(kF32x4, {1, 2, 3, 5}));
  auto c4 = g.addConstant(tensor({DType::f64, {4}}, {1, 2, 3, 4}));
  auto p1 = g.addOp(OpKind::Pad, {x}, {{"low", Shape{1}}, {"high", Shape{0}}, {"value", 0.0}});
  auto p2 = g.addOp(OpKind::Pad, {x}, {{"low", Shape{1}}, {"high", Shape{0}}, {"value", -0.0}});
  auto p3 = g.addOp(OpKind::Pad, {x}, {{"low", Shape{1}}, {"high", Shape{0}}, {"value", 0.0}});
  for (ValueId v : {c1, c2, c3, c4, p1, p2, p3}) g.addOutput("o" + std::to_string(v), v);
  EXPECT_TRUE(eliminateCommonSubexpressions(g));
  ASSERT_TRUE(verifyErrors(g).empty());
  EXPECT_EQ(countOps(g, OpKind::Constant), 3);
  EXPECT_EQ(countOps(g, OpKind::Pad), 2);  // -0.0 is a different pad value
  EXPECT_EQ(g.outputs()[0].value, g.outputs()[1].value);
  EXPECT_NE(g.outputs()[0].value, g.outputs()[2].value);
  EXPECT_EQ(g.outputs()[4].value, g.outputs()[6].value);
  EXPECT_NE(g.outputs()[4].value, g.outputs()[5].value);
}

TEST(Cse, InputsParamsAndRandomOpsNeverMerge) {
  Graph g("g");
  auto a = g.addInput("a", kF32x4);
  auto b = g.addInput("b", kF32x4);
  auto p = g.addParam("p", kF32x4, {{"init", std::string("zeros")}});
  auto q = g.addParam("q", kF32x4, {{"init", std::string("zeros")}});
  auto r1 = g.addOp(OpKind::RandomNormal, {}, normalAttrs(3));
  auto r2 = g.addOp(OpKind::RandomNormal, {}, normalAttrs(3));
  auto i1 = g.addOp(OpKind::Iota, {}, {{"shape", Shape{4}}, {"axis", int64_t{0}}, {"dtype", DType::f32}});
  auto i2 = g.addOp(OpKind::Iota, {}, {{"shape", Shape{4}}, {"axis", int64_t{0}}, {"dtype", DType::f32}});
  for (ValueId v : {a, b, p, q, r1, r2}) g.addOutput("o" + std::to_string(v), v);
  g.addOutput("i", g.addOp(OpKind::Add, {i1, i2}));
  EXPECT_TRUE(eliminateCommonSubexpressions(g));  // only the iotas merge
  EXPECT_EQ(countOps(g, OpKind::Input), 2);
  EXPECT_EQ(countOps(g, OpKind::Param), 2);
  EXPECT_EQ(countOps(g, OpKind::RandomNormal), 2);
  EXPECT_EQ(countOps(g, OpKind::Iota), 1);
}

TEST(Cse, SurvivorKeepsItsNameAndOutputsRetarget) {
  Graph g("g");
  auto x = g.addInput("x", kF32x4);
  auto first = g.addOp(OpKind::Exp, {x}, {}, "first");
  auto second = g.addOp(OpKind::Exp, {x}, {}, "second");
  auto third = g.addOp(OpKind::Tanh, {x});
  auto fourth = g.addOp(OpKind::Tanh, {x}, {}, "fourth");
  g.addOutput("a", first);
  g.addOutput("b", second);
  g.addOutput("c", fourth);
  (void)third;
  EXPECT_TRUE(eliminateCommonSubexpressions(g));
  ASSERT_TRUE(verifyErrors(g).empty());
  ASSERT_EQ(g.size(), 3);
  EXPECT_EQ(g.node(1).name, "first");
  EXPECT_EQ(g.outputs()[0].value, 1);
  EXPECT_EQ(g.outputs()[1].value, 1);
  EXPECT_EQ(g.outputs()[1].name, "b");
  // An unnamed survivor takes the name of the node merged into it.
  EXPECT_EQ(g.node(2).name, "fourth");
  EXPECT_EQ(g.outputs()[2].value, 2);
}

TEST(Dce, RemovesUnreachableNodesButKeepsInterface) {
  Graph g("g");
  auto x = g.addInput("x", kF32x4);
  auto unused = g.addInput("unused", kF32x4);
  auto w = g.addParam("w", kF32x4, {{"init", std::string("ones")}});
  auto dead1 = g.addOp(OpKind::Exp, {unused});
  g.addOp(OpKind::Log, {dead1});
  g.addConstant(filled(kF32x4, 3));
  auto live = g.addOp(OpKind::Mul, {x, x}, {}, "sq", "m.cpp:3");
  g.addOp(OpKind::RandomNormal, {}, normalAttrs(1));
  g.addOutput("out", live);
  g.addOutput("again", live);
  (void)w;
  EXPECT_TRUE(eliminateDeadCode(g));
  ASSERT_TRUE(verifyErrors(g).empty());
  EXPECT_EQ(opNames(g), (std::vector<std::string>{"input", "input", "param", "mul"}));
  EXPECT_EQ(g.node(3).name, "sq");
  EXPECT_EQ(g.node(3).loc, "m.cpp:3");
  EXPECT_EQ(g.node(3).operands, (std::vector<ValueId>{0, 0}));
  EXPECT_EQ(g.outputs()[0].value, 3);
  EXPECT_EQ(g.outputs()[1].name, "again");
  EXPECT_EQ(g.outputs()[1].value, 3);
}

TEST(Dce, LiveGraphIsUntouched) {
  Graph g("g");
  auto x = g.addInput("x", kF32x4);
  auto c = g.addConstant(filled(kF32x4, 2));
  g.addOutput("out", g.addOp(OpKind::Mul, {x, c}));
  Graph before = g;
  EXPECT_FALSE(eliminateDeadCode(g));
  expectSameGraph(g, before);
}

// After differentiation stop_gradient is the identity: stripping it lets cse merge what was
// computed twice only to be frozen once (a GAN's discriminator on the generator's output).
TEST(StripStopGradient, FrozenCopiesDisappearAndMerge) {
  Graph g("frozen");
  auto x = g.addInput("x", {DType::f32, {4, 8}});
  auto live = g.addOp(OpKind::Exp, {x});
  auto frozenExp = g.addOp(OpKind::Exp, {g.addOp(OpKind::StopGradient, {x})});
  g.addOutput("out", g.addOp(OpKind::Add, {live, frozenExp}));
  Graph stripped = g;
  ASSERT_TRUE(stripStopGradients(stripped));
  EXPECT_EQ(countOps(stripped, OpKind::StopGradient), 0);
  eliminateCommonSubexpressions(stripped);
  eliminateDeadCode(stripped);
  EXPECT_EQ(countOps(stripped, OpKind::Exp), 1);
  expectSameResults(g, stripped, smoothFeeds(g, 0.3), 0);
  EXPECT_FALSE(stripStopGradients(stripped));
}
