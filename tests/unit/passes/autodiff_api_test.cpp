// The autodiff API: what gets a gradient, what is reported unreachable, which requests are
// errors (and that their messages name the op, the value and the loc), and the named-output
// conveniences.
#include <gtest/gtest.h>

#include "backends/reference/interpreter.h"
#include "ir/error.h"
#include "ir/parser.h"
#include "ir/printer.h"
#include "ir/verifier.h"
#include "passes/autodiff.h"
#include "passes/builtin_passes.h"
#include "pass_test_util.h"

using namespace weft;
using namespace weft::ir;
using namespace weft::passes;
using namespace weft::passes::testing;

namespace {

const TensorType kVec{DType::f64, {3}};

ValueId sumAll(Graph& g, ValueId v) {
  std::vector<int64_t> axes;
  for (int64_t d = 0; d < g.type(v).rank(); ++d) axes.push_back(d);
  return g.addOp(OpKind::ReduceSum, {v}, axesAttrs(axes, false));
}

std::string errorOf(Graph& g, const GradRequest& req) {
  try {
    appendGradients(g, req);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TensorData vec(std::vector<double> v) { return *tensor(kVec, v); }

}  // namespace

TEST(AutodiffApi, StopGradientBlocksAndIsReported) {
  Graph g("sg");
  auto x = g.addInput("x", kVec);
  auto y = g.addInput("y", kVec);
  auto out = sumAll(g, g.addOp(OpKind::Mul, {g.addOp(OpKind::StopGradient, {x}), y}));
  GradResult r = appendGradients(g, {out, {x, y}, std::nullopt});
  EXPECT_FALSE(r.grads[0].has_value());
  ASSERT_TRUE(r.grads[1].has_value());
  ASSERT_EQ(r.unreachable, (std::vector<std::string>{"%x"}));
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].find("stop_gradient"), std::string::npos) << r.notes[0];
  g.addOutput("dy", *r.grads[1]);
  EXPECT_EQ(reference::run(g, {{"x", vec({1, 2, 3})}, {"y", vec({0, 0, 0})}}).at("dy").get(2), 3);
}

TEST(AutodiffApi, StraightThroughEstimatorPassesTheCotangent) {
  // y = x + stop_gradient(sign(x) - x): forward is sign(x), gradient is the identity.
  Graph g("ste");
  auto x = g.addInput("x", kVec);
  auto sign = g.addOp(OpKind::Sign, {x});
  auto y = g.addOp(OpKind::Add, {x, g.addOp(OpKind::StopGradient, {g.addOp(OpKind::Sub, {sign, x})})});
  auto out = sumAll(g, g.addOp(OpKind::Mul, {y, g.addConstant(tensor(kVec, {1, 2, 3}))}));
  GradResult r = appendGradients(g, {out, {x}, std::nullopt});
  g.addOutput("dx", *r.grads[0]);
  auto dx = reference::run(g, {{"x", vec({-1, 0.5, 2})}}).at("dx");
  EXPECT_EQ(dx.get(0), 1);
  EXPECT_EQ(dx.get(1), 2);
  EXPECT_EQ(dx.get(2), 3);
}

TEST(AutodiffApi, GradientThroughArgmaxIsAnErrorNamingTheOp) {
  Graph g("am");
  auto x = g.addInput("x", kVec);
  auto idx = g.addOp(OpKind::Argmax, {x}, {{"axis", int64_t{0}}, {"keepdims", int64_t{0}}}, "best", "model.cpp:7");
  auto out = g.addOp(OpKind::Cast, {idx}, {{"dtype", DType::f64}}, "score");
  int32_t size = g.size();
  std::string msg = errorOf(g, {out, {x}, std::nullopt});
  EXPECT_NE(msg.find("argmax %best"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.cpp:7"), std::string::npos) << msg;
  EXPECT_NE(msg.find("%x"), std::string::npos) << msg;
  EXPECT_EQ(g.size(), size) << "a failed request leaves the graph unchanged";
}

TEST(AutodiffApi, GradientThroughAComparisonOrIntegerCastIsAnError) {
  Graph g("cmp");
  auto x = g.addInput("x", kVec);
  auto positive = g.addOp(OpKind::Gt, {x, g.addConstant(tensor({DType::f64, {}}, {0}))}, {}, "positive");
  auto out = sumAll(g, g.addOp(OpKind::Cast, {positive}, {{"dtype", DType::f64}}));
  EXPECT_NE(errorOf(g, {out, {x}, std::nullopt}).find("gt %positive"), std::string::npos);

  Graph h("trunc");
  auto y = h.addInput("y", kVec);
  auto whole = h.addOp(OpKind::Cast, {y}, {{"dtype", DType::i64}}, "whole");
  auto out2 = sumAll(h, h.addOp(OpKind::Cast, {whole}, {{"dtype", DType::f64}}));
  std::string msg = errorOf(h, {out2, {y}, std::nullopt});
  EXPECT_NE(msg.find("cast %whole"), std::string::npos) << msg;
  EXPECT_NE(msg.find("carries no gradient"), std::string::npos) << msg;
}

TEST(AutodiffApi, NonDifferentiableFloatOpOnThePathIsAnError) {
  Graph g("floor");
  auto x = g.addInput("x", kVec);
  auto f = g.addOp(OpKind::Floor, {x}, {}, "rounded", "model.cpp:3");
  auto out = sumAll(g, g.addOp(OpKind::Mul, {f, x}));
  std::string msg = errorOf(g, {out, {x}, std::nullopt});
  EXPECT_NE(msg.find("floor %rounded"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.cpp:3"), std::string::npos) << msg;
}

TEST(AutodiffApi, ASideBranchThroughAComparisonDoesNotBlock) {
  // relu written as x * cast(x > 0): x has a differentiable path, the mask is constant.
  Graph g("mask");
  auto x = g.addInput("x", kVec);
  auto mask = g.addOp(OpKind::Cast, {g.addOp(OpKind::Gt, {x, g.addConstant(tensor({DType::f64, {}}, {0}))})},
                      {{"dtype", DType::f64}});
  auto out = sumAll(g, g.addOp(OpKind::Mul, {x, mask}));
  GradResult r = appendGradients(g, {out, {x}, std::nullopt});
  g.addOutput("dx", *r.grads[0]);
  auto dx = reference::run(g, {{"x", vec({-1, 2, 3})}}).at("dx");
  EXPECT_EQ(dx.get(0), 0);
  EXPECT_EQ(dx.get(1), 1);
}

TEST(AutodiffApi, UnrelatedValuesAreUnreachable) {
  Graph g("u");
  auto x = g.addInput("x", kVec);
  auto y = g.addInput("y", kVec);
  auto out = sumAll(g, x);
  GradResult r = appendGradients(g, {out, {y, x}, std::nullopt});
  EXPECT_FALSE(r.grads[0].has_value());
  EXPECT_TRUE(r.grads[1].has_value());
  EXPECT_EQ(r.unreachable, (std::vector<std::string>{"%y"}));
  EXPECT_NE(r.notes.at(0).find("does not influence"), std::string::npos);
}

TEST(AutodiffApi, BadRequestsAreErrors) {
  Graph g("bad");
  auto x = g.addInput("x", kVec);
  auto labels = g.addInput("labels", {DType::i64, {3}});
  auto y = g.addOp(OpKind::Mul, {x, x}, {}, "y");
  auto wrongCotangent = g.addInput("c", {DType::f64, {2}});
  EXPECT_NE(errorOf(g, {y, {x}, std::nullopt}).find("single-element"), std::string::npos);
  EXPECT_NE(errorOf(g, {y, {x}, wrongCotangent}).find("cotangent"), std::string::npos);
  EXPECT_NE(errorOf(g, {sumAll(g, y), {labels}, std::nullopt}).find("%labels"), std::string::npos);
  EXPECT_NE(errorOf(g, {labels, {x}, std::nullopt}).find("float"), std::string::npos);
  EXPECT_NE(errorOf(g, {sumAll(g, y), {999}, std::nullopt}).find("%999"), std::string::npos);
}

TEST(AutodiffApi, ForwardValuesKeepTheirIdsAndTheGraphVerifies) {
  Graph g("keep");
  auto x = g.addInput("x", {DType::f64, {2, 3}});
  auto sm = g.addOp(OpKind::Softmax, {x}, {{"axis", int64_t{1}}});
  auto out = sumAll(g, g.addOp(OpKind::Gelu, {sm}, {{"approximate", int64_t{0}}}));
  Graph before = g;
  GradResult r = appendGradients(g, {out, {x}, std::nullopt});
  ASSERT_TRUE(r.grads[0].has_value());
  for (ValueId v = 0; v < before.size(); ++v) EXPECT_EQ(g.node(v).op, before.node(v).op);
  EXPECT_GE(*r.grads[0], before.size());
  EXPECT_TRUE(verifyErrors(g).empty());
}

TEST(AutodiffApi, GradientWithRespectToAnIntermediateValue) {
  Graph g("mid");
  auto x = g.addInput("x", kVec);
  auto h = g.addOp(OpKind::Mul, {x, x}, {}, "h");
  auto out = sumAll(g, g.addOp(OpKind::Mul, {h, g.addConstant(tensor(kVec, {1, 2, 3}))}));
  GradResult r = appendGradients(g, {out, {h, x}, std::nullopt});
  g.addOutput("dh", *r.grads[0]);
  g.addOutput("dx", *r.grads[1]);
  auto res = reference::run(g, {{"x", vec({1, 1, 1})}});
  EXPECT_EQ(res.at("dh").get(2), 3);
  EXPECT_EQ(res.at("dx").get(2), 6);
}

TEST(AutodiffApi, AddGradientOutputsNamesThemAndFillsZeros) {
  Graph g("named");
  auto w = g.addParam("fc.weight", kVec, {{"init", std::string("ones")}});
  auto b = g.addParam("fc.bias", kVec, {{"init", std::string("zeros")}});
  auto x = g.addInput("x", kVec);
  g.addOutput("loss", sumAll(g, g.addOp(OpKind::Mul, {w, x})));
  (void)b;
  GradResult r = addGradientOutputs(g, "loss", {"fc.weight", "fc.bias"});
  EXPECT_EQ(r.unreachable, (std::vector<std::string>{"%fc.bias"}));
  ASSERT_TRUE(g.findOutput("grad.fc.weight").has_value());
  EXPECT_EQ(g.node(*g.findOutput("grad.fc.weight")).name, "grad.fc.weight");
  verify(g);
  auto res = reference::run(g, {{"x", vec({4, 5, 6})}});
  EXPECT_EQ(res.at("grad.fc.weight").get(1), 5);
  EXPECT_EQ(res.at("grad.fc.bias").type, kVec);
  EXPECT_EQ(res.at("grad.fc.bias").get(0), 0);
  EXPECT_THROW(addGradientOutputs(g, "loss", {"fc.weight"}), Error);  // grad.fc.weight exists
  EXPECT_THROW(addGradientOutputs(g, "nope", {"x"}), Error);
  EXPECT_THROW(addGradientOutputs(g, "loss", {"nope"}), Error);
}

TEST(AutodiffApi, SpecFormSelectsParamsOrNamedValues) {
  Graph g("spec");
  auto w = g.addParam("w", kVec, {{"init", std::string("ones")}});
  auto x = g.addInput("x", kVec);
  auto y = g.addInput("y", {DType::i64, {3}});
  (void)y;
  g.addOutput("loss", sumAll(g, g.addOp(OpKind::Mul, {w, x})));
  Graph a = g, b = g;
  addGradientOutputsFromSpec(a, "loss");
  EXPECT_TRUE(a.findOutput("grad.w").has_value());
  EXPECT_FALSE(a.findOutput("grad.x").has_value());
  addGradientOutputsFromSpec(b, "loss:inputs,w");
  EXPECT_TRUE(b.findOutput("grad.x").has_value());  // the i64 input is skipped
  EXPECT_TRUE(b.findOutput("grad.w").has_value());
  EXPECT_THROW(addGradientOutputsFromSpec(g, ":w"), Error);
}

TEST(AutodiffApi, GradientGraphsRoundTripThroughText) {
  // conv, max_pool (its -inf padded window gathers appear in the double backward), avg_pool, gelu.
  Graph g("text");
  auto x = g.addInput("x", {DType::f32, {1, 2, 6, 6}});
  auto w = g.addParam("w", {DType::f32, {3, 2, 3, 3}}, {{"init", std::string("ones")}});
  auto y = g.addOp(OpKind::Conv, {x, w},
                   {{"stride", std::vector<int64_t>{1, 1}}, {"padding", std::vector<int64_t>{1, 1}},
                    {"dilation", std::vector<int64_t>{1, 1}}, {"groups", int64_t{1}}});
  auto pool = std::vector<int64_t>{2, 2};
  ir::Attrs poolAttrs = {{"window", pool}, {"stride", pool}, {"padding", std::vector<int64_t>{1, 1}}};
  auto p = g.addOp(OpKind::MaxPool, {g.addOp(OpKind::Gelu, {y}, {{"approximate", int64_t{1}}})}, poolAttrs);
  auto a = g.addOp(OpKind::AvgPool, {p}, poolAttrs);
  g.addOutput("loss", sumAll(g, a));
  addGradientOutputs(g, "loss", {"w", "x"});
  GradResult second = appendGradients(g, {sumAll(g, *g.findOutput("grad.x")), {x}, std::nullopt});
  g.addOutput("ddx", *second.grads[0]);
  EXPECT_GT(countOps(g, OpKind::MaxPoolGrad), 0);
  EXPECT_GT(countOps(g, OpKind::ConvWeightGrad), 0);
  PrintOptions full;
  full.elideLargeConstants = false;
  std::string text = printGraph(g, full);
  EXPECT_EQ(printGraph(parseGraph(text, "grad.weft"), full), text);
}

TEST(AutodiffApi, ActivationMasksReadTheActivationSoItsInputHasOneReader) {
  // relu and leaky_relu (alpha >= 0) take their x > 0 mask from the result, so the
  // pre-activation stays free to fuse into what computes it; a negative alpha reads x.
  for (double alpha : {-1.0, 0.0, 0.2, -0.5}) {
    Graph g("act");
    auto x = g.addInput("x", kVec);
    auto pre = g.addOp(OpKind::Mul, {x, x}, {}, "pre");
    auto shifted = g.addOp(OpKind::Sub, {pre, g.addConstant(tensor(kVec, {0.5, 2, 4}))});
    auto act = alpha == -1.0 ? g.addOp(OpKind::Relu, {shifted})
                             : g.addOp(OpKind::LeakyRelu, {shifted}, {{"alpha", alpha}});
    GradResult r = appendGradients(g, {sumAll(g, act), {x}, std::nullopt});
    g.addOutput("dx", *r.grads[0]);
    int readers = 0;
    for (const Node& n : g.nodes())
      for (ValueId o : n.operands) readers += o == shifted;
    EXPECT_EQ(readers, alpha < -0.9 || alpha >= 0 ? 1 : 2) << "alpha " << alpha;
    // d/dx of act(x^2 - c) at x = 1, 1, 3: slope(x^2 - c) * 2x.
    auto res = reference::run(g, {{"x", vec({1, 1, 3})}});
    double negative = alpha == -1.0 ? 0.0 : alpha;
    EXPECT_DOUBLE_EQ(res.at("dx").get(0), 2.0);             // 1 - 0.5 > 0
    EXPECT_DOUBLE_EQ(res.at("dx").get(1), 2.0 * negative);  // 1 - 2 < 0
    EXPECT_DOUBLE_EQ(res.at("dx").get(2), 6.0);             // 9 - 4 > 0
  }
}

// What the backward pass keeps of the forward: attention's gradient goes through softmax's
// own rule (no gradient through the max: no eq/argmax masks), and gelu's slope recomputes its
// erf from x (a second erf that cse leaves apart), so neither the scores, their exp nor the
// forward's erf need to stay alive for the backward pass.
TEST(AutodiffApi, AttentionAndGeluBackwardReadOnlyWhatPyTorchSaves) {
  Graph g("block");
  auto q = g.addInput("q", {DType::f32, {2, 4, 8}});
  auto att = g.addOp(OpKind::Attention, {q, q, q}, {{"causal", int64_t{1}}, {"scale", 0.5}});
  auto out = sumAll(g, g.addOp(OpKind::Gelu, {att}, {{"approximate", int64_t{0}}}));
  GradResult r = appendGradients(g, {out, {q}, std::nullopt});
  g.addOutput("dq", *r.grads[0]);
  decomposeComposites(g);
  eliminateCommonSubexpressions(g);
  EXPECT_EQ(countOps(g, OpKind::Eq), 0);
  EXPECT_EQ(countOps(g, OpKind::ReduceMax), 1);
  EXPECT_EQ(countOps(g, OpKind::Erf), 2);
  EXPECT_EQ(countOps(g, OpKind::Softmax), 0);  // decomposed, also where attention emitted it
}
