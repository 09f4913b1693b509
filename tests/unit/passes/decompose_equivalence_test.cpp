// Decompositions compute what the composite ops compute: the reference interpreter runs each
// sample graph before and after decompose-composites on random f64 inputs and the results
// must agree to 1e-10. A few hand-computed values pin the decomposed forms themselves.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "backends/reference/interpreter.h"
#include "passes/builtin_passes.h"
#include "passes/pass_manager.h"
#include "composite_samples.h"
#include "pass_test_util.h"

using namespace weft;
using namespace weft::ir;
using namespace weft::passes;
using namespace weft::passes::testing;

namespace {

/// Random feeds for every input of `s`: floats in U[-scale, scale] (variances positive),
/// integers in [0, classes).
reference::TensorMap randomFeeds(const CompositeSample& s, uint64_t seed) {
  std::mt19937_64 rng(seed);
  reference::TensorMap feeds;
  for (ValueId v : s.graph.inputs()) {
    const Node& n = s.graph.node(v);
    TensorData data(n.type);
    for (int64_t i = 0; i < data.numel(); ++i) {
      if (isInteger(n.type.dtype)) {
        data.set(i, static_cast<double>(std::uniform_int_distribution<int64_t>(0, s.classes - 1)(rng)));
      } else if (n.name == "var") {
        data.set(i, std::uniform_real_distribution<double>(0.1, 2.0)(rng));
      } else {
        data.set(i, std::uniform_real_distribution<double>(-s.inputScale, s.inputScale)(rng));
      }
    }
    feeds.emplace(n.name, std::move(data));
  }
  return feeds;
}

void expectClose(const TensorData& expected, const TensorData& actual, double tolerance, const std::string& what) {
  ASSERT_EQ(expected.type, actual.type) << what;
  for (int64_t i = 0; i < expected.numel(); ++i) {
    double e = expected.get(i), a = actual.get(i);
    EXPECT_NEAR(a, e, tolerance * (1 + std::abs(e))) << what << " element " << i;
  }
}

/// Runs `g` after decompose-composites on `feeds` and returns output `name`.
TensorData runDecomposed(Graph g, const reference::TensorMap& feeds, const std::string& name = "result") {
  decomposeComposites(g);
  return reference::run(g, feeds).at(name);
}

TensorData values(TensorType type, const std::vector<double>& v) { return *tensor(std::move(type), v); }

}  // namespace

TEST(DecomposeEquivalence, EveryCompositeMatchesTheInterpreterInF64) {
  for (const auto& s : compositeSamples(DType::f64)) {
    SCOPED_TRACE(s.label);
    for (uint64_t seed : {1u, 2u, 3u}) {
      auto feeds = randomFeeds(s, seed * 7919 + static_cast<uint64_t>(s.op));
      TensorData expected = reference::run(s.graph, feeds).at("result");
      TensorData actual = runDecomposed(s.graph, feeds);
      expectClose(expected, actual, 1e-10, s.label);
    }
  }
}

TEST(DecomposeEquivalence, SoftmaxAndLogSumExpByHand) {
  Graph g("s");
  auto x = g.addInput("x", {DType::f64, {2, 2}});
  g.addOutput("p", g.addOp(OpKind::Softmax, {x}, {{"axis", int64_t{1}}}));
  g.addOutput("lse", g.addOp(OpKind::LogSumExp, {x}, {{"axes", std::vector<int64_t>{1}}, {"keepdims", int64_t{0}}}));
  double inf = std::numeric_limits<double>::infinity();
  // Row 0: [0, ln 3] -> [1/4, 3/4], lse ln 4. Row 1: [1000, -inf] -> [1, 0], lse 1000 (no overflow).
  reference::TensorMap feeds{{"x", values({DType::f64, {2, 2}}, {0, std::log(3.0), 1000, -inf})}};
  Graph d = g;
  decomposeComposites(d);
  auto out = reference::run(d, feeds);
  expectClose(values({DType::f64, {2, 2}}, {0.25, 0.75, 1, 0}), out.at("p"), 1e-15, "softmax");
  expectClose(values({DType::f64, {2}}, {std::log(4.0), 1000}), out.at("lse"), 1e-15, "logsumexp");
}

TEST(DecomposeEquivalence, LogSumExpOfAllMinusInfinityIsMinusInfinity) {
  Graph g("s");
  auto x = g.addInput("x", {DType::f64, {1, 2}});
  g.addOutput("lse", g.addOp(OpKind::LogSumExp, {x}, {{"axes", std::vector<int64_t>{1}}, {"keepdims", int64_t{1}}}));
  double inf = std::numeric_limits<double>::infinity();
  TensorData lse = runDecomposed(g, {{"x", values({DType::f64, {1, 2}}, {-inf, -inf})}}, "lse");
  EXPECT_EQ(lse.get(0), -inf);
}

TEST(DecomposeEquivalence, SoftplusAndBceStayFiniteForLargeLogits) {
  Graph g("s");
  auto x = g.addInput("x", {DType::f64, {3}});
  auto t = g.addInput("t", {DType::f64, {3}});
  g.addOutput("sp", g.addOp(OpKind::Softplus, {x}));
  g.addOutput("bce", g.addOp(OpKind::BceWithLogits, {x, t}, {{"reduce", std::string("none")}}));
  Graph d = g;
  decomposeComposites(d);
  auto out = reference::run(d, {{"x", values({DType::f64, {3}}, {1000, -1000, 0})},
                                {"t", values({DType::f64, {3}}, {1, 0, 1})}});
  // softplus(1000) = 1000, softplus(-1000) = e^-1000 ~ 0, softplus(0) = ln 2.
  expectClose(values({DType::f64, {3}}, {1000, 0, std::log(2.0)}), out.at("sp"), 1e-15, "softplus");
  // bce = softplus(x) - x t: 1000 - 1000, 0 - 0, ln 2 - 0.
  expectClose(values({DType::f64, {3}}, {0, 0, std::log(2.0)}), out.at("bce"), 1e-15, "bce");
}

TEST(DecomposeEquivalence, SoftplusKeepsItsTailInF32) {
  // Below x = -16, 1 + exp(x) rounds to 1 in f32: the decomposition's log1p form keeps the
  // tail (it gave 0, and log(softplus(x)) -inf, found by differential fuzzing).
  Graph g("s");
  auto x = g.addInput("x", {DType::f32, {5}});
  g.addOutput("sp", g.addOp(OpKind::Softplus, {x}));
  Graph d = g;
  decomposeComposites(d);
  const std::vector<double> xs = {-30, -20, -16, -10, 3};
  auto out = reference::run(d, {{"x", values({DType::f32, {5}}, xs)}});
  for (size_t i = 0; i < xs.size(); ++i) {
    const double want = std::log1p(std::exp(xs[i]));
    EXPECT_NEAR(out.at("sp").get(static_cast<int64_t>(i)), want, 2e-7 * want) << "x = " << xs[i];
  }
}

TEST(DecomposeEquivalence, F32SoftplusStaysWithinTwoUlpsOfLog1p) {
  // In f32, log1p(exp(-|x|)) is the atanh series in s = u / (2 + u): checked on a dense grid
  // over the whole unit range of u (x from -12 to 12), where a wrong coefficient or a term too
  // few shows at x near 0 (s = 1/3, the series' slowest point).
  Graph g("s");
  const int64_t n = 2401;
  auto x = g.addInput("x", {DType::f32, {n}});
  g.addOutput("sp", g.addOp(OpKind::Softplus, {x}));
  Graph d = g;
  decomposeComposites(d);
  std::vector<double> xs;
  for (int64_t i = 0; i < n; ++i) xs.push_back(static_cast<double>(static_cast<float>(-12.0 + 0.01 * static_cast<double>(i))));
  auto out = reference::run(d, {{"x", values({DType::f32, {n}}, xs)}});
  for (int64_t i = 0; i < n; ++i) {
    const double want = std::fmax(xs[i], 0.0) + std::log1p(std::exp(-std::fabs(xs[i])));
    EXPECT_NEAR(out.at("sp").get(i), want, 2.4e-7 * want) << "x = " << xs[i];
  }
}

TEST(DecomposeEquivalence, CrossEntropyByHand) {
  Graph g("ce");
  auto logits = g.addInput("logits", {DType::f64, {2, 3}});
  auto labels = g.addInput("labels", {DType::i64, {2}});
  g.addOutput("loss", g.addOp(OpKind::CrossEntropy, {logits, labels}, {{"reduce", std::string("mean")}}));
  // Row 0 uniform logits: -log(1/3). Row 1 [ln 1, ln 2, ln 5], label 2: -log(5/8).
  TensorData loss =
      runDecomposed(g,
                    {{"logits", values({DType::f64, {2, 3}}, {7, 7, 7, 0, std::log(2.0), std::log(5.0)})},
                     {"labels", values({DType::i64, {2}}, {1, 2})}},
                    "loss");
  expectClose(values({DType::f64, {}}, {(std::log(3.0) - std::log(5.0 / 8.0)) / 2}), loss, 1e-14, "cross_entropy");
}

TEST(DecomposeEquivalence, CausalAttentionFirstRowSeesOnlyTheFirstKey) {
  Graph g("att");
  auto q = g.addInput("q", {DType::f64, {3, 2}});
  auto k = g.addInput("k", {DType::f64, {3, 2}});
  auto v = g.addInput("v", {DType::f64, {3, 1}});
  g.addOutput("o", g.addOp(OpKind::Attention, {q, k, v}, {{"causal", int64_t{1}}, {"scale", 1.0}}));
  // q = k = 0: every allowed score is equal, so row i averages v[0..i].
  TensorData o = runDecomposed(g,
                               {{"q", values({DType::f64, {3, 2}}, {0, 0, 0, 0, 0, 0})},
                                {"k", values({DType::f64, {3, 2}}, {0, 0, 0, 0, 0, 0})},
                                {"v", values({DType::f64, {3, 1}}, {3, 6, 9})}},
                               "o");
  expectClose(values({DType::f64, {3, 1}}, {3, 4.5, 6}), o, 1e-15, "attention");
}

TEST(DecomposeEquivalence, NormsByHand) {
  Graph g("norm");
  auto x = g.addInput("x", {DType::f64, {1, 2, 2}});
  auto gamma = g.addInput("gamma", {DType::f64, {2}});
  auto beta = g.addInput("beta", {DType::f64, {2}});
  g.addOutput("ln", g.addOp(OpKind::LayerNorm, {x, gamma, beta}, {{"axis", int64_t{2}}, {"eps", 0.0}}));
  g.addOutput("gn", g.addOp(OpKind::GroupNorm, {x, gamma, beta}, {{"groups", int64_t{1}}, {"eps", 0.0}}));
  Graph d = g;
  decomposeComposites(d);
  // x = [[1, 3], [5, 13]]. layer_norm over the last dim: rows become [-1, 1] (biased variance).
  // group_norm over all 4 values: mean 5.5, biased variance (20.25+6.25+0.25+56.25)/4 = 20.75.
  auto out = reference::run(d, {{"x", values({DType::f64, {1, 2, 2}}, {1, 3, 5, 13})},
                                {"gamma", values({DType::f64, {2}}, {2, 3})},
                                {"beta", values({DType::f64, {2}}, {10, 20})}});
  expectClose(values({DType::f64, {1, 2, 2}}, {8, 23, 8, 23}), out.at("ln"), 1e-14, "layer_norm");
  double s = std::sqrt(20.75);
  expectClose(values({DType::f64, {1, 2, 2}},
                     {2 * (1 - 5.5) / s + 10, 2 * (3 - 5.5) / s + 10, 3 * (5 - 5.5) / s + 20, 3 * (13 - 5.5) / s + 20}),
              out.at("gn"), 1e-14, "group_norm");
}

TEST(DecomposeEquivalence, DefaultPipelinePreservesAModelsOutputs) {
  Graph g("model");
  auto x = g.addInput("x", {DType::f64, {4, 6}});
  auto labels = g.addInput("labels", {DType::i32, {4}});
  auto w = g.addParam("w", {DType::f64, {6, 6}}, {{"init", std::string("normal")}, {"seed", int64_t{5}}, {"scale", 0.5}});
  auto gamma = g.addInput("gamma", {DType::f64, {6}});
  auto beta = g.addInput("beta", {DType::f64, {6}});
  auto h = g.addOp(OpKind::Matmul, {x, w});
  auto n = g.addOp(OpKind::LayerNorm, {h, gamma, beta}, {{"axis", int64_t{1}}, {"eps", 1e-5}});
  auto a = g.addOp(OpKind::Gelu, {n}, {{"approximate", int64_t{1}}});
  auto q = g.addOp(OpKind::Reshape, {a}, {{"shape", Shape{2, 2, 6}}});
  auto att = g.addOp(OpKind::Attention, {q, q, q}, {{"causal", int64_t{1}}, {"scale", 0.4}});
  auto flat = g.addOp(OpKind::Reshape, {att}, {{"shape", Shape{4, 6}}});
  auto zero = g.addConstant(filled({DType::f64, {6}}, 0));
  auto one = g.addConstant(filled({DType::f64, {}}, 1));
  auto logits = g.addOp(OpKind::Mul, {g.addOp(OpKind::Add, {flat, zero}), one}, {}, "logits");
  auto e1 = g.addOp(OpKind::Exp, {x}), e2 = g.addOp(OpKind::Exp, {x});
  auto bias = g.addOp(OpKind::ReduceMean, {g.addOp(OpKind::Add, {e1, e2})}, {{"axes", std::vector<int64_t>{0, 1}}, {"keepdims", int64_t{0}}});
  auto ce = g.addOp(OpKind::CrossEntropy, {logits, labels}, {{"reduce", std::string("mean")}});
  g.addOutput("loss", g.addOp(OpKind::Add, {ce, bias}, {}, "loss"));
  g.addOutput("logits", logits);

  CompositeSample s{"model", OpKind::Attention, g, 1.5, 6};
  auto feeds = randomFeeds(s, 42);
  feeds.emplace("w", *tensor({DType::f64, {6, 6}}, std::vector<double>(36, 0.25)));
  for (int64_t i = 0; i < 36; i += 7) feeds.at("w").set(i, -0.5 + 0.1 * static_cast<double>(i));
  auto expected = reference::run(g, feeds);

  Graph decomposedOnly = g;
  decomposeComposites(decomposedOnly);
  reference::registerReferencePasses();
  Graph optimized = g;
  EXPECT_TRUE(PassManager(defaultPipeline() + ",fold-constants,cse,dce").run(optimized));
  EXPECT_EQ(countFlagged(optimized, kComposite), 0);
  EXPECT_LT(optimized.size(), decomposedOnly.size());
  EXPECT_EQ(countOps(optimized, OpKind::Exp), countOps(decomposedOnly, OpKind::Exp) - 1) << "the two exp(x) merge";
  EXPECT_EQ(optimized.node(*optimized.findOutput("logits")).op, OpKind::Reshape) << "logits = flat after + 0, * 1";
  auto actual = reference::run(optimized, feeds);
  for (const char* out : {"loss", "logits"}) expectClose(expected.at(out), actual.at(out), 1e-10, out);
}
