// Fused contractions on oneDNN: fuse-epilogues on mlp_tiny, and fused matmul/conv nodes with
// every kind of post-op lowered to one primitive, against the reference interpreter on the
// unfused graph (1e-4 relative).
#include <gtest/gtest.h>

#include "cpu_test_util.h"

#include <cmath>
#include <functional>
#include <memory>

#include "backends/cpu/executable.h"
#include "models/registry.h"
#include "passes/pass_manager.h"
#include "runtime/cpu/blocked_layout.h"
#include "runtime/cpu/onednn_ops.h"

using namespace weft;
using cpu::testing::expectClose;

namespace {

using ir::OpKind;
using ir::ValueId;

ir::TensorType f32(ir::Shape shape) { return {ir::DType::f32, std::move(shape)}; }

ValueId scalar(ir::Graph& g, double value) {
  auto t = std::make_shared<ir::TensorData>(f32({}));
  t->set(0, value);
  return g.addConstant(t);
}

/// Deterministic feeds: floats 0.3 + 0.6 sin(1.3 i + salt) (inputs named "pos*" get 1.5 +
/// 0.5 sin, safe divisors), integers i % 2.
reference::TensorMap feedsFor(const ir::Graph& g) {
  reference::TensorMap feeds;
  int salt = 0;
  for (ValueId v : g.inputs()) {
    ir::TensorData t(g.type(v));
    bool positive = g.node(v).name.rfind("pos", 0) == 0;
    for (int64_t i = 0; i < t.numel(); ++i) {
      double s = std::sin(1.3 * double(i) + salt);
      t.set(i, ir::isFloat(t.type.dtype) ? (positive ? 1.5 + 0.5 * s : 0.3 + 0.6 * s) : double(i % 2));
    }
    feeds[g.node(v).name] = t;
    ++salt;
  }
  return feeds;
}

/// Fused nodes of `g` of kind `kind`.
int countFused(const ir::Graph& g, const std::string& kind) {
  int n = 0;
  for (const ir::Node& node : g.nodes())
    n += node.op == OpKind::Fused && ir::AttrReader(node.attrs, node.op).s("kind") == kind;
  return n;
}

/// Compiles `g` (the CPU pipeline fuses its epilogue), expects one fused `kind` node run by
/// oneDNN (or by the interpreter when `onednn` is false), and compares with the reference.
void expectOneFusedPrimitive(const ir::Graph& g, const std::string& kind, bool onednn = true) {
  cpu::Executable exe = cpu::compile(g);
  EXPECT_EQ(countFused(exe.graph(), kind), 1);
  EXPECT_EQ(exe.oneDnnNodeCount(), onednn ? 1 : 0);
  reference::TensorMap feeds = feedsFor(g);
  expectClose(exe.run(feeds), reference::run(g, feeds), "compiled");
}

ir::Attrs convAttrs(int64_t stride, int64_t padding, int64_t groups) {
  return {{"stride", std::vector<int64_t>{stride, stride}},
          {"padding", std::vector<int64_t>{padding, padding}},
          {"dilation", std::vector<int64_t>{1, 1}},
          {"groups", groups}};
}

}  // namespace

TEST(OneDnnFusion, MlpTinyMatmulBiasReluBecomesOneFusedNode) {
  ir::Graph g = models::buildModel("mlp_tiny");
  ir::Graph fused = g;
  passes::PassManager("decompose-composites,canonicalize,cse,dce,fuse-epilogues,dce").run(fused);
  // fc1 and fc2: matmul + bias + relu; fc3: matmul + bias (the logits).
  EXPECT_EQ(countFused(fused, "matmul"), 3);
  int matmuls = 0, maxima = 0;
  for (const ir::Node& n : fused.nodes()) {
    matmuls += n.op == OpKind::Matmul;
    maxima += n.op == OpKind::Maximum;
  }
  EXPECT_EQ(matmuls, 0);
  EXPECT_EQ(maxima, 0);
  reference::TensorMap feeds = feedsFor(g);
  reference::TensorMap want = reference::run(g, feeds);
  expectClose(reference::run(fused, feeds), want, "interpreter on the fused graph");

  cpu::Executable exe = cpu::compile(g);
  EXPECT_EQ(countFused(exe.graph(), "matmul"), 3);
  EXPECT_EQ(exe.oneDnnNodeCount(), 3);
  expectClose(exe.run(feeds), want, "compiled");
}

TEST(OneDnnFusion, ConvBiasRelu) {
  ir::Graph g;
  ValueId x = g.addInput("x", f32({2, 3, 9, 8}));
  ValueId w = g.addInput("w", f32({16, 3, 3, 3}));
  ValueId b = g.addInput("b", f32({16, 1, 1}));
  ValueId y = g.addOp(OpKind::Add, {g.addOp(OpKind::Conv, {x, w}, convAttrs(2, 1, 1)), b});
  g.addOutput("y", g.addOp(OpKind::Relu, {y}));
  expectOneFusedPrimitive(g, "conv");
}

TEST(OneDnnFusion, GroupedConvResidualAndEltwiseChain) {
  // exp(tanh(0.5 * sigmoid(conv(x, w) + x) - 0.25) * s) with s per channel; x is the residual.
  ir::Graph g;
  ValueId x = g.addInput("x", f32({2, 4, 6, 6}));
  ValueId w = g.addInput("w", f32({4, 2, 3, 3}));
  ValueId s = g.addInput("s", f32({1, 4, 1, 1}));
  ValueId y = g.addOp(OpKind::Add, {g.addOp(OpKind::Conv, {x, w}, convAttrs(1, 1, 2)), x});
  y = g.addOp(OpKind::Mul, {scalar(g, 0.5), g.addOp(OpKind::Sigmoid, {y})});
  y = g.addOp(OpKind::Tanh, {g.addOp(OpKind::Sub, {y, scalar(g, 0.25)})});
  g.addOutput("y", g.addOp(OpKind::Exp, {g.addOp(OpKind::Mul, {y, s})}));
  expectOneFusedPrimitive(g, "conv");
}

TEST(OneDnnFusion, ConstantBiasesAndBroadcastZeroRelu) {
  // A small per-channel constant (copied into the body, held by the step), a large constant
  // (an operand), and relu written as maximum with a broadcast zero.
  ir::Graph g;
  ValueId x = g.addInput("x", f32({2, 3, 5, 5}));
  ValueId w = g.addInput("w", f32({4, 3, 3, 3}));
  auto small = std::make_shared<ir::TensorData>(f32({4, 1, 1}));
  auto large = std::make_shared<ir::TensorData>(f32({1, 4, 5, 5}));
  for (int64_t i = 0; i < small->numel(); ++i) small->set(i, 0.2 * double(i) - 0.3);
  for (int64_t i = 0; i < large->numel(); ++i) large->set(i, std::cos(0.3 * double(i)));
  ValueId y = g.addOp(OpKind::Add, {g.addOp(OpKind::Conv, {x, w}, convAttrs(1, 1, 1)), g.addConstant(small)});
  y = g.addOp(OpKind::Mul, {y, g.addConstant(large)});
  ValueId zero = g.addOp(OpKind::Broadcast, {scalar(g, 0.0)}, {{"shape", std::vector<int64_t>{2, 4, 5, 5}}});
  g.addOutput("y", g.addOp(OpKind::Maximum, {y, zero}));
  expectOneFusedPrimitive(g, "conv");
}

TEST(OneDnnFusion, MatmulWithReversedSubAbsSqrtPowLogNeg) {
  ir::Graph g;
  ValueId a = g.addInput("a", f32({5, 7}));
  ValueId b = g.addInput("b", f32({7, 6}));
  ValueId t = g.addInput("t", f32({5, 6}));
  ValueId shift = g.addInput("pos_shift", f32({1, 6}));
  ValueId y = g.addOp(OpKind::Sub, {t, g.addOp(OpKind::Matmul, {a, b})});  // neg (linear -1, 0), add t
  y = g.addOp(OpKind::Sqrt, {g.addOp(OpKind::Abs, {y})});
  y = g.addOp(OpKind::Pow, {y, scalar(g, 3.0)});
  y = g.addOp(OpKind::Add, {y, shift});
  g.addOutput("y", g.addOp(OpKind::Neg, {g.addOp(OpKind::Log, {y})}));
  expectOneFusedPrimitive(g, "matmul");
}

TEST(OneDnnFusion, BatchedMatmulWithClipsDivisionsAndSquare) {
  // bias [6], max with 0.1 and min with a tensor, division by a tensor and a scalar, square,
  // a shift, rsqrt.
  ir::Graph g;
  ValueId a = g.addInput("a", f32({3, 4, 5}));
  ValueId b = g.addInput("b", f32({5, 6}));
  ValueId bias = g.addInput("bias", f32({6}));
  ValueId cap = g.addInput("cap", f32({3, 1, 6}));
  ValueId divisor = g.addInput("pos_divisor", f32({3, 4, 6}));
  ValueId shift = g.addInput("pos_shift", f32({6}));
  ValueId y = g.addOp(OpKind::Add, {g.addOp(OpKind::Matmul, {a, b}), bias});
  y = g.addOp(OpKind::Maximum, {scalar(g, 0.1), y});
  y = g.addOp(OpKind::Minimum, {y, cap});
  y = g.addOp(OpKind::Div, {g.addOp(OpKind::Div, {y, divisor}), scalar(g, 4.0)});
  y = g.addOp(OpKind::Mul, {y, y});
  y = g.addOp(OpKind::Add, {y, shift});
  g.addOutput("y", g.addOp(OpKind::Rsqrt, {y}));
  expectOneFusedPrimitive(g, "matmul");
}

TEST(OneDnnFusion, ARowAddedFirstBecomesTheMatmulsOwnBias) {
  // relu(a @ b + bias) with bias [1, 1, 6] along the last dim: oneDNN adds it in the matmul's
  // own epilogue (its bias argument), the relu stays a post-op; a bias added after the relu
  // is a binary post-op.
  ir::Graph g;
  ValueId a = g.addInput("a", f32({3, 4, 5}));
  ValueId b = g.addInput("b", f32({5, 6}));
  ValueId b2 = g.addInput("b2", f32({5, 6}));
  ValueId bias = g.addInput("bias", f32({1, 1, 6}));
  ValueId y = g.addOp(OpKind::Relu, {g.addOp(OpKind::Add, {g.addOp(OpKind::Matmul, {a, b}), bias})});
  g.addOutput("y", y);
  g.addOutput("z", g.addOp(OpKind::Add, {g.addOp(OpKind::Relu, {g.addOp(OpKind::Matmul, {a, b2})}), bias}));
  ir::Graph optimized = cpu::optimizeForCpu(g, /*forThisCpu=*/false);
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  std::vector<std::string> steps;
  for (const auto& out : optimized.outputs()) {
    std::unique_ptr<cpu::OneDnnStep> step = cpu::compileOneDnnNode(optimized, out.value, engine);
    ASSERT_TRUE(step) << out.name;
    std::string what = step->describe();
    steps.push_back(what.substr(0, what.find(' ')));  // without the implementation's name
  }
  EXPECT_EQ(steps, (std::vector<std::string>{"matmul+bias+relu", "matmul+relu+add"}));
  cpu::Executable exe = cpu::compile(g);
  EXPECT_EQ(exe.oneDnnNodeCount(), 2);
  reference::TensorMap feeds = feedsFor(g);
  expectClose(exe.run(feeds), reference::run(g, feeds), "compiled");
}

TEST(OneDnnFusion, GeluAfterAMatmulBecomesOnePostOp) {
  // gelu(a @ b + bias) (erf form, decomposed into five primitives) runs as oneDNN's
  // eltwise_gelu_erf post-op; where the pre-activation is also an output (as a training
  // step keeps it for the gradient) the GELU stays a kernel of its own. The pipeline for
  // this CPU leaves every GELU a kernel of its own where oneDNN's post-op is slow (AVX2,
  // fuse-epilogues-leaving-gelu); the pipeline for another CPU fuses it on any host.
  ir::Graph g;
  ValueId a = g.addInput("a", f32({2, 6, 16}));
  ValueId b = g.addInput("b", f32({16, 32}));
  ValueId b2 = g.addInput("b2", f32({16, 32}));
  ValueId bias = g.addInput("bias", f32({32}));
  ir::Attrs erfForm{{"approximate", int64_t{0}}};
  ValueId pre = g.addOp(OpKind::Add, {g.addOp(OpKind::Matmul, {a, b}), bias});
  g.addOutput("y", g.addOp(OpKind::Gelu, {pre}, erfForm));
  ValueId kept = g.addOp(OpKind::Matmul, {a, b2});
  g.addOutput("kept", kept);
  g.addOutput("z", g.addOp(OpKind::Gelu, {kept}, erfForm));
  ir::Graph optimized = cpu::optimizeForCpu(g, /*forThisCpu=*/false);
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  std::vector<std::string> steps;
  for (const auto& out : optimized.outputs()) {
    const ir::Node& n = optimized.node(out.value);
    if (n.op != OpKind::Fused || ir::AttrReader(n.attrs, n.op).s("kind") != "matmul") continue;
    std::unique_ptr<cpu::OneDnnStep> step = cpu::compileOneDnnNode(optimized, out.value, engine);
    ASSERT_TRUE(step) << out.name;
    std::string what = step->describe();
    steps.push_back(out.name + ": " + what.substr(0, what.find(' ')));
  }
  EXPECT_EQ(steps, (std::vector<std::string>{"y: matmul+bias+gelu"}));
  cpu::Executable exe = cpu::compile(g);
  EXPECT_EQ(exe.oneDnnNodeCount(), 2);
  EXPECT_EQ(exe.stats().generatedKernels, cpu::channelBlocksFit() ? 1 : 2);  // z's GELU (and y's on AVX2)
  reference::TensorMap feeds = feedsFor(g);
  expectClose(exe.run(feeds), reference::run(g, feeds), "compiled");
}

TEST(OneDnnFusion, TransposedMatmulWithMaximumMinimumOfTensors) {
  ir::Graph g;
  ValueId a = g.addInput("a", f32({7, 5}));
  ValueId b = g.addInput("b", f32({6, 7}));
  ValueId lo = g.addInput("lo", f32({5, 6}));
  ValueId hi = g.addInput("hi", f32({}));
  ir::Attrs transposed{{"transpose_lhs", int64_t{1}}, {"transpose_rhs", int64_t{1}}};
  ValueId y = g.addOp(OpKind::Maximum, {lo, g.addOp(OpKind::Matmul, {a, b}, transposed)});
  y = g.addOp(OpKind::Minimum, {y, hi});
  g.addOutput("y", g.addOp(OpKind::Minimum, {y, scalar(g, 0.6)}));
  expectOneFusedPrimitive(g, "matmul");
}

TEST(OneDnnFusion, ConsecutiveLinearOpsFoldIntoOne) {
  // tanh(-(2 * mm + 1 - 0.5)): the four linear post-ops become one.
  ir::Graph g;
  ValueId a = g.addInput("a", f32({5, 7}));
  ValueId b = g.addInput("b", f32({7, 6}));
  ValueId y = g.addOp(OpKind::Mul, {g.addOp(OpKind::Matmul, {a, b}), scalar(g, 2.0)});
  y = g.addOp(OpKind::Sub, {g.addOp(OpKind::Add, {y, scalar(g, 1.0)}), scalar(g, 0.5)});
  g.addOutput("y", g.addOp(OpKind::Tanh, {g.addOp(OpKind::Neg, {y})}));
  expectOneFusedPrimitive(g, "matmul");
}

TEST(OneDnnFusion, ASecondLinearOrClipWithOtherParametersBecomesBinaryPostOps) {
  // 0.25 * mm, tanh, + 0.5: two separate linear post-ops, which oneDNN 2.6 would get wrong
  // (it applies one algorithm's last parameters to all): the second is a binary add of a
  // held constant. Likewise a second clip: max(., -0.5), exp, min(., 1.5).
  ir::Graph g;
  ValueId a = g.addInput("a", f32({5, 7}));
  ValueId b = g.addInput("b", f32({7, 6}));
  ValueId y = g.addOp(OpKind::Tanh, {g.addOp(OpKind::Mul, {g.addOp(OpKind::Matmul, {a, b}), scalar(g, 0.25)})});
  y = g.addOp(OpKind::Add, {y, scalar(g, 0.5)});
  y = g.addOp(OpKind::Exp, {g.addOp(OpKind::Maximum, {y, scalar(g, -0.5)})});
  g.addOutput("y", g.addOp(OpKind::Minimum, {y, scalar(g, 1.5)}));
  expectOneFusedPrimitive(g, "matmul");
}

TEST(OneDnnFusion, OneEltwiseAlgorithmWithTwoParameterSetsFallsBack) {
  // pow(mm, 2), tanh, pow(., 3): two pow post-ops with other exponents have no binary form;
  // the node runs on the interpreter rather than with the wrong exponent.
  ir::Graph g;
  ValueId a = g.addInput("pos_a", f32({5, 7}));
  ValueId b = g.addInput("pos_b", f32({7, 6}));
  ValueId y = g.addOp(OpKind::Tanh, {g.addOp(OpKind::Pow, {g.addOp(OpKind::Matmul, {a, b}), scalar(g, 2.0)})});
  g.addOutput("y", g.addOp(OpKind::Pow, {y, scalar(g, 3.0)}));
  expectOneFusedPrimitive(g, "matmul", /*onednn=*/false);
}

/// `g` compiled, after checking that it computes what the reference interpreter does.
cpu::Executable compiledMatchingTheReference(const ir::Graph& g) {
  cpu::Executable exe = cpu::compile(g);
  reference::TensorMap feeds = feedsFor(g);
  expectClose(exe.run(feeds), reference::run(g, feeds), "compiled");
  return exe;
}

/// conv(x [1, 16, 8, 8], w1 [32, 16, 3, 3]) with padding 1, `epilogue` on its result, then a
/// second conv of the result with `second` weights [O, 32, k, k] (padding k / 2).
ir::Graph convEpilogueThenConv(const std::function<ValueId(ir::Graph&, ValueId)>& epilogue, const ir::Shape& second) {
  ir::Graph g;
  ValueId x = g.addInput("x", f32({1, 16, 8, 8}));
  ValueId w1 = g.addInput("w1", f32({32, 16, 3, 3}));
  ValueId w2 = g.addInput("w2", f32(second));
  ValueId y = epilogue(g, g.addOp(OpKind::Conv, {x, w1}, convAttrs(1, 1, 1)));
  g.addOutput("y", g.addOp(OpKind::Conv, {y, w2}, convAttrs(1, second[2] / 2, 1)));
  return g;
}

TEST(OneDnnFusion, AConvEpilogueWithTwoScalarAddsKeepsItsDataBlocked) {
  if (!cpu::testing::hasAvx512()) GTEST_SKIP() << cpu::testing::kNeedsAvx512;
  // conv, + 0.25, exp, + 1, conv (found by differential fuzzing): the first conv's result
  // and the second's input are stored channel-blocked, which only a oneDNN step reads; the
  // second add used to make the epilogue unparsable, and the compile failed.
  ir::Graph g = convEpilogueThenConv(
      [](ir::Graph& h, ValueId c) {
        ValueId y = h.addOp(OpKind::Exp, {h.addOp(OpKind::Add, {c, scalar(h, 0.25)})});
        return h.addOp(OpKind::Add, {y, scalar(h, 1.0)});
      },
      {2, 32, 1, 1});
  cpu::Executable exe = compiledMatchingTheReference(g);
  EXPECT_EQ(countFused(exe.graph(), "conv"), 1);
  EXPECT_GE(exe.oneDnnNodeCount(), 1);
  EXPECT_GE(exe.stats().blockedValues, 1);
}

TEST(OneDnnFusion, AConvEpilogueNoStepTakesLeavesItsDataUnblocked) {
  // conv, pow 2, tanh, pow 3, conv: two pow post-ops have no oneDNN form, so the fused conv
  // runs on the interpreter, and the values it touches must not be stored channel-blocked.
  ir::Graph g = convEpilogueThenConv(
      [](ir::Graph& h, ValueId c) {
        ValueId y = h.addOp(OpKind::Tanh, {h.addOp(OpKind::Pow, {c, scalar(h, 2.0)})});
        return h.addOp(OpKind::Pow, {y, scalar(h, 3.0)});
      },
      {32, 32, 3, 3});
  EXPECT_EQ(countFused(compiledMatchingTheReference(g).graph(), "conv"), 1);
}

TEST(OneDnnFusion, APerRowAddendStaysOutOfTheMatmul) {
  // A per-row [5, 1] addend has no fast matmul post-op (oneDNN 2.6 runs it only in its
  // reference matmul): the matmul runs alone on oneDNN, add and tanh in a generated kernel.
  ir::Graph g;
  ValueId a = g.addInput("a", f32({5, 7}));
  ValueId b = g.addInput("b", f32({7, 6}));
  ValueId rows = g.addInput("rows", f32({5, 1}));
  g.addOutput("y", g.addOp(OpKind::Tanh, {g.addOp(OpKind::Add, {g.addOp(OpKind::Matmul, {a, b}), rows})}));
  cpu::Executable exe = cpu::compile(g);
  EXPECT_EQ(countFused(exe.graph(), "matmul"), 0);
  EXPECT_EQ(countFused(exe.graph(), "loop"), 1);
  EXPECT_EQ(exe.oneDnnNodeCount(), 1);
  EXPECT_EQ(exe.stats().referenceKernels, 0);
  reference::TensorMap feeds = feedsFor(g);
  expectClose(exe.run(feeds), reference::run(g, feeds), "compiled");
}

// Attention's head merge and split fold into the matmuls (fold-matmul-transposes): one
// oneDNN step reads v through strides and writes the merged heads [B, T, H, D] directly.
TEST(OneDnnFusion, HeadTransposesFoldIntoTheMatmul) {
  ir::Graph g;
  ValueId p = g.addInput("p", f32({2, 3, 7, 7}));
  ValueId v = g.addInput("v", f32({2, 7, 3, 8}));
  ValueId heads = g.addOp(OpKind::Transpose, {v}, {{"perm", std::vector<int64_t>{0, 2, 1, 3}}});
  ValueId o = g.addOp(OpKind::Matmul, {p, heads});
  ValueId merged = g.addOp(OpKind::Transpose, {o}, {{"perm", std::vector<int64_t>{0, 2, 1, 3}}});
  g.addOutput("y", g.addOp(OpKind::Reshape, {merged}, {{"shape", std::vector<int64_t>{2, 7, 24}}}));
  expectOneFusedPrimitive(g, "matmul");
}

// A folded operand under transpose_lhs (a weight-gradient-like product of the split heads).
TEST(OneDnnFusion, TransposedOperandOfATransposedMatmulFolds) {
  ir::Graph g;
  ValueId x = g.addInput("x", f32({2, 5, 3, 4}));
  ValueId dy = g.addInput("dy", f32({2, 3, 5, 6}));
  ValueId heads = g.addOp(OpKind::Transpose, {x}, {{"perm", std::vector<int64_t>{0, 2, 1, 3}}});
  g.addOutput("dw", g.addOp(OpKind::Matmul, {heads, dy}, {{"transpose_lhs", int64_t{1}}}));
  expectOneFusedPrimitive(g, "matmul");
}

// Operands read through a batch slice and a reshape fold into one oneDNN step (the slice
// binds its part of the stored buffer at an offset); the scaled scores of split heads, a
// matmul fused with its epilogue, read both heads through their transposes.
TEST(OneDnnFusion, BatchSlicesAndScaledHeadScoresReadTheirOperandsInPlace) {
  ir::Graph g;
  ValueId x = g.addInput("x", f32({4, 6, 8}));
  ValueId w = g.addInput("w", f32({8, 5}));
  ValueId lower = g.addOp(OpKind::Slice, {x}, {{"start", std::vector<int64_t>{2, 0, 0}},
                                               {"limit", std::vector<int64_t>{4, 6, 8}},
                                               {"stride", std::vector<int64_t>{1, 1, 1}}});
  ValueId rows = g.addOp(OpKind::Reshape, {lower}, {{"shape", std::vector<int64_t>{12, 8}}});
  g.addOutput("y", g.addOp(OpKind::Matmul, {rows, w}));
  expectOneFusedPrimitive(g, "matmul");
  EXPECT_EQ(countFused(cpu::compile(g).graph(), "loop"), 0);  // no copy of the slice

  ir::Graph h;
  ValueId q = h.addInput("q", f32({2, 7, 3, 8})), k = h.addInput("k", f32({2, 7, 3, 8}));
  auto heads = [&h](ValueId t) { return h.addOp(OpKind::Transpose, {t}, {{"perm", std::vector<int64_t>{0, 2, 1, 3}}}); };
  ValueId scores = h.addOp(OpKind::Matmul, {heads(q), heads(k)}, {{"transpose_rhs", int64_t{1}}});
  auto scale = std::make_shared<ir::TensorData>(f32({}));
  scale->set(0, 0.25);
  h.addOutput("s", h.addOp(OpKind::Mul, {scores, h.addConstant(scale)}));
  expectOneFusedPrimitive(h, "matmul");
}

// Every other row of a weight (realnvp's half of the inputs a coupling reads) is a weight
// whose rows lie apart: the matmul reads it in place, as an input and as constant weights
// oneDNN holds in its own layout; read transposed (the data gradient) it is copied first.
TEST(OneDnnFusion, EveryOtherRowOfAWeightIsReadInPlaceUntransposed) {
  for (const bool constant : {false, true}) {
    SCOPED_TRACE(constant ? "constant weights" : "weights as an input");
    ir::Graph g;
    ValueId x = g.addInput("x", f32({6, 8}));
    const ir::Attrs init{{"init", std::string("normal")}, {"scale", 0.3}, {"seed", int64_t{3}}};
    ValueId w = constant ? g.addParam("w", f32({16, 5}), init) : g.addInput("w", f32({16, 5}));
    ValueId even = g.addOp(OpKind::Slice, {w}, {{"start", std::vector<int64_t>{0, 0}},
                                                {"limit", std::vector<int64_t>{16, 5}},
                                                {"stride", std::vector<int64_t>{2, 1}}});
    g.addOutput("y", g.addOp(OpKind::Matmul, {x, even}));
    expectOneFusedPrimitive(g, "matmul");
    EXPECT_EQ(countFused(cpu::compile(g).graph(), "loop"), 0);  // no copy of the rows
  }
  ir::Graph g;
  ValueId dy = g.addInput("dy", f32({6, 5}));
  ValueId even = g.addOp(OpKind::Slice, {g.addInput("w", f32({16, 5}))}, {{"start", std::vector<int64_t>{0, 0}},
                                                                           {"limit", std::vector<int64_t>{16, 5}},
                                                                           {"stride", std::vector<int64_t>{2, 1}}});
  g.addOutput("dx", g.addOp(OpKind::Matmul, {dy, even}, {{"transpose_rhs", int64_t{1}}}));
  cpu::Executable exe = cpu::compile(g);
  EXPECT_EQ(countFused(exe.graph(), "matmul"), 0);
  reference::TensorMap feeds = feedsFor(g);
  expectClose(exe.run(feeds), reference::run(g, feeds), "compiled");
}

TEST(OneDnnFusion, ConstantWeightsOfABatchedMatmulAreHeldWithItsRowsStacked) {
  // relu(x w + bias + r) over a batch of row-major x runs as one 2-D matmul of the stacked
  // rows, whose constant weights brgemm holds in its blocked panels; x w2 scaled by s, which
  // broadcasts over the rows of each batch member only, stays batched and holds nothing.
  // (AVX-512 as oneDNN sees it: DNNL_MAX_CPU_ISA=AVX2 turns brgemm off on any CPU.)
  if (!cpu::channelBlocksFit()) GTEST_SKIP() << "oneDNN 2.6's brgemm matmul needs AVX-512";
  ir::Graph g;
  const ir::Attrs init{{"init", std::string("normal")}, {"scale", 0.2}, {"seed", int64_t{5}}};
  ValueId x = g.addInput("x", f32({4, 24, 32}));
  ValueId w = g.addParam("w", f32({32, 128}), init);
  ValueId w2 = g.addParam("w2", f32({32, 128}), init);
  ValueId bias = g.addInput("bias", f32({128}));
  ValueId r = g.addInput("r", f32({4, 24, 128}));
  ValueId s = g.addInput("s", f32({4, 1, 128}));
  ValueId sum = g.addOp(OpKind::Add, {g.addOp(OpKind::Add, {g.addOp(OpKind::Matmul, {x, w}), bias}), r});
  g.addOutput("y", g.addOp(OpKind::Relu, {sum}));
  g.addOutput("z", g.addOp(OpKind::Mul, {g.addOp(OpKind::Matmul, {x, w2}), s}));
  ir::Graph optimized = cpu::optimizeForCpu(g);
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  std::vector<bool> held;
  for (const auto& out : optimized.outputs()) {
    cpu::StepLayouts layouts;
    layouts.constantOperands = cpu::constantOperandsOf(optimized, out.value);
    std::unique_ptr<cpu::OneDnnStep> step = cpu::compileOneDnnNode(optimized, out.value, engine, layouts);
    ASSERT_TRUE(step) << out.name;
    held.push_back(step->heldBytes() > 0);
  }
  EXPECT_EQ(held, (std::vector<bool>{true, false}));
  cpu::Executable exe = cpu::compile(g);
  EXPECT_EQ(exe.oneDnnNodeCount(), 2);
  reference::TensorMap feeds = feedsFor(g);
  reference::TensorMap withState = feeds;
  for (const auto& [name, t] : exe.state()) withState[name] = t;
  expectClose(exe.run(feeds), reference::run(g, withState), "compiled");
}
