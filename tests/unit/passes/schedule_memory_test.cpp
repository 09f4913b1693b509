// schedule-memory: a node that frees more bytes than it allocates moves ahead of one that
// only allocates; ties broken depth first where that keeps less alive; a graph with nothing
// to gain keeps its order; results and updates are kept.
#include <gtest/gtest.h>

#include "ir/verifier.h"
#include "pass_test_util.h"
#include "passes/builtin_passes.h"

using namespace weft;
using namespace weft::ir;
using namespace weft::passes;
using namespace weft::passes::testing;

namespace {

/// The position of the node named `name` in `g`, or -1.
ValueId positionOf(const Graph& g, const std::string& name) {
  for (ValueId v = 0; v < g.size(); ++v)
    if (g.node(v).name == name) return v;
  return -1;
}

/// A backward step's shape: a saved activation `s` and a gradient `dy`; the data gradient
/// `dx` comes first in node order, the weight gradient `dw` (the last reader of `s`) after it.
Graph backwardStep() {
  Graph g("backward");
  auto x = g.addInput("x", {DType::f32, {256, 64}});
  auto w = g.addInput("w", {DType::f32, {64, 64}});
  auto s = g.addOp(OpKind::Neg, {x}, {}, "s");
  auto dy = g.addOp(OpKind::Exp, {x}, {}, "dy");
  auto dx = g.addOp(OpKind::Matmul, {dy, w}, {}, "dx");
  auto dw = g.addOp(OpKind::Matmul, {s, dy}, {{"transpose_lhs", int64_t{1}}}, "dw");
  g.addOutput("dx", dx);
  g.addOutput("dw", dw);
  return g;
}

}  // namespace

// In node order 64 KiB for s, dy and dx are alive when dw is computed; dw first frees s
// before dx is made.
TEST(ScheduleMemory, WeightGradientRunsBeforeTheDataGradient) {
  Graph g = backwardStep();
  Graph scheduled = g;
  ASSERT_TRUE(scheduleForMemory(scheduled));
  verify(scheduled);
  EXPECT_LT(positionOf(scheduled, "dw"), positionOf(scheduled, "dx"));
  EXPECT_GT(positionOf(g, "dw"), positionOf(g, "dx"));
  expectSameResults(g, scheduled, smoothFeeds(g, 0.01), 0);
  EXPECT_FALSE(scheduleForMemory(scheduled));  // a second run changes nothing
}

TEST(ScheduleMemory, AChainKeepsItsOrder) {
  Graph g("chain");
  auto x = g.addInput("x", {DType::f32, {64, 64}});
  auto a = g.addOp(OpKind::Exp, {x});
  auto b = g.addOp(OpKind::Neg, {a});
  auto c = g.addOp(OpKind::Neg, {x});
  g.addOutput("out", g.addOp(OpKind::Add, {b, c}));
  Graph scheduled = g;
  EXPECT_FALSE(scheduleForMemory(scheduled));
  expectSameGraph(g, scheduled);
}

// Two results whose computations interleave in node order (a1, a2, b1, b2): the list
// schedule's ties follow that order and keep a1, a2 and b1 alive together (48 KiB); broken
// depth first, one result's chain finishes before the other's starts (32 KiB).
TEST(ScheduleMemory, TiesFinishOneResultBeforeTheNextWhereThatKeepsLessAlive) {
  Graph g("cones");
  const TensorType t{DType::f32, {64, 64}};
  auto x = g.addInput("x", t);
  auto a1 = g.addOp(OpKind::Exp, {x}, {}, "a1");
  auto a2 = g.addOp(OpKind::Neg, {x}, {}, "a2");
  auto b1 = g.addOp(OpKind::Neg, {a1}, {}, "b1");
  auto b2 = g.addOp(OpKind::Exp, {a2}, {}, "b2");
  g.addOutput("o1", g.addOp(OpKind::ReduceSum, {b1}, axesAttrs({0, 1}, false)));
  g.addOutput("o2", g.addOp(OpKind::ReduceSum, {b2}, axesAttrs({0, 1}, false)));
  Graph scheduled = g;
  ASSERT_TRUE(scheduleForMemory(scheduled));
  verify(scheduled);
  EXPECT_LT(positionOf(scheduled, "b1"), positionOf(scheduled, "a2"));
  expectSameResults(g, scheduled, smoothFeeds(g, 0.01), 0);
}

// Parameters' update values live beside their parameter, so they count as no arena bytes;
// the updates and their values survive the reordering.
TEST(ScheduleMemory, UpdatesAreKept) {
  Graph g = backwardStep();
  auto p = g.addParam("p", {DType::f32, {64, 64}}, {{"init", std::string("zeros")}});
  ValueId dw = positionOf(g, "dw");
  g.addUpdate(p, g.addOp(OpKind::Sub, {p, dw}, {}, "p_next"));
  Graph scheduled = g;
  ASSERT_TRUE(scheduleForMemory(scheduled));
  verify(scheduled);
  ASSERT_EQ(scheduled.updates().size(), 1u);
  EXPECT_EQ(scheduled.node(scheduled.updates()[0].param).name, "p");
  EXPECT_EQ(scheduled.node(scheduled.updates()[0].value).name, "p_next");
  EXPECT_LT(positionOf(scheduled, "dw"), positionOf(scheduled, "dx"));
}

// An optimizer's two moment updates both read the gradient, so neither alone frees it: the
// one that allocates nothing (an update value lives in its state's slot) runs as soon as it
// can, which makes the other the gradient's last reader, and both come before the unrelated
// tensor that followed the gradient in node order.
TEST(ScheduleMemory, MomentUpdatesRunAsSoonAsTheGradientIsReady) {
  Graph g("moments");
  auto x = g.addInput("x", {DType::f32, {256, 64}});
  auto w = g.addInput("w", {DType::f32, {64, 64}});
  auto m = g.addParam("m", {DType::f32, {256, 64}}, {{"init", std::string("zeros")}});
  auto v = g.addParam("v", {DType::f32, {256, 64}}, {{"init", std::string("zeros")}});
  auto grad = g.addOp(OpKind::Matmul, {x, w}, {}, "grad");
  g.addOutput("other", g.addOp(OpKind::Exp, {x}, {}, "other"));
  g.addUpdate(m, g.addOp(OpKind::Add, {m, grad}, {}, "m_next"));
  g.addUpdate(v, g.addOp(OpKind::Mul, {v, grad}, {}, "v_next"));
  Graph scheduled = g;
  ASSERT_TRUE(scheduleForMemory(scheduled));
  verify(scheduled);
  EXPECT_LT(positionOf(scheduled, "m_next"), positionOf(scheduled, "other"));
  EXPECT_LT(positionOf(scheduled, "v_next"), positionOf(scheduled, "other"));
}

// A parameter's update reads a scalar derived from a step counter (Adam's step size), which
// node order computes at the end: the update runs as soon as the parameter's other reader
// (the data gradient) has run, never before it (which would need the parameter's old value in
// a twin slot), with the scalar computed right before it and its moment's update moved next to
// it (the CPU runtime runs the two as one kernel; the peak stays), and all come before the
// unrelated tensor that came first in node order.
TEST(ScheduleMemory, ParameterUpdatesFollowTheirMomentsOnceTheParameterIsRead) {
  Graph g("adam");
  auto x = g.addInput("x", {DType::f32, {256, 64}});
  auto p = g.addParam("p", {DType::f32, {64, 64}}, {{"init", std::string("zeros")}});
  auto m = g.addParam("m", {DType::f32, {64, 64}}, {{"init", std::string("zeros")}});
  auto step = g.addParam("step", {DType::f32, {}}, {{"init", std::string("zeros")}});
  auto s = g.addOp(OpKind::Neg, {x}, {}, "s");
  auto dy = g.addOp(OpKind::Exp, {x}, {}, "dy");
  g.addOutput("dx", g.addOp(OpKind::Matmul, {dy, p}, {}, "dx"));
  auto dw = g.addOp(OpKind::Matmul, {s, dy}, {{"transpose_lhs", int64_t{1}}}, "dw");
  auto mNext = g.addOp(OpKind::Add, {m, dw}, {}, "m_next");
  g.addOutput("other", g.addOp(OpKind::Neg, {x}, {}, "other"));
  auto scale = g.addOp(OpKind::Exp, {step}, {}, "scale");
  g.addUpdate(m, mNext);
  g.addUpdate(p, g.addOp(OpKind::Div, {mNext, scale}, {}, "p_next"));
  Graph scheduled = g;
  ASSERT_TRUE(scheduleForMemory(scheduled));
  verify(scheduled);
  EXPECT_EQ(positionOf(scheduled, "scale"), positionOf(scheduled, "dx") + 1);
  EXPECT_EQ(positionOf(scheduled, "m_next"), positionOf(scheduled, "dx") + 2);
  EXPECT_EQ(positionOf(scheduled, "p_next"), positionOf(scheduled, "dx") + 3);
  EXPECT_LT(positionOf(scheduled, "p_next"), positionOf(scheduled, "other"));
  expectSameResults(g, scheduled, smoothFeeds(g, 0.01), 0);
}

// The same with a data gradient that is the step's largest tensor: the moment's update stays
// before it, since the gradient it reads would otherwise be alive at the peak.
TEST(ScheduleMemory, MomentUpdatesStayWhereMovingThemRaisesThePeak) {
  Graph g("adam_peak");
  auto x = g.addInput("x", {DType::f32, {256, 64}});
  auto z = g.addInput("z", {DType::f32, {8192, 64}});
  auto p = g.addParam("p", {DType::f32, {64, 64}}, {{"init", std::string("zeros")}});
  auto m = g.addParam("m", {DType::f32, {64, 64}}, {{"init", std::string("zeros")}});
  auto s = g.addOp(OpKind::Neg, {x}, {}, "s");
  auto dy = g.addOp(OpKind::Exp, {x}, {}, "dy");
  g.addOutput("dx", g.addOp(OpKind::Matmul, {z, p}, {}, "dx"));
  auto dw = g.addOp(OpKind::Matmul, {s, dy}, {{"transpose_lhs", int64_t{1}}}, "dw");
  auto mNext = g.addOp(OpKind::Add, {m, dw}, {}, "m_next");
  g.addUpdate(m, mNext);
  g.addUpdate(p, g.addOp(OpKind::Sub, {p, mNext}, {}, "p_next"));
  Graph scheduled = g;
  ASSERT_TRUE(scheduleForMemory(scheduled));  // dw first frees s and dy before dx is made
  verify(scheduled);
  EXPECT_LT(positionOf(scheduled, "m_next"), positionOf(scheduled, "dx"));
  EXPECT_GT(positionOf(scheduled, "p_next"), positionOf(scheduled, "dx"));
}
