// Gradient rules on small graphs against hand-computed gradients.
#include <gtest/gtest.h>

#include <cmath>

#include "backends/reference/interpreter.h"
#include "ir/verifier.h"
#include "passes/autodiff.h"
#include "pass_test_util.h"

using namespace weft;
using namespace weft::ir;
using namespace weft::passes;
using namespace weft::passes::testing;

namespace {

TensorData values(TensorType type, const std::vector<double>& v) { return *tensor(std::move(type), v); }

std::vector<double> elements(const TensorData& t) {
  std::vector<double> r;
  for (int64_t i = 0; i < t.numel(); ++i) r.push_back(t.get(i));
  return r;
}

/// sum over all axes of `v`.
ValueId sumAll(Graph& g, ValueId v) {
  std::vector<int64_t> axes;
  for (int64_t d = 0; d < g.type(v).rank(); ++d) axes.push_back(d);
  return g.addOp(OpKind::ReduceSum, {v}, axesAttrs(axes, false));
}

/// Differentiates `out` w.r.t. `wrt`, adds the gradients as outputs g0, g1, ... and runs.
reference::TensorMap gradients(Graph g, ValueId out, std::vector<ValueId> wrt, const reference::TensorMap& feeds,
                               std::optional<ValueId> cotangent = std::nullopt) {
  GradResult r = appendGradients(g, {out, wrt, cotangent});
  for (size_t i = 0; i < r.grads.size(); ++i) {
    EXPECT_TRUE(r.grads[i].has_value()) << "wrt " << i;
    if (r.grads[i]) g.addOutput("g" + std::to_string(i), *r.grads[i]);
  }
  verify(g);
  return reference::run(g, feeds);
}

const TensorType kF64x3{DType::f64, {3}};

}  // namespace

TEST(AutodiffRules, SumOfSquaresGivesTwiceX) {
  Graph g("sq");
  auto x = g.addInput("x", kF64x3);
  auto out = sumAll(g, g.addOp(OpKind::Mul, {x, x}));
  auto r = gradients(g, out, {x}, {{"x", values(kF64x3, {1, -2, 3})}});
  EXPECT_EQ(elements(r.at("g0")), (std::vector<double>{2, -4, 6}));
}

TEST(AutodiffRules, BroadcastingAddSumsBackToEachShape) {
  Graph g("bc");
  auto a = g.addInput("a", {DType::f64, {2, 3}});
  auto b = g.addInput("b", {DType::f64, {3}});
  auto c = g.addInput("c", {DType::f64, {2, 1}});
  auto out = sumAll(g, g.addOp(OpKind::Add, {g.addOp(OpKind::Add, {a, b}), c}));
  auto r = gradients(g, out, {a, b, c},
                     {{"a", values({DType::f64, {2, 3}}, {1, 2, 3, 4, 5, 6})},
                      {"b", values(kF64x3, {1, 1, 1})},
                      {"c", values({DType::f64, {2, 1}}, {0, 0})}});
  EXPECT_EQ(r.at("g0").type, (TensorType{DType::f64, {2, 3}}));
  EXPECT_EQ(elements(r.at("g0")), (std::vector<double>(6, 1)));
  EXPECT_EQ(r.at("g1").type, kF64x3);
  EXPECT_EQ(elements(r.at("g1")), (std::vector<double>{2, 2, 2}));
  EXPECT_EQ(r.at("g2").type, (TensorType{DType::f64, {2, 1}}));
  EXPECT_EQ(elements(r.at("g2")), (std::vector<double>{3, 3}));
}

TEST(AutodiffRules, MatmulGradientsAreTheOtherOperandTransposed) {
  // f = sum(A B) with A [1,2] = [1 2], B [2,2] = [[3 4],[5 6]]: dA = row sums of B = [7 11],
  // dB[k][n] = A[k] = [[1 1],[2 2]].
  Graph g("mm");
  auto a = g.addInput("a", {DType::f64, {1, 2}});
  auto b = g.addInput("b", {DType::f64, {2, 2}});
  auto out = sumAll(g, g.addOp(OpKind::Matmul, {a, b}));
  auto r = gradients(g, out, {a, b},
                     {{"a", values({DType::f64, {1, 2}}, {1, 2})}, {"b", values({DType::f64, {2, 2}}, {3, 4, 5, 6})}});
  EXPECT_EQ(elements(r.at("g0")), (std::vector<double>{7, 11}));
  EXPECT_EQ(elements(r.at("g1")), (std::vector<double>{1, 1, 2, 2}));
}

TEST(AutodiffRules, GatherAndScatterAddAreEachOthersAdjoint) {
  // out = sum(gather(x, [0,2,2]) * [1,2,3]): dx = [1, 0, 2+3].
  Graph g("gs");
  auto x = g.addInput("x", kF64x3);
  auto idx = g.addInput("idx", {DType::i64, {3}});
  auto w = g.addConstant(tensor(kF64x3, {1, 2, 3}));
  auto out = sumAll(g, g.addOp(OpKind::Mul, {g.addOp(OpKind::Gather, {x, idx}, {{"axis", int64_t{0}}}), w}));
  TensorData indices = values({DType::i64, {3}}, {0, 2, 2});
  auto r = gradients(g, out, {x}, {{"x", values(kF64x3, {5, 6, 7})}, {"idx", indices}});
  EXPECT_EQ(elements(r.at("g0")), (std::vector<double>{1, 0, 5}));

  // out = sum(scatter_add(base, [0,2,2], u) * [1,2,3]): d base = [1,2,3], du = [1,3,3].
  Graph h("sa");
  auto base = h.addInput("base", kF64x3);
  auto idx2 = h.addInput("idx", {DType::i64, {3}});
  auto u = h.addInput("u", kF64x3);
  auto w2 = h.addConstant(tensor(kF64x3, {1, 2, 3}));
  auto scattered = h.addOp(OpKind::ScatterAdd, {base, idx2, u}, {{"axis", int64_t{0}}});
  auto out2 = sumAll(h, h.addOp(OpKind::Mul, {scattered, w2}));
  auto r2 = gradients(h, out2, {base, u},
                      {{"base", values(kF64x3, {0, 0, 0})}, {"idx", indices}, {"u", values(kF64x3, {1, 1, 1})}});
  EXPECT_EQ(elements(r2.at("g0")), (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(elements(r2.at("g1")), (std::vector<double>{1, 3, 3}));
}

TEST(AutodiffRules, SecondDerivativeOfCubeIsSixX) {
  for (bool usePow : {false, true}) {
    SCOPED_TRACE(usePow ? "pow(x, 3)" : "x*x*x");
    Graph g("cube");
    auto x = g.addInput("x", {DType::f64, {2}});
    ValueId cube = usePow ? g.addOp(OpKind::Pow, {x, g.addConstant(tensor({DType::f64, {}}, {3}))})
                          : g.addOp(OpKind::Mul, {g.addOp(OpKind::Mul, {x, x}), x});
    GradResult first = appendGradients(g, {sumAll(g, cube), {x}, std::nullopt});
    ValueId slope = *first.grads[0];  // 3x^2
    GradResult second = appendGradients(g, {sumAll(g, slope), {x}, std::nullopt});
    g.addOutput("first", slope);
    g.addOutput("second", *second.grads[0]);
    auto r = reference::run(g, {{"x", values({DType::f64, {2}}, {1, 2})}});
    EXPECT_EQ(elements(r.at("first")), (std::vector<double>{3, 12}));
    EXPECT_EQ(elements(r.at("second")), (std::vector<double>{6, 12}));
  }
}

TEST(AutodiffRules, VectorJacobianProductUsesTheCotangent) {
  Graph g("vjp");
  auto x = g.addInput("x", kF64x3);
  auto c = g.addInput("c", kF64x3);
  auto y = g.addOp(OpKind::Mul, {x, x});
  auto r = gradients(g, y, {x}, {{"x", values(kF64x3, {1, 2, 3})}, {"c", values(kF64x3, {1, 10, 100})}}, c);
  EXPECT_EQ(elements(r.at("g0")), (std::vector<double>{2, 40, 600}));
}

TEST(AutodiffRules, TiesShareTheCotangent) {
  // reduce_max over [1, 3, 3]: the two maxima split it; maximum(x, y) with x == y: half each.
  Graph g("ties");
  auto x = g.addInput("x", kF64x3);
  auto y = g.addInput("y", kF64x3);
  auto m = g.addOp(OpKind::ReduceMax, {x}, axesAttrs({0}, false));
  auto pair = sumAll(g, g.addOp(OpKind::Maximum, {x, y}));
  auto out = g.addOp(OpKind::Add, {m, pair});
  auto r = gradients(g, out, {x, y}, {{"x", values(kF64x3, {1, 3, 3})}, {"y", values(kF64x3, {0, 3, 5})}});
  EXPECT_EQ(elements(r.at("g0")), (std::vector<double>{1, 0.5 + 0.5, 0.5}));
  EXPECT_EQ(elements(r.at("g1")), (std::vector<double>{0, 0.5, 1}));
}

TEST(AutodiffRules, MaxPoolRoutesToTheFirstMaximum) {
  Graph g("pool");
  auto x = g.addInput("x", {DType::f64, {1, 1, 2, 4}});
  auto pooled = g.addOp(OpKind::MaxPool, {x},
                        {{"window", std::vector<int64_t>{2, 2}}, {"stride", std::vector<int64_t>{2, 2}},
                         {"padding", std::vector<int64_t>{0, 0}}});
  auto out = sumAll(g, g.addOp(OpKind::Mul, {pooled, g.addConstant(tensor({DType::f64, {1, 1, 1, 2}}, {2, 3}))}));
  auto r = gradients(g, out, {x}, {{"x", values({DType::f64, {1, 1, 2, 4}}, {1, 1, 0, 5, 1, 1, 5, 2})}});
  EXPECT_EQ(elements(r.at("g0")), (std::vector<double>{2, 0, 0, 3, 0, 0, 0, 0}));
}

TEST(AutodiffRules, ConvGradientsByHand) {
  // 1-D conv of x = [1 2 3] with w = [1 -1], stride 1: y = [-1 -1]; out = sum(y * [1 2]).
  // dx = [1, 2-1, -2] = [1 1 -2]; dw[k] = sum_p c[p] x[p+k] = [1*1+2*2, 1*2+2*3] = [5 8].
  Graph g("conv");
  auto x = g.addInput("x", {DType::f64, {1, 1, 3}});
  auto w = g.addInput("w", {DType::f64, {1, 1, 2}});
  auto y = g.addOp(OpKind::Conv, {x, w},
                   {{"stride", std::vector<int64_t>{1}}, {"padding", std::vector<int64_t>{0}},
                    {"dilation", std::vector<int64_t>{1}}, {"groups", int64_t{1}}});
  auto out = sumAll(g, g.addOp(OpKind::Mul, {y, g.addConstant(tensor({DType::f64, {1, 1, 2}}, {1, 2}))}));
  auto r = gradients(g, out, {x, w},
                     {{"x", values({DType::f64, {1, 1, 3}}, {1, 2, 3})}, {"w", values({DType::f64, {1, 1, 2}}, {1, -1})}});
  EXPECT_EQ(elements(r.at("g0")), (std::vector<double>{1, 1, -2}));
  EXPECT_EQ(elements(r.at("g1")), (std::vector<double>{5, 8}));
}

TEST(AutodiffRules, SliceWithStrideScattersIntoZeros) {
  Graph g("slice");
  auto x = g.addInput("x", {DType::f64, {6}});
  auto s = g.addOp(OpKind::Slice, {x},
                   {{"start", std::vector<int64_t>{1}}, {"limit", std::vector<int64_t>{6}},
                    {"stride", std::vector<int64_t>{2}}});  // x[1], x[3], x[5]
  auto out = sumAll(g, g.addOp(OpKind::Mul, {s, g.addConstant(tensor(kF64x3, {1, 2, 3}))}));
  auto r = gradients(g, out, {x}, {{"x", values({DType::f64, {6}}, {0, 0, 0, 0, 0, 0})}});
  EXPECT_EQ(elements(r.at("g0")), (std::vector<double>{0, 1, 0, 2, 0, 3}));
}

TEST(AutodiffRules, CastBackToTheOperandsDtype) {
  Graph g("cast");
  auto x = g.addInput("x", {DType::f32, {2}});
  auto wide = g.addOp(OpKind::Cast, {x}, {{"dtype", DType::f64}});
  auto out = sumAll(g, g.addOp(OpKind::Mul, {wide, wide}));
  auto r = gradients(g, out, {x}, {{"x", values({DType::f32, {2}}, {1.5, -2})}});
  EXPECT_EQ(r.at("g0").type, (TensorType{DType::f32, {2}}));
  EXPECT_EQ(elements(r.at("g0")), (std::vector<double>{3, -4}));
}

TEST(AutodiffRules, CompositesDifferentiateThroughARuleOrTheirDecomposition) {
  // d/dx softplus(x) = sigmoid(x) (through its decomposition); layer_norm's gradient (its own
  // rule) w.r.t. beta is the cotangent.
  Graph g("comp");
  auto x = g.addInput("x", {DType::f64, {2}});
  auto beta = g.addInput("beta", {DType::f64, {2}});
  auto gamma = g.addConstant(tensor({DType::f64, {2}}, {1, 1}));
  auto sp = sumAll(g, g.addOp(OpKind::Softplus, {x}));
  auto ln = sumAll(g, g.addOp(OpKind::LayerNorm, {x, gamma, beta}, {{"axis", int64_t{0}}, {"eps", 1e-5}}));
  auto out = g.addOp(OpKind::Add, {sp, ln});
  Graph before = g;
  auto r = gradients(g, out, {x, beta}, {{"x", values({DType::f64, {2}}, {0, 1})}, {"beta", values({DType::f64, {2}}, {0, 0})}});
  // layer_norm of 2 values sums to 0 whatever x is, so only softplus contributes to dx.
  EXPECT_NEAR(r.at("g0").get(0), 0.5, 1e-12);
  EXPECT_NEAR(r.at("g0").get(1), 1 / (1 + std::exp(-1.0)), 1e-9);
  EXPECT_EQ(elements(r.at("g1")), (std::vector<double>{1, 1}));
}
