// fuse-rows: which kernels merge into a rows kernel (softmax, a layer norm, a training step's
// softmax gradient), which stay (what does not depend on the row's reductions, what something
// else reads), and that every merged graph verifies, reads back from text and computes what
// the graph before it computed.
#include <gtest/gtest.h>

#include "fusion_check.h"
#include "ir/fused_rows.h"
#include "passes/autodiff.h"
#include "passes/builtin_passes.h"

using namespace weft;
using namespace weft::ir;
using namespace weft::passes;
using namespace weft::passes::testing;

namespace {

/// `g` cleaned, fused by fuse-elementwise and then by fuse-rows; expects the result to
/// compute what `g` computes.
Graph rowsFused(const Graph& g) {
  Graph before;
  Graph fused = cleanedAndFused(g, &before);
  PassManager("fuse-rows").run(fused);
  EXPECT_EQ(verifyErrors(fused), std::vector<std::string>{});
  expectTextRoundTrip(fused);
  auto feeds = sampleFeeds(before);
  expectClose(reference::run(before, feeds), reference::run(fused, feeds), "rows-fused " + g.name());
  for (const Node* n : fusedNodes(fused)) {
    if (std::get<std::string>(n->attrs.at("kind")) == "rows") {
      EXPECT_FALSE(rowsBodyProblem(*n->body));
    }
  }
  return fused;
}

}  // namespace

TEST(FuseRows, SoftmaxIsOneRowsKernel) {
  Graph g("softmax");
  auto x = g.addInput("x", {DType::f32, {4, 10}});
  g.addOutput("p", g.addOp(OpKind::Softmax, {x}, {{"axis", int64_t{1}}}, "p"));
  Graph f = rowsFused(g);
  EXPECT_EQ(fusedKinds(f), (std::vector<std::string>{"rows"}));
  EXPECT_EQ(bodyOps(*fusedNodes(f)[0]), (std::vector<std::string>{"reduce_max", "sub", "exp", "reduce_sum", "div"}));
  EXPECT_EQ(fusedNodes(f)[0]->name, "p");
  EXPECT_EQ(fusedNodes(f)[0]->operands, (std::vector<ValueId>{x}));
}

TEST(FuseRows, LayerNormIsOneRowsKernel) {
  Graph g("layer_norm");
  auto x = g.addInput("x", {DType::f32, {6, 32}});
  auto gamma = g.addInput("gamma", {DType::f32, {32}}), beta = g.addInput("beta", {DType::f32, {32}});
  g.addOutput("y", g.addOp(OpKind::LayerNorm, {x, gamma, beta}, {{"axis", int64_t{1}}, {"eps", 1e-5}}, "y"));
  Graph f = rowsFused(g);
  EXPECT_EQ(fusedKinds(f), (std::vector<std::string>{"rows"}));
  EXPECT_EQ(countInBodies(f, OpKind::ReduceSum), 2);
}

TEST(FuseRows, WhatDoesNotReadTheReductionsStaysAKernel) {
  // tanh(exp(x)) is read by softmax's max and its subtraction: it does not depend on a
  // reduction, so it stays a kernel (computed once) instead of joining each loop of the row.
  Graph g("softmax_of_exp");
  auto x = g.addInput("x", {DType::f32, {4, 10}});
  auto e = g.addOp(OpKind::Exp, {x});
  auto t = g.addOp(OpKind::Tanh, {e});
  g.addOutput("p", g.addOp(OpKind::Softmax, {t}, {{"axis", int64_t{1}}}, "p"));
  Graph f = rowsFused(g);
  EXPECT_EQ(fusedKinds(f), (std::vector<std::string>{"loop", "rows"}));
}

TEST(FuseRows, ARowScalarReadElsewhereKeepsItsKernels) {
  // The row max is also an output: its kernel stays, and so does exp(x - max), which reads no
  // reduction that merges; the sum and the division merge.
  Graph g("max_out");
  auto x = g.addInput("x", {DType::f32, {4, 10}});
  auto m = g.addOp(OpKind::ReduceMax, {x}, {{"axes", std::vector<int64_t>{1}}, {"keepdims", int64_t{1}}}, "m");
  auto e = g.addOp(OpKind::Exp, {g.addOp(OpKind::Sub, {x, m})});
  auto s = g.addOp(OpKind::ReduceSum, {e}, {{"axes", std::vector<int64_t>{1}}, {"keepdims", int64_t{1}}});
  g.addOutput("p", g.addOp(OpKind::Div, {e, s}, {}, "p"));
  g.addOutput("m", m);
  Graph f = rowsFused(g);
  EXPECT_EQ(fusedKinds(f), (std::vector<std::string>{"reduce", "loop", "rows"}));
}

TEST(FuseRows, SoftmaxTrainingStepMergesForwardAndGradient) {
  // sum(softmax(x w) * t) differentiated: the forward softmax and the gradient's row sum of
  // dp * p with the product that reads it are rows kernels; gradients match the unfused graph.
  Graph g("softmax_step");
  auto x = g.addInput("x", {DType::f32, {4, 6}});
  auto w = g.addInput("w", {DType::f32, {6, 10}});
  auto t = g.addInput("t", {DType::f32, {4, 10}});
  auto p = g.addOp(OpKind::Softmax, {g.addOp(OpKind::Matmul, {x, w})}, {{"axis", int64_t{1}}}, "p");
  auto all = Attrs{{"axes", std::vector<int64_t>{0, 1}}, {"keepdims", int64_t{0}}};
  g.addOutput("loss", g.addOp(OpKind::ReduceSum, {g.addOp(OpKind::Mul, {p, t})}, all, "loss"));
  addGradientOutputs(g, "loss", {"w"});
  Graph f = rowsFused(g);
  const std::vector<std::string> kinds = fusedKinds(f);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "rows"), 2) << printGraph(f);
}

TEST(FuseRows, SecondRunChangesNothing) {
  Graph g("softmax");
  auto x = g.addInput("x", {DType::f32, {4, 10}});
  g.addOutput("p", g.addOp(OpKind::Softmax, {x}, {{"axis", int64_t{1}}}, "p"));
  Graph f = rowsFused(g);
  EXPECT_FALSE(fuseRows(f));
}
