#include <gtest/gtest.h>

#include "ir/error.h"
#include "ir/graph.h"
#include "ir/verifier.h"

using namespace weft::ir;

TEST(Types, BroadcastFollowsNumpy) {
  EXPECT_EQ(*broadcastShapes({4, 1, 3}, {5, 1}), (Shape{4, 5, 3}));
  EXPECT_FALSE(broadcastShapes({2, 3}, {4}).has_value());
  EXPECT_EQ((TensorType{DType::f32, {4, 8}}).str(), "f32[4,8]");
  EXPECT_EQ((TensorType{DType::boolean, {}}).str(), "bool[]");
}

TEST(OpTable, NamesRoundTrip) {
  for (const auto& info : allOps()) {
    auto k = opByName(info.name);
    ASSERT_TRUE(k.has_value()) << info.name;
    EXPECT_EQ(*k, info.kind);
  }
  EXPECT_FALSE(opByName("no_such_op"));
  EXPECT_TRUE(opInfo(OpKind::Concat).variadic);
}

TEST(Graph, AddOpInfersTypes) {
  Graph g("t");
  auto x = g.addInput("x", {DType::f32, {4, 8}});
  auto w = g.addParam("w", {DType::f32, {8, 16}}, {{"init", std::string("zeros")}});
  auto y = g.addOp(OpKind::Matmul, {x, w});
  EXPECT_EQ(g.type(y).str(), "f32[4,16]");
  auto s = g.addOp(OpKind::ReduceSum, {y}, {{"axes", std::vector<int64_t>{1}}, {"keepdims", int64_t{0}}});
  EXPECT_EQ(g.type(s).str(), "f32[4]");
  g.addOutput("out", s);
  EXPECT_TRUE(verifyErrors(g).empty());
}

TEST(Graph, ShapeErrorsNameOpAndTypes) {
  Graph g;
  auto a = g.addInput("a", {DType::f32, {2, 3}});
  auto b = g.addInput("b", {DType::f32, {4}});
  try {
    g.addOp(OpKind::Add, {a, b});
    FAIL() << "expected an error";
  } catch (const weft::Error& e) {
    EXPECT_STREQ(e.what(), "add(f32[2,3], f32[4]): operand shapes do not broadcast");
  }
}

TEST(Verifier, CatchesWrongTypeAndOrder) {
  Graph g;
  auto a = g.addInput("a", {DType::f32, {2}});
  Node bad;
  bad.op = OpKind::Exp;
  bad.operands = {a};
  bad.type = {DType::f32, {3}};
  g.addNode(bad);
  Node fwd;
  fwd.op = OpKind::Neg;
  fwd.operands = {5};
  fwd.type = {DType::f32, {2}};
  g.addNode(fwd);
  auto errs = verifyErrors(g);
  ASSERT_EQ(errs.size(), 2u);
  EXPECT_NE(errs[0].find("declared type f32[3] but the type rule gives f32[2]"), std::string::npos);
  EXPECT_NE(errs[1].find("not defined before its use"), std::string::npos);
}
