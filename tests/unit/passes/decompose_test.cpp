// decompose-composites: every composite op decomposes into a valid graph of primitives that
// keeps the composite's name, type and location. Numerical equivalence with the reference
// interpreter is in decompose_equivalence_test.cpp.
#include <gtest/gtest.h>

#include <set>

#include "ir/verifier.h"
#include "passes/builtin_passes.h"
#include "passes/decompositions.h"
#include "composite_samples.h"
#include "pass_test_util.h"

using namespace weft::ir;
using namespace weft::passes;
using namespace weft::passes::testing;

TEST(Decompositions, TableCoversExactlyTheCompositeOps) {
  for (const auto& info : allOps()) {
    EXPECT_EQ(findDecomposition(info.kind) != nullptr, info.has(kComposite)) << info.name;
  }
  std::set<OpKind> sampled;
  for (const auto& s : compositeSamples(DType::f32)) sampled.insert(s.op);
  for (const auto& info : allOps()) {
    if (info.has(kComposite)) {
      EXPECT_TRUE(sampled.count(info.kind)) << "no sample graph for " << info.name;
    }
  }
}

TEST(Decompositions, EveryCompositeBecomesValidPrimitives) {
  for (DType dtype : {DType::f32, DType::f64, DType::bf16}) {
    for (auto& s : compositeSamples(dtype)) {
      SCOPED_TRACE(s.label + " in " + std::string(dtypeName(dtype)));
      Graph g = s.graph;
      TensorType resultType = g.type(g.outputs()[0].value);
      ASSERT_TRUE(decomposeComposites(g));
      ASSERT_TRUE(verifyErrors(g).empty()) << verifyErrors(g).front();
      EXPECT_EQ(countFlagged(g, kComposite), 0);
      ASSERT_EQ(g.outputs().size(), 1u);
      EXPECT_EQ(g.outputs()[0].name, "result");
      const Node& result = g.node(g.outputs()[0].value);
      EXPECT_EQ(result.name, "result");
      EXPECT_EQ(result.type, resultType);
      EXPECT_EQ(g.inputs(), s.graph.inputs());
      for (const Node& n : g.nodes()) {
        if (n.op != OpKind::Input) {
          EXPECT_EQ(n.loc, "sample.cpp:1") << opName(n.op);
        }
      }
      EXPECT_FALSE(decomposeComposites(g)) << "a second run has nothing left to do";
    }
  }
}

TEST(Decompositions, SoftmaxSubtractsTheMaxFirst) {
  Graph g("s");
  auto x = g.addInput("x", {DType::f32, {2, 5}});
  g.addOutput("probs", g.addOp(OpKind::Softmax, {x}, {{"axis", int64_t{1}}}, "probs"));
  ASSERT_TRUE(decomposeComposites(g));
  EXPECT_EQ(opNames(g), (std::vector<std::string>{"input", "reduce_max", "sub", "exp", "reduce_sum", "div"}));
  EXPECT_EQ(g.node(1).operands, (std::vector<ValueId>{x}));
  EXPECT_EQ(g.node(g.outputs()[0].value).name, "probs");
}

TEST(Decompositions, ReluIsMaximumWithZero) {
  Graph g("r");
  auto x = g.addInput("x", {DType::f64, {3}});
  g.addOutput("y", g.addOp(OpKind::Relu, {x}));
  ASSERT_TRUE(decomposeComposites(g));
  EXPECT_EQ(opNames(g), (std::vector<std::string>{"input", "constant", "maximum"}));
  const auto& zero = std::get<TensorDataPtr>(g.node(1).attrs.at("value"));
  EXPECT_EQ(zero->type, (TensorType{DType::f64, {}}));
  EXPECT_EQ(zero->get(0), 0.0);
}

TEST(Decompositions, SurroundingNodesKeepNamesAndOutputsFollow) {
  Graph g("m");
  auto x = g.addInput("x", {DType::f32, {2, 4}});
  auto w = g.addParam("w", {DType::f32, {4, 4}}, {{"init", std::string("normal")}, {"scale", 0.1}, {"seed", int64_t{5}}});
  auto h = g.addOp(OpKind::Matmul, {x, w}, {}, "h");
  auto a = g.addOp(OpKind::Gelu, {h}, {{"approximate", int64_t{0}}}, "act", "model.cpp:12");
  auto y = g.addOp(OpKind::Exp, {a}, {}, "y");
  g.addOutput("y", y);
  g.addOutput("act", a);
  ASSERT_TRUE(decomposeComposites(g));
  ASSERT_TRUE(verifyErrors(g).empty());
  auto act = g.find("act");
  ASSERT_TRUE(act.has_value());
  EXPECT_EQ(*g.findOutput("act"), *act);
  EXPECT_EQ(g.node(*act).op, OpKind::Mul);
  EXPECT_EQ(g.node(*act).loc, "model.cpp:12");
  const Node& exp = g.node(*g.findOutput("y"));
  EXPECT_EQ(exp.name, "y");
  EXPECT_EQ(exp.operands, (std::vector<ValueId>{*act}));
  EXPECT_EQ(g.node(*g.find("h")).op, OpKind::Matmul);
  EXPECT_EQ(g.params().size(), 1u);
}

TEST(Decompositions, GraphWithoutCompositesIsUntouched) {
  Graph g("plain");
  auto x = g.addInput("x", {DType::f32, {2, 3}});
  auto w = g.addInput("w", {DType::f32, {3, 4}});
  g.addOutput("out", g.addOp(OpKind::Tanh, {g.addOp(OpKind::Matmul, {x, w})}));
  Graph before = g;
  EXPECT_FALSE(decomposeComposites(g));
  expectSameGraph(g, before);
}
