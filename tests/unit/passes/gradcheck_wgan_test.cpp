// Double backward as WGAN-GP needs it: the gradient penalty (|d critic / d x| - 1)^2 of a
// conv + leaky_relu + linear critic, differentiated w.r.t. the critic's weights and the input,
// checked by finite differences.
#include <gtest/gtest.h>

#include "gradcheck_harness.h"
#include "passes/autodiff.h"

using namespace weft;
using namespace weft::ir;
using namespace weft::passes;
using namespace weft::passes::testing;

namespace {

ValueId constant(Graph& g, double v) {
  auto t = std::make_shared<TensorData>(TensorType{DType::f64, {}});
  t->set(0, v);
  return g.addConstant(t);
}

/// critic(x) = sum over the batch of linear(leaky_relu(conv(x))); output `penalty`.
Graph gradientPenaltyGraph(bool convTranspose) {
  Graph g("wgan_gp");
  auto x = g.addInput("x", {DType::f64, {2, 2, 5, 5}});
  ValueId features;
  if (convTranspose) {
    auto w1 = g.addInput("w1", {DType::f64, {2, 3, 2, 2}});
    features = g.addOp(OpKind::ConvTranspose, {x, w1},
                       {{"stride", std::vector<int64_t>{2, 1}}, {"padding", std::vector<int64_t>{1, 0}},
                        {"output_padding", std::vector<int64_t>{1, 0}}, {"dilation", std::vector<int64_t>{1, 1}},
                        {"groups", int64_t{1}}});
  } else {
    auto w1 = g.addInput("w1", {DType::f64, {3, 2, 3, 3}});
    features = g.addOp(OpKind::Conv, {x, w1},
                       {{"stride", std::vector<int64_t>{2, 2}}, {"padding", std::vector<int64_t>{1, 1}},
                        {"dilation", std::vector<int64_t>{1, 1}}, {"groups", int64_t{1}}});
  }
  auto act = g.addOp(OpKind::LeakyRelu, {features}, {{"alpha", 0.2}});
  int64_t width = g.type(act).numel() / 2;
  auto flat = g.addOp(OpKind::Reshape, {act}, {{"shape", std::vector<int64_t>{2, width}}});
  auto w2 = g.addInput("w2", {DType::f64, {width, 1}});
  auto b2 = g.addInput("b2", {DType::f64, {1}});
  auto score = g.addOp(OpKind::Add, {g.addOp(OpKind::Matmul, {flat, w2}), b2});
  auto critic = g.addOp(OpKind::ReduceSum, {score}, {{"axes", std::vector<int64_t>{0, 1}}, {"keepdims", int64_t{0}}});
  // grad_x critic, then per-sample norms and the penalty mean((norm - 1)^2).
  ValueId dx = *appendGradients(g, {critic, {x}, std::nullopt}).grads[0];
  auto squares = g.addOp(OpKind::ReduceSum, {g.addOp(OpKind::Mul, {dx, dx})},
                         {{"axes", std::vector<int64_t>{1, 2, 3}}, {"keepdims", int64_t{0}}});
  auto norm = g.addOp(OpKind::Sqrt, {g.addOp(OpKind::Add, {squares, constant(g, 1e-6)})});
  auto gap = g.addOp(OpKind::Sub, {norm, constant(g, 1)});
  auto penalty = g.addOp(OpKind::ReduceMean, {g.addOp(OpKind::Pow, {gap, constant(g, 2)})},
                         {{"axes", std::vector<int64_t>{0}}, {"keepdims", int64_t{0}}});
  g.addOutput("penalty", penalty);
  return g;
}

}  // namespace

TEST(GradCheckWgan, GradientPenaltyOfConvLeakyReluLinearCritic) {
  for (bool transposed : {false, true}) {
    SCOPED_TRACE(transposed ? "conv_transpose critic" : "conv critic");
    Graph g = gradientPenaltyGraph(transposed);
    std::mt19937_64 rng(3);
    reference::TensorMap feeds;
    for (ValueId v : g.inputs()) feeds.emplace(g.node(v).name, randomTensor(g.type(v), rng, -1, 1));
    expectGradientsMatch(g, "penalty", {"w1", "w2", "b2", "x"}, feeds);
  }
}
