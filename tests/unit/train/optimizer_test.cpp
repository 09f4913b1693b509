// The optimizers of the train-step graph against hand-computed updates: a tiny graph with
// loss = sum(x * w * w) + 3 * sum(b), whose gradients are 2 x w and 3, run for two steps.
#include <gtest/gtest.h>

#include <cmath>

#include "backends/reference/interpreter.h"
#include "frontend/weft.h"
#include "ir/verifier.h"
#include "passes/train_step.h"

using namespace weft;

namespace {

const std::vector<double> kX = {1, 3};
const std::vector<double> kW0 = {1, -2};
const double kB0 = 0.5;

ir::Graph quadratic() {
  GraphBuilder b("quad");
  BuildScope scope(b);
  Tensor w = param("w", {2}, init::zeros());
  Tensor bias = param("b", {1}, init::zeros());
  Tensor x = input("x", {2});
  output("loss", sum(x * w * w) + 3.0 * sum(bias));
  return b.finish();
}

ir::TensorData vec(const std::vector<double>& v) {
  ir::TensorData t(ir::TensorType{ir::DType::f32, {static_cast<int64_t>(v.size())}});
  for (size_t i = 0; i < v.size(); ++i) t.set(static_cast<int64_t>(i), v[i]);
  return t;
}

ir::TensorData scalarF32(double v) {
  ir::TensorData t(ir::TensorType{ir::DType::f32, {}});
  t.set(0, v);
  return t;
}

std::vector<double> values(const ir::TensorData& t) {
  std::vector<double> out;
  for (int64_t i = 0; i < t.numel(); ++i) out.push_back(t.get(i));
  return out;
}

/// Runs the train step of quadratic() for `lrs.size()` steps from w0, b0; returns w and b
/// after each step.
struct Trace {
  std::vector<std::vector<double>> w, b;
  reference::TensorMap state;
  std::vector<double> gradNorms;
};

Trace runSteps(const passes::OptimizerConfig& cfg, const std::vector<double>& lrs) {
  ir::Graph step = passes::buildTrainStep(quadratic(), {.optimizer = cfg});
  EXPECT_EQ(ir::verifyErrors(step), std::vector<std::string>{});
  Trace t;
  t.state = reference::initialState(step);
  t.state["w"] = vec(kW0);
  t.state["b"] = vec({kB0});
  for (double lr : lrs) {
    auto out = reference::runStep(step, {{"x", vec(kX)}, {"lr", scalarF32(lr)}}, t.state);
    if (out.count("grad_norm")) t.gradNorms.push_back(out.at("grad_norm").get(0));
    t.w.push_back(values(t.state.at("w")));
    t.b.push_back(values(t.state.at("b")));
  }
  return t;
}

void expectNear(const std::vector<double>& got, const std::vector<double>& want, double tol = 2e-6) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], tol * std::max(1.0, std::abs(want[i]))) << "element " << i;
}

/// An independent double-precision Adam/AdamW step on one parameter vector.
void adamReference(std::vector<double>& p, std::vector<double>& m, std::vector<double>& v,
                   const std::vector<double>& grad, int t, double lr, double wd, bool decoupled) {
  const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
  for (size_t i = 0; i < p.size(); ++i) {
    double g = decoupled ? grad[i] : grad[i] + wd * p[i];
    if (decoupled) p[i] *= 1 - lr * wd;
    m[i] = b1 * m[i] + (1 - b1) * g;
    v[i] = b2 * v[i] + (1 - b2) * g * g;
    double mhat = m[i] / (1 - std::pow(b1, t)), vhat = v[i] / (1 - std::pow(b2, t));
    p[i] -= lr * mhat / (std::sqrt(vhat) + eps);
  }
}

std::vector<double> gradW(const std::vector<double>& w) { return {2 * kX[0] * w[0], 2 * kX[1] * w[1]}; }

}  // namespace

TEST(Optimizers, PlainSgdTakesTwoHandComputedSteps) {
  Trace t = runSteps(passes::parseOptimizer("sgd"), {0.1, 0.1});
  // grad w = 2 x w = {2, -12} -> w1 = {0.8, -0.8}; then grad {1.6, -4.8} -> w2 = {0.64, -0.32}.
  expectNear(t.w[0], {0.8, -0.8});
  expectNear(t.w[1], {0.64, -0.32});
  expectNear(t.b[0], {0.2});  // grad b = 3
  expectNear(t.b[1], {-0.1});
  EXPECT_EQ(t.state.count("opt.w.momentum"), 0u);  // plain SGD keeps no state but the step
  EXPECT_EQ(t.state.at("opt.step").get(0), 2.0);
}

TEST(Optimizers, MomentumWithWeightDecay) {
  passes::OptimizerConfig cfg = passes::parseOptimizer("momentum");
  cfg.weightDecay = 0.1;
  Trace t = runSteps(cfg, {0.1, 0.1});
  // step 1: g = {2, -12} + 0.1 w0 = {2.1, -12.2} = buf; w1 = w0 - 0.1 buf = {0.79, -0.78}
  expectNear(t.w[0], {0.79, -0.78});
  // step 2: g = 2 x w1 + 0.1 w1 = {1.659, -4.758}; buf = 0.9 {2.1, -12.2} + g = {3.549, -15.738}
  expectNear(t.w[1], {0.79 - 0.3549, -0.78 + 1.5738});
  expectNear(values(t.state.at("opt.w.momentum")), {3.549, -15.738});
  // b: g = 3 + 0.1 b: 3.05 -> b1 = 0.195; g = 3.0195, buf = 2.745 + 3.0195 = 5.7645 -> b2 = -0.38145
  expectNear(t.b[1], {0.195 - 0.57645});
}

TEST(Optimizers, NesterovMomentum) {
  Trace t = runSteps(passes::parseOptimizer("nesterov"), {0.1, 0.1});
  // step 1: buf = g = {2, -12}; d = g + 0.9 buf = {3.8, -22.8}; w1 = {0.62, 0.28}
  expectNear(t.w[0], {0.62, 0.28});
  // step 2: g = {1.24, 1.68}; buf = {3.04, -9.12}; d = g + 0.9 buf = {3.976, -6.528}
  expectNear(t.w[1], {0.62 - 0.3976, 0.28 + 0.6528});
}

TEST(Optimizers, AdamMatchesTheReferenceFormula) {
  Trace t = runSteps(passes::parseOptimizer("adam"), {0.1, 0.1});
  // The first Adam step moves every coordinate by lr * sign(g) (up to eps).
  expectNear(t.w[0], {0.9, -1.9});
  expectNear(t.b[0], {0.4});
  std::vector<double> w = kW0, m(2, 0), v(2, 0);
  adamReference(w, m, v, gradW(w), 1, 0.1, 0, false);
  adamReference(w, m, v, gradW(w), 2, 0.1, 0, false);
  expectNear(t.w[1], w);
  // By hand: g1 = {1.8, -11.4}, m = {0.36, -2.22}, v = {0.007236, 0.273816}, corrections
  // 1 - 0.9^2 = 0.19 and 1 - 0.999^2 = 0.001999: w2 = w1 - 0.1 (m / 0.19) / sqrt(v / 0.001999).
  expectNear(t.w[1], {0.8004122, -1.8001665}, 1e-6);
  expectNear(values(t.state.at("opt.w.m")), m);
  expectNear(values(t.state.at("opt.w.v")), v);
  EXPECT_EQ(t.state.at("opt.step").get(0), 2.0);
}

TEST(Optimizers, AdamL2AndAdamWDecoupledDecayDiffer) {
  passes::OptimizerConfig adam = passes::parseOptimizer("adam");
  adam.weightDecay = 0.1;
  passes::OptimizerConfig adamw = passes::parseOptimizer("adamw");
  EXPECT_EQ(adamw.weightDecay, 0.01);  // PyTorch's default
  adamw.weightDecay = 0.1;
  Trace l2 = runSteps(adam, {0.1, 0.05});
  Trace decoupled = runSteps(adamw, {0.1, 0.05});
  for (bool isW : {false, true}) {
    std::vector<double> w = kW0, m(2, 0), v(2, 0);
    adamReference(w, m, v, gradW(w), 1, 0.1, 0.1, isW);
    adamReference(w, m, v, gradW(w), 2, 0.05, 0.1, isW);
    expectNear((isW ? decoupled : l2).w[1], w);
    std::vector<double> b = {kB0}, mb(1, 0), vb(1, 0);
    adamReference(b, mb, vb, {3}, 1, 0.1, 0.1, isW);
    adamReference(b, mb, vb, {3}, 2, 0.05, 0.1, isW);
    expectNear((isW ? decoupled : l2).b[1], b);
  }
  // AdamW's first step: w0 (1 - 0.01) - 0.1 sign(g).
  expectNear(decoupled.w[0], {0.99 - 0.1, -1.98 + 0.1});
}

TEST(Optimizers, ClippingScalesByTheGlobalNorm) {
  passes::OptimizerConfig cfg = passes::parseOptimizer("sgd");
  cfg.clipNorm = 1.0;
  Trace t = runSteps(cfg, {0.1});
  // Gradients {2, -12} and {3}: global norm sqrt(4 + 144 + 9) = sqrt(157).
  const double norm = std::sqrt(157.0), coef = 1.0 / (norm + 1e-6);
  ASSERT_EQ(t.gradNorms.size(), 1u);
  EXPECT_NEAR(t.gradNorms[0], norm, 1e-5);
  expectNear(t.w[0], {1 - 0.1 * 2 * coef, -2 + 0.1 * 12 * coef});
  expectNear(t.b[0], {0.5 - 0.1 * 3 * coef});

  cfg.clipNorm = 100;  // above the norm: no change from plain SGD
  Trace loose = runSteps(cfg, {0.1});
  expectNear(loose.w[0], {0.8, -0.8});
}

TEST(Optimizers, LearningRateIsAnInput) {
  ir::Graph step = passes::buildTrainStep(quadratic(), {.optimizer = passes::parseOptimizer("sgd")});
  auto lr = step.find("lr");
  ASSERT_TRUE(lr);
  EXPECT_EQ(step.node(*lr).op, ir::OpKind::Input);
  EXPECT_EQ(step.type(*lr).str(), "f32[]");
  Trace t = runSteps(passes::parseOptimizer("sgd"), {0.05, 0.0, 0.1});
  expectNear(t.w[0], {0.9, -1.4});  // half the step of lr 0.1
  expectNear(t.w[1], t.w[0]);       // lr 0: nothing moves
  expectNear(t.w[2], {0.9 - 0.18, -1.4 + 0.84});
}

TEST(Optimizers, UpdatedValuesAndStateAreNamed) {
  ir::Graph step = passes::buildTrainStep(quadratic(), {.optimizer = passes::parseOptimizer("adam")});
  for (const char* name : {"w.next", "b.next", "opt.w.m.next", "opt.w.v.next", "opt.step.next", "grad.w", "grad.b"})
    EXPECT_TRUE(step.find(name)) << name;
  for (const char* name : {"opt.w.m", "opt.w.v", "opt.b.m", "opt.b.v", "opt.step"}) {
    auto p = step.find(name);
    ASSERT_TRUE(p) << name;
    EXPECT_EQ(step.node(*p).op, ir::OpKind::Param);
    EXPECT_FALSE(passes::isTrainable(step.node(*p))) << name;
  }
  EXPECT_EQ(step.updates().size(), 7u);  // w, b, 4 moments, step
  EXPECT_EQ(step.name(), "quad_train");
}

TEST(Optimizers, ParsingAndValidation) {
  EXPECT_THROW(passes::parseOptimizer("adagrad"), Error);
  try {
    passes::parseOptimizer("rmsprop");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sgd, momentum, nesterov, adam, adamw"), std::string::npos);
  }
  for (const char* name : {"sgd", "momentum", "nesterov", "adam", "adamw"})
    EXPECT_EQ(passes::optimizerName(passes::parseOptimizer(name)), name);
  passes::OptimizerConfig bad;
  bad.nesterov = true;
  EXPECT_THROW(passes::validateOptimizer(bad), Error);
  bad = {};
  bad.clipNorm = -1;
  EXPECT_THROW(passes::validateOptimizer(bad), Error);
  bad = {};
  bad.kind = passes::OptimizerKind::adam;
  bad.beta2 = 1.0;
  EXPECT_THROW(passes::buildTrainStep(quadratic(), {.optimizer = bad}), Error);
  passes::OptimizerConfig adam = passes::parseOptimizer("adamw");
  passes::setAdamEps(adam, 0.5);
  EXPECT_EQ(adam.eps, 0.5);
  passes::OptimizerConfig momentum = passes::parseOptimizer("momentum");
  EXPECT_THROW(passes::setAdamEps(momentum, 0.5), Error);
  EXPECT_EQ(momentum.eps, passes::OptimizerConfig{}.eps);
}
