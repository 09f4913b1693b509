// The rewriter's map, its name and loc rules, and output retargeting.
#include <gtest/gtest.h>

#include <stdexcept>

#include "ir/verifier.h"
#include "passes/rewriter.h"
#include "pass_test_util.h"

using namespace weft::ir;
using namespace weft::passes;
using namespace weft::passes::testing;

namespace {
const TensorType kF64x3{DType::f64, {3}};
}

TEST(Rewriter, ReplacementSubgraphTakesNameAndLoc) {
  Graph g("r");
  auto x = g.addInput("x", kF64x3);
  auto s = g.addOp(OpKind::Silu, {x}, {}, "act", "m.cpp:4");
  g.addOutput("out", g.addOp(OpKind::Exp, {s}, {}, "y"));
  bool changed = rewriteNodes(g, [](Rewriter& rw, ValueId v) -> std::optional<ValueId> {
    if (rw.source().node(v).op != OpKind::Silu) return std::nullopt;
    Emitter e = rw.emitterFor(v);
    ValueId x = rw.map(rw.source().node(v).operands[0]);
    return e.mul(x, e.op(OpKind::Sigmoid, {x}));
  });
  ASSERT_TRUE(changed);
  ASSERT_TRUE(verifyErrors(g).empty());
  EXPECT_EQ(opNames(g), (std::vector<std::string>{"input", "sigmoid", "mul", "exp"}));
  EXPECT_EQ(g.node(1).name, "");
  EXPECT_EQ(g.node(1).loc, "m.cpp:4");
  EXPECT_EQ(g.node(2).name, "act");
  EXPECT_EQ(g.node(2).loc, "m.cpp:4");
  EXPECT_EQ(g.node(3).operands, (std::vector<ValueId>{2}));
  EXPECT_EQ(g.outputs()[0].value, 3);
}

TEST(Rewriter, EarlierValuesAdoptNamesOnlyWhenUnnamed) {
  Graph g("r");
  auto x = g.addInput("x", kF64x3);
  auto e = g.addOp(OpKind::Exp, {x});
  auto t = g.addOp(OpKind::StopGradient, {e}, {}, "t");
  auto u = g.addOp(OpKind::StopGradient, {x}, {}, "u");
  g.addOutput("a", t);
  g.addOutput("b", u);
  // Replace every stop_gradient by its operand.
  rewriteNodes(g, [](Rewriter& rw, ValueId v) -> std::optional<ValueId> {
    if (rw.source().node(v).op != OpKind::StopGradient) return std::nullopt;
    return rw.map(rw.source().node(v).operands[0]);
  });
  ASSERT_TRUE(verifyErrors(g).empty());
  EXPECT_EQ(g.size(), 2);
  EXPECT_EQ(g.node(1).name, "t");  // the unnamed exp took the name
  EXPECT_EQ(g.node(0).name, "x");  // an input keeps its own
  EXPECT_EQ(g.outputs()[0].value, 1);
  EXPECT_EQ(g.outputs()[1].value, 0);
  EXPECT_EQ(g.outputs()[1].name, "b");
}

TEST(Rewriter, UnchangedRewriteLeavesTheGraphObjectAlone) {
  Graph g("r");
  auto x = g.addInput("x", kF64x3);
  g.addOutput("out", g.addOp(OpKind::Exp, {x}, {}, "", "m.cpp:1"));
  Graph before = g;
  EXPECT_FALSE(rewriteNodes(g, [](Rewriter&, ValueId) { return std::optional<ValueId>(); }));
  expectSameGraph(g, before);
}

TEST(Rewriter, MappingAnErasedValueIsAnInternalError) {
  Graph g("r");
  auto x = g.addInput("x", kF64x3);
  auto e = g.addOp(OpKind::Exp, {x});
  g.addOutput("out", e);
  Rewriter rw(g);
  rw.copy(x);
  rw.erase(e);
  EXPECT_FALSE(rw.isMapped(e));
  EXPECT_THROW(rw.map(e), std::logic_error);
  EXPECT_THROW(rw.finish(), std::logic_error);
}
