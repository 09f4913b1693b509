// fuse-epilogues: which chains after a matmul or conv become one `fused` node, what the node
// and its body hold, and that the fused graph computes what the original did (reference
// interpreter, which runs a fused node's body).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "backends/reference/interpreter.h"
#include "ir/verifier.h"
#include "passes/builtin_passes.h"
#include "passes/pass_manager.h"

using namespace weft;

namespace {

using ir::OpKind;
using ir::ValueId;

ir::TensorType f32(ir::Shape shape) { return {ir::DType::f32, std::move(shape)}; }

ValueId scalar(ir::Graph& g, double value) {
  auto t = std::make_shared<ir::TensorData>(f32({}));
  t->set(0, value);
  return g.addConstant(t);
}

/// The nodes of op `op` in `g`.
std::vector<const ir::Node*> nodesOf(const ir::Graph& g, OpKind op) {
  std::vector<const ir::Node*> r;
  for (const ir::Node& n : g.nodes())
    if (n.op == op) r.push_back(&n);
  return r;
}

/// The ops of a body, by name, skipping inputs and constants.
std::vector<std::string> bodyOps(const ir::Graph& body) {
  std::vector<std::string> ops;
  for (const ir::Node& n : body.nodes())
    if (n.op != OpKind::Input && n.op != OpKind::Constant) ops.emplace_back(ir::opName(n.op));
  return ops;
}

/// Deterministic feeds: floats 0.3 + 0.6 sin(1.3 i + salt).
reference::TensorMap feedsFor(const ir::Graph& g) {
  reference::TensorMap feeds;
  int salt = 0;
  for (ValueId v : g.inputs()) {
    ir::TensorData t(g.type(v));
    for (int64_t i = 0; i < t.numel(); ++i) t.set(i, 0.3 + 0.6 * std::sin(1.3 * double(i) + salt));
    feeds[g.node(v).name] = t;
    ++salt;
  }
  return feeds;
}

/// Runs `pipeline` on a copy of `g`, verifies it, and checks it computes what `g` does.
ir::Graph fuseAndCompare(const ir::Graph& g, const std::string& pipeline = "fuse-epilogues") {
  ir::Graph fused = g;
  passes::PassManager(pipeline).run(fused);
  ir::verify(fused);
  reference::TensorMap feeds = feedsFor(g);
  reference::TensorMap want = reference::run(g, feeds), got = reference::run(fused, feeds);
  EXPECT_EQ(want.size(), got.size());
  for (const auto& [name, w] : want) {
    const ir::TensorData& x = got.at(name);
    EXPECT_EQ(x.type, w.type) << name;
    for (int64_t i = 0; i < w.numel(); ++i)
      EXPECT_NEAR(x.get(i), w.get(i), 1e-6 * std::max(1.0, std::fabs(w.get(i)))) << name << "[" << i << "]";
  }
  return fused;
}

ir::Attrs convAttrs() {
  return {{"stride", std::vector<int64_t>{1, 1}},
          {"padding", std::vector<int64_t>{1, 1}},
          {"dilation", std::vector<int64_t>{1, 1}},
          {"groups", int64_t{1}}};
}

}  // namespace

TEST(FuseEpilogues, IsRegistered) { EXPECT_NE(passes::findPass("fuse-epilogues"), nullptr); }

TEST(FuseEpilogues, MatmulBiasReluBecomesOneFusedNode) {
  ir::Graph g("mlp");
  ValueId x = g.addInput("x", f32({4, 16}));
  ValueId w = g.addInput("w", f32({16, 12}));
  ValueId b = g.addInput("b", f32({12}));
  ValueId h = g.addOp(OpKind::Relu, {g.addOp(OpKind::Add, {g.addOp(OpKind::Matmul, {x, w}), b})});
  g.addOutput("h", h);
  ir::Graph fused = fuseAndCompare(g, "decompose-composites,canonicalize,cse,dce,fuse-epilogues,dce");
  auto nodes = nodesOf(fused, OpKind::Fused);
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(nodesOf(fused, OpKind::Matmul).size(), 0u);
  EXPECT_EQ(nodesOf(fused, OpKind::Add).size(), 0u);
  EXPECT_EQ(nodesOf(fused, OpKind::Maximum).size(), 0u);
  EXPECT_EQ(nodesOf(fused, OpKind::Constant).size(), 0u);  // relu's zero moved into the body
  const ir::Node& node = *nodes[0];
  EXPECT_EQ(ir::AttrReader(node.attrs, node.op).s("kind"), "matmul");
  EXPECT_EQ(node.operands, (std::vector<ValueId>{*fused.find("x"), *fused.find("w"), *fused.find("b")}));
  EXPECT_EQ(bodyOps(*node.body), (std::vector<std::string>{"matmul", "add", "maximum"}));
  EXPECT_EQ(fused.size(), 4);  // x, w, b, fused
}

TEST(FuseEpilogues, AValueWithSeveralUsersEndsTheChain) {
  // conv -> add bias -> relu, where the pre-activation is also an output: conv+add fuse,
  // relu stays outside and reads the fused node.
  ir::Graph g("conv");
  ValueId x = g.addInput("x", f32({2, 3, 5, 5}));
  ValueId w = g.addInput("w", f32({4, 3, 3, 3}));
  ValueId b = g.addInput("b", f32({4, 1, 1}));
  ValueId pre = g.addOp(OpKind::Add, {g.addOp(OpKind::Conv, {x, w}, convAttrs()), b}, {}, "pre");
  g.addOutput("pre", pre);
  g.addOutput("act", g.addOp(OpKind::Maximum, {pre, scalar(g, 0)}));
  ir::Graph fused = fuseAndCompare(g);
  auto nodes = nodesOf(fused, OpKind::Fused);
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(ir::AttrReader(nodes[0]->attrs, nodes[0]->op).s("kind"), "conv");
  EXPECT_EQ(nodes[0]->name, "pre");  // the fused node takes the chain end's name
  EXPECT_EQ(bodyOps(*nodes[0]->body), (std::vector<std::string>{"conv", "add"}));
  EXPECT_EQ(nodesOf(fused, OpKind::Maximum).size(), 1u);
}

TEST(FuseEpilogues, AContractionWithSeveralUsersIsNotFused) {
  ir::Graph g;
  ValueId x = g.addInput("x", f32({3, 3}));
  ValueId m = g.addOp(OpKind::Matmul, {x, x});
  g.addOutput("a", g.addOp(OpKind::Tanh, {m}));
  g.addOutput("b", g.addOp(OpKind::Exp, {m}));
  ir::Graph fused = g;
  EXPECT_FALSE(passes::fuseEpilogues(fused));
  EXPECT_EQ(fused.size(), g.size());
}

TEST(FuseEpilogues, AContractionThatIsAnOutputIsNotFused) {
  ir::Graph g;
  ValueId x = g.addInput("x", f32({3, 3}));
  ValueId m = g.addOp(OpKind::Matmul, {x, x});
  g.addOutput("m", m);
  g.addOutput("t", g.addOp(OpKind::Tanh, {m}));
  ir::Graph fused = g;
  EXPECT_FALSE(passes::fuseEpilogues(fused));
}

TEST(FuseEpilogues, LongChainWithResidualScalarsAndActivations) {
  // tanh(sigmoid(0.5 * conv(x, w) + x) - 0.25) * s, then exp: all absorbed.
  ir::Graph g;
  ValueId x = g.addInput("x", f32({2, 3, 4, 4}));
  ValueId w = g.addInput("w", f32({3, 3, 3, 3}));
  ValueId s = g.addInput("s", f32({1, 3, 1, 1}));
  ValueId y = g.addOp(OpKind::Conv, {x, w}, convAttrs());
  y = g.addOp(OpKind::Mul, {scalar(g, 0.5), y});
  y = g.addOp(OpKind::Add, {y, x});
  y = g.addOp(OpKind::Sigmoid, {y});
  y = g.addOp(OpKind::Sub, {y, scalar(g, 0.25)});
  y = g.addOp(OpKind::Tanh, {y});
  y = g.addOp(OpKind::Mul, {y, s});
  y = g.addOp(OpKind::Exp, {y});
  g.addOutput("y", y);
  ir::Graph fused = fuseAndCompare(g, "fuse-epilogues,dce");
  auto nodes = nodesOf(fused, OpKind::Fused);
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(bodyOps(*nodes[0]->body),
            (std::vector<std::string>{"conv", "mul", "add", "sigmoid", "sub", "tanh", "mul", "exp"}));
  // x is both the conv's input and the residual: one operand each for x, w and s.
  EXPECT_EQ(nodes[0]->operands.size(), 3u);
  EXPECT_EQ(fused.size(), 4);
}

TEST(FuseEpilogues, ChainStopsAtOpsWithoutPostOpForm) {
  // sub(t, mm) is absorbed (negate, add t); div(t, .) with the chain as divisor is not.
  ir::Graph g;
  ValueId a = g.addInput("a", f32({2, 3}));
  ValueId b = g.addInput("b", f32({3, 4}));
  ValueId t = g.addInput("t", f32({2, 4}));
  ValueId y = g.addOp(OpKind::Sub, {t, g.addOp(OpKind::Matmul, {a, b})});
  y = g.addOp(OpKind::Div, {t, y});
  g.addOutput("y", y);
  ir::Graph fused = fuseAndCompare(g);
  auto nodes = nodesOf(fused, OpKind::Fused);
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(bodyOps(*nodes[0]->body), (std::vector<std::string>{"matmul", "sub"}));
  EXPECT_EQ(nodesOf(fused, OpKind::Div).size(), 1u);
}

TEST(FuseEpilogues, ABroadcastingResultEndsTheChain) {
  // add(mm [1, 4], t [3, 4]) has a larger shape than the matmul: not an epilogue.
  ir::Graph g;
  ValueId a = g.addInput("a", f32({1, 3}));
  ValueId b = g.addInput("b", f32({3, 4}));
  ValueId t = g.addInput("t", f32({3, 4}));
  g.addOutput("y", g.addOp(OpKind::Add, {g.addOp(OpKind::Matmul, {a, b}), t}));
  ir::Graph fused = g;
  EXPECT_FALSE(passes::fuseEpilogues(fused));
}

TEST(FuseEpilogues, APerRowOperandEndsAMatmulChain) {
  // div(mm [2, 4, 5], s [2, 4, 1]) (attention's softmax backward): oneDNN runs such a binary
  // post-op only in its reference matmul, so the div stays out; a [5] bias add still fuses.
  ir::Graph g;
  ValueId a = g.addInput("a", f32({2, 4, 3}));
  ValueId b = g.addInput("b", f32({2, 3, 5}));
  ValueId s = g.addInput("s", f32({2, 4, 1}));
  ValueId bias = g.addInput("bias", f32({5}));
  ValueId mm = g.addOp(OpKind::Matmul, {a, b});
  g.addOutput("y", g.addOp(OpKind::Div, {g.addOp(OpKind::Add, {mm, bias}), s}));
  ir::Graph fused = fuseAndCompare(g);
  auto nodes = nodesOf(fused, OpKind::Fused);
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(bodyOps(*nodes[0]->body), (std::vector<std::string>{"matmul", "add"}));
  EXPECT_EQ(nodesOf(fused, OpKind::Div).size(), 1u);
}

TEST(FuseEpilogues, TwoContractionsMeetingInOneAdd) {
  // add(mm1, mm2): the first chain takes the add; the second matmul becomes its operand.
  ir::Graph g;
  ValueId a = g.addInput("a", f32({2, 3}));
  ValueId b = g.addInput("b", f32({3, 2}));
  ValueId m1 = g.addOp(OpKind::Matmul, {a, b});
  ValueId m2 = g.addOp(OpKind::Matmul, {b, a}, {{"transpose_lhs", int64_t{1}}, {"transpose_rhs", int64_t{1}}});
  g.addOutput("y", g.addOp(OpKind::Sqrt, {g.addOp(OpKind::Abs, {g.addOp(OpKind::Add, {m1, m2})})}));
  ir::Graph fused = fuseAndCompare(g);
  auto nodes = nodesOf(fused, OpKind::Fused);
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(bodyOps(*nodes[0]->body), (std::vector<std::string>{"matmul", "add", "abs", "sqrt"}));
  EXPECT_EQ(nodesOf(fused, OpKind::Matmul).size(), 1u);
}

TEST(FuseEpilogues, LeavesOtherDtypesAlone) {
  ir::Graph g;
  ValueId x = g.addInput("x", {ir::DType::f64, {2, 2}});
  g.addOutput("y", g.addOp(OpKind::Tanh, {g.addOp(OpKind::Matmul, {x, x})}));
  ir::Graph fused = g;
  EXPECT_FALSE(passes::fuseEpilogues(fused));
}

TEST(FuseEpilogues, LargeConstantsStayOperands) {
  // A [1, 20] bias constant (over the inlining limit) is an operand; a scalar is copied in.
  ir::Graph g;
  ValueId x = g.addInput("x", f32({2, 5}));
  ValueId w = g.addInput("w", f32({5, 20}));
  auto bias = std::make_shared<ir::TensorData>(f32({1, 20}));
  for (int i = 0; i < 20; ++i) bias->set(i, 0.1 * i - 1);
  ValueId y = g.addOp(OpKind::Add, {g.addOp(OpKind::Matmul, {x, w}), g.addConstant(bias)});
  g.addOutput("y", g.addOp(OpKind::Minimum, {y, scalar(g, 0.5)}));
  ir::Graph fused = fuseAndCompare(g, "fuse-epilogues,dce");
  auto nodes = nodesOf(fused, OpKind::Fused);
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(nodes[0]->operands.size(), 3u);
  EXPECT_EQ(fused.node(nodes[0]->operands[2]).op, OpKind::Constant);
  EXPECT_EQ(nodesOf(fused, OpKind::Constant).size(), 1u);  // the scalar only lives in the body now
}
