// buildTrainStep's structure and errors, and BatchNorm's running statistics.
#include "passes/train_step.h"

#include <gtest/gtest.h>

#include <cmath>

#include "backends/reference/interpreter.h"
#include "frontend/weft.h"
#include "ir/verifier.h"
#include "passes/pass_manager.h"

using namespace weft;

namespace {

ir::TensorData tensor(const ir::Shape& shape, const std::vector<double>& v) {
  ir::TensorData t(ir::TensorType{ir::DType::f32, shape});
  for (size_t i = 0; i < v.size(); ++i) t.set(static_cast<int64_t>(i), v[i]);
  return t;
}

/// conv -> BatchNorm2d -> mean square loss, in the builder's mode.
ir::Graph convBn(bool training) {
  GraphBuilder b("convbn");
  b.setTraining(training);
  BuildScope scope(b);
  nn::Conv2d conv("conv", 2, 2, 1, {}, /*withBias=*/false);
  nn::BatchNorm2d bn("bn", 2);
  Tensor x = input("x", {2, 2, 1, 2});
  Tensor y = bn(conv(x));
  output("out", y);
  output("loss", mean((y - 1.0) * (y - 1.0) * (iota({2, 2, 1, 2}, 1, DType::f32) + 1.0)));
  return b.finish();
}

/// x [N=2, C=2, 1, 2]: channel 0 holds 1, 2, 3, 4 (mean 2.5, unbiased var 5/3), channel 1
/// holds 0, 0, 10, -10 (mean 0, unbiased var 200/3).
const ir::TensorData kX = tensor({2, 2, 1, 2}, {1, 2, 0, 0, 3, 4, 10, -10});

}  // namespace

TEST(BatchNormStats, TrainingModeUpdatesRunningStatisticsLikePyTorch) {
  GraphBuilder b("bn");
  BuildScope scope(b);
  nn::BatchNorm2d bn("bn", 2);
  output("y", bn(input("x", {2, 2, 1, 2})));
  ir::Graph g = b.finish();
  ASSERT_EQ(g.updates().size(), 2u);
  reference::TensorMap state;
  reference::runStep(g, {{"x", kX}}, state);
  EXPECT_NEAR(state.at("bn.running_mean").get(0), 0.1 * 2.5, 1e-6);
  EXPECT_NEAR(state.at("bn.running_mean").get(1), 0.0, 1e-6);
  EXPECT_NEAR(state.at("bn.running_var").get(0), 0.9 + 0.1 * 5.0 / 3.0, 1e-6);
  EXPECT_NEAR(state.at("bn.running_var").get(1), 0.9 + 0.1 * 200.0 / 3.0, 1e-5);
  reference::runStep(g, {{"x", kX}}, state);
  EXPECT_NEAR(state.at("bn.running_mean").get(0), 0.9 * 0.25 + 0.25, 1e-6);
  EXPECT_NEAR(state.at("bn.running_var").get(1), 0.9 * (0.9 + 20.0 / 3.0) + 20.0 / 3.0, 1e-5);
  EXPECT_EQ(state.at("bn.weight").get(0), 1.0);  // gamma and beta are not touched by the forward graph
}

TEST(BatchNormStats, RunningStatisticsShareTheNormalizationsSums) {
  // Decomposed and cleaned up, the training form reads x-sized data in two sums: the mean's
  // and the squares' that both the normalization and the running variance take.
  GraphBuilder b("bn_sums");
  BuildScope scope(b);
  nn::BatchNorm2d bn("bn", 32);
  const ir::Shape shape = {4, 32, 6, 6};
  output("y", bn(input("x", shape)));
  ir::Graph g = b.finish();
  passes::PassManager("decompose-composites,canonicalize,cse,dce").run(g);
  int fullSizeSums = 0;
  for (const ir::Node& n : g.nodes())
    if (n.op == ir::OpKind::ReduceSum && g.type(n.operands[0]).shape == shape) ++fullSizeSums;
  EXPECT_EQ(fullSizeSums, 2);
}

TEST(BatchNormStats, MomentumIsConfigurableAndChecked) {
  GraphBuilder b("bn");
  BuildScope scope(b);
  nn::BatchNorm2d bn("bn", 2, 1e-5, /*momentum=*/0.5);
  output("y", bn(input("x", {2, 2, 1, 2})));
  ir::Graph g = b.finish();
  reference::TensorMap state;
  reference::runStep(g, {{"x", kX}}, state);
  EXPECT_NEAR(state.at("bn.running_mean").get(0), 1.25, 1e-6);
  EXPECT_THROW(nn::BatchNorm2d("bad", 2, 1e-5, 1.5), Error);
}

TEST(BatchNormStats, TrainStepKeepsRunningUpdatesAndEvalLoadsTheState) {
  ir::Graph step = passes::buildTrainStep(convBn(true), {.optimizer = passes::parseOptimizer("momentum")});
  EXPECT_EQ(ir::verifyErrors(step), std::vector<std::string>{});
  // conv.weight, bn.weight, bn.bias are trained; the running statistics are not.
  EXPECT_TRUE(step.find("opt.bn.weight.momentum"));
  EXPECT_FALSE(step.find("opt.bn.running_mean.momentum"));
  EXPECT_FALSE(step.find("grad.bn.running_var"));
  EXPECT_EQ(step.updates().size(), 2u + 3u * 2u + 1u);  // running stats, 3 params + momenta, step

  reference::TensorMap state = reference::initialState(step);
  state["conv.weight"] = tensor({2, 2, 1, 1}, {1, 0, 0, 1});  // identity conv: stats of x itself
  ir::TensorData lr(ir::TensorType{ir::DType::f32, {}});
  lr.set(0, 0.1);
  reference::runStep(step, {{"x", kX}, {"lr", lr}}, state);
  EXPECT_NEAR(state.at("bn.running_mean").get(0), 0.25, 1e-6);
  EXPECT_NEAR(state.at("bn.running_var").get(0), 0.9 + 0.5 / 3.0, 1e-6);
  EXPECT_NE(state.at("bn.bias").get(1), 0.0);  // trained

  // The evaluation form has the same parameter names and normalizes with the running stats.
  ir::Graph eval = convBn(false);
  reference::TensorMap feeds{{"x", kX}};
  for (ir::ValueId p : eval.params()) feeds[eval.node(p).name] = state.at(eval.node(p).name);
  auto out = reference::run(eval, feeds);
  // out[n0, c0, 0, 0] = bn(conv): conv = w[0,0] * x[n0,c0,0,0] (= 1) + w[0,1] * x[n0,c1,0,0] (= 0).
  const double conv = state.at("conv.weight").get(0), mean = state.at("bn.running_mean").get(0);
  const double var = state.at("bn.running_var").get(0);
  const double gamma = state.at("bn.weight").get(0), beta = state.at("bn.bias").get(0);
  EXPECT_NEAR(out.at("out").get(0), (conv - mean) / std::sqrt(var + 1e-5) * gamma + beta, 1e-5);
}

TEST(TrainStep, KeepsForwardOutputsAndAddsGradientsOnlyForTrainableParams) {
  GraphBuilder b("t");
  BuildScope scope(b);
  Tensor w = param("w", {3}, init::ones());
  Tensor frozen = buffer("frozen", {3}, init::ones());
  Tensor unused = param("unused", {3}, init::ones());
  Tensor x = input("x", {3});
  Tensor pred = x * w * frozen;
  output("pred", pred);
  output("loss", sum(pred * pred));
  output("other", sum(unused));
  ir::Graph fwd = b.finish();
  ir::Graph step = passes::buildTrainStep(fwd);
  std::vector<std::string> outs;
  for (const auto& o : step.outputs()) outs.push_back(o.name);
  EXPECT_EQ(outs, (std::vector<std::string>{"pred", "loss", "other"}));
  EXPECT_TRUE(step.find("w.next"));
  EXPECT_FALSE(step.find("frozen.next"));
  EXPECT_FALSE(step.find("unused.next"));  // the loss does not depend on it
  EXPECT_EQ(passes::trainableParams(fwd).size(), 2u);
  EXPECT_EQ(fwd.updates().size(), 0u);  // the forward graph is not changed
}

TEST(TrainStep, RejectsBadRequests) {
  auto build = [](bool scalarLoss, bool withParam) {
    GraphBuilder b("t");
    BuildScope scope(b);
    Tensor x = input("x", {3});
    Tensor y = withParam ? x * param("w", {3}, init::ones()) : x * 2.0;
    output("loss", scalarLoss ? sum(y) : y);
    return b.finish();
  };
  auto message = [](auto&& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] { passes::buildTrainStep(build(false, true)); }).find("one-element float"), std::string::npos);
  EXPECT_NE(message([&] { passes::buildTrainStep(build(true, false)); }).find("no trainable"), std::string::npos);
  EXPECT_NE(message([&] {
              passes::buildTrainStep(build(true, true), {.loss = "total", .lrInput = "lr", .optimizer = {}});
            }).find("no output 'total'"),
            std::string::npos);
  ir::Graph step = passes::buildTrainStep(build(true, true));
  EXPECT_NE(message([&] { passes::buildTrainStep(step); }).find("'lr'"), std::string::npos);
}
