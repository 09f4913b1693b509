// Tests of the model DSL: types, broadcasting, reshape, source-located errors, layers, seeds.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "frontend/weft.h"
#include "ir/error.h"
#include "ir/verifier.h"

using namespace weft;
using ir::OpKind;

namespace {

const std::string kThisFile = "tests/unit/frontend/frontend_test.cpp";

/// The message of the weft::Error that `fn` throws ("" when it throws none).
template <class F>
std::string errorOf(F&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

const ir::Node& nodeOf(const Tensor& t) { return t.builder().graph().node(t.id()); }

int64_t intAttr(const ir::Node& n, const std::string& name) { return std::get<int64_t>(n.attrs.at(name)); }
double floatAttr(const ir::Node& n, const std::string& name) { return std::get<double>(n.attrs.at(name)); }
const std::vector<int64_t>& intsAttr(const ir::Node& n, const std::string& name) {
  return std::get<std::vector<int64_t>>(n.attrs.at(name));
}

}  // namespace

TEST(Builder, BuildsAVerifiedGraphWithExpectedTypes) {
  GraphBuilder b("t");
  BuildScope scope(b);
  Tensor x = input("x", {4, 8});
  Tensor y = input("y", {4}, DType::i32);
  Tensor w = param("w", {8, 3}, init::zeros());
  Tensor logits = matmul(x, w);
  Tensor loss = cross_entropy(logits, y);
  output("logits", logits);
  output("loss", loss);
  EXPECT_EQ(logits.typeStr(), "f32[4,3]");
  EXPECT_EQ(loss.typeStr(), "f32[]");
  EXPECT_EQ(y.dtype(), DType::i32);
  ir::Graph g = b.finish();
  EXPECT_TRUE(ir::verifyErrors(g).empty());
  ASSERT_EQ(g.outputs().size(), 2u);
  EXPECT_EQ(g.outputs()[0].name, "logits");
  EXPECT_EQ(g.outputs()[1].name, "loss");
  // Unnamed output nodes take the output's name; inputs and params keep theirs.
  EXPECT_EQ(g.node(*g.findOutput("loss")).name, "loss");
  EXPECT_EQ(g.node(*g.findOutput("loss")).op, OpKind::CrossEntropy);
  EXPECT_EQ(g.inputs().size(), 2u);
  EXPECT_EQ(g.params().size(), 1u);
}

TEST(Builder, FloatTypeAppliesToInputsParamsAndScalars) {
  GraphBuilder b("t", 0, DType::f64);
  BuildScope scope(b);
  Tensor x = input("x", {2});
  Tensor w = param("w", {2}, init::ones());
  Tensor y = x * w + 1.5;
  EXPECT_EQ(y.typeStr(), "f64[2]");
  const ir::Node& c = b.graph().node(b.graph().node(y.id()).operands[1]);
  ASSERT_EQ(c.op, OpKind::Constant);
  EXPECT_EQ(std::get<ir::TensorDataPtr>(c.attrs.at("value"))->get(0), 1.5);
}

TEST(Builder, NoScopeIsAnErrorAtTheCall) {
  int line = __LINE__ + 1;
  std::string msg = errorOf([] { input("x", {2}); });
  EXPECT_NE(msg.find(kThisFile + ":" + std::to_string(line) + ": no graph is being built"), std::string::npos) << msg;
}

TEST(Builder, DuplicateNamesAreRejected) {
  GraphBuilder b("t");
  BuildScope scope(b);
  input("x", {2});
  param("w", {2}, init::zeros());
  EXPECT_NE(errorOf([] { input("x", {3}); }).find("input name 'x' is already used"), std::string::npos);
  int line = __LINE__ + 1;
  std::string msg = errorOf([] { param("w", {3}, init::zeros()); });
  EXPECT_EQ(msg, kThisFile + ":" + std::to_string(line) + ": parameter name 'w' is already used in graph @t");
  Tensor x = input("z", {2});
  output("out", x);
  EXPECT_NE(errorOf([&] { output("out", x); }).find("output 'out' is defined twice"), std::string::npos);
}

TEST(Operators, ScalarsBecomeRankZeroConstantsOfTheTensorDtype) {
  GraphBuilder b("t");
  BuildScope scope(b);
  Tensor x = input("x", {3});
  Tensor y = 2.0 - x;  // sub(const 2, x): operand order kept
  const ir::Node& n = nodeOf(y);
  EXPECT_EQ(n.op, OpKind::Sub);
  const ir::Node& c = b.graph().node(n.operands[0]);
  EXPECT_EQ(c.op, OpKind::Constant);
  EXPECT_EQ(c.type.str(), "f32[]");
  EXPECT_EQ(n.operands[1], x.id());
  // Equal scalars share one constant node.
  Tensor z = x * 2;
  EXPECT_EQ(nodeOf(z).operands[1], n.operands[0]);
  // Integer tensors take integral scalars only.
  Tensor i = input("i", {3}, DType::i32);
  EXPECT_EQ((i + 1).typeStr(), "i32[3]");
  EXPECT_NE(errorOf([&] { (void)(i * 0.5); }).find("cannot be used with a i32 tensor"), std::string::npos);
}

TEST(Operators, BroadcastFollowsNumpy) {
  GraphBuilder b("t");
  BuildScope scope(b);
  Tensor a = input("a", {4, 1, 3});
  Tensor c = input("c", {5, 1});
  EXPECT_EQ((a + c).typeStr(), "f32[4,5,3]");
  EXPECT_EQ((a * c - a / c).typeStr(), "f32[4,5,3]");
  EXPECT_EQ((-a).typeStr(), "f32[4,1,3]");
  EXPECT_EQ(nodeOf(-a).op, OpKind::Neg);
  Tensor cmp = a < c;
  EXPECT_EQ(cmp.typeStr(), "bool[4,5,3]");
  EXPECT_EQ(nodeOf(a >= 0.0).op, OpKind::Ge);
  EXPECT_EQ(nodeOf(eq(a, c)).op, OpKind::Eq);
  EXPECT_EQ((cmp & !cmp).typeStr(), "bool[4,5,3]");
  EXPECT_EQ(where(cmp, a, 0.0).typeStr(), "f32[4,5,3]");
  Tensor acc = a;
  acc += 1.0;
  EXPECT_EQ(nodeOf(acc).op, OpKind::Add);
  EXPECT_EQ(broadcast_to(c, {2, 5, 7}).typeStr(), "f32[2,5,7]");
  EXPECT_TRUE(ir::verifyErrors(b.graph()).empty());
}

TEST(Errors, ShapeErrorNamesOpTypesAndModelLine) {
  GraphBuilder b("t");
  BuildScope scope(b);
  Tensor a = input("a", {2, 3});
  Tensor c = input("c", {4});
  int line = 0;
  try {
    line = __LINE__ + 1;
    (void)(a + c);
    FAIL() << "expected a shape error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              kThisFile + ":" + std::to_string(line) + ": add(f32[2,3], f32[4]): operand shapes do not broadcast");
  }
  try {
    line = __LINE__ + 1;
    matmul(a, a);
    FAIL() << "expected a shape error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("matmul(f32[2,3], f32[2,3])"), std::string::npos) << msg;
    EXPECT_NE(msg.find("frontend_test.cpp:" + std::to_string(line) + ":"), std::string::npos) << msg;
  }
  line = __LINE__ + 1;
  std::string msg = errorOf([&] { sum(a, 2); });
  EXPECT_EQ(msg, kThisFile + ":" + std::to_string(line) + ": reduce_sum(f32[2,3]): axis 2 is out of range for rank 2");
}

TEST(Errors, NodesRecordTheirSourceLine) {
  GraphBuilder b("t");
  BuildScope scope(b);
  int line = __LINE__ + 1;
  Tensor x = input("x", {2});
  Tensor y = exp(x);
  EXPECT_EQ(nodeOf(x).loc, kThisFile + ":" + std::to_string(line));
  EXPECT_EQ(nodeOf(y).loc, kThisFile + ":" + std::to_string(line + 1));
}

TEST(Shapes, ReshapeInfersOneExtent) {
  GraphBuilder b("t");
  BuildScope scope(b);
  Tensor x = input("x", {2, 3, 4});
  EXPECT_EQ(reshape(x, {-1, 4}).typeStr(), "f32[6,4]");
  EXPECT_EQ(reshape(x, {2, -1}).typeStr(), "f32[2,12]");
  EXPECT_EQ(intsAttr(nodeOf(reshape(x, {-1})), "shape"), (std::vector<int64_t>{24}));
  EXPECT_NE(errorOf([&] { reshape(x, {-1, -1}); }).find("reshape(f32[2,3,4]): target shape [-1,-1] has more than one -1"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { reshape(x, {5, -1}); }).find("cannot reshape 24 elements to [5,-1]"), std::string::npos);
  EXPECT_NE(errorOf([&] { reshape(x, {5, 5}); }).find("cannot reshape 24 elements"), std::string::npos);
  EXPECT_EQ(flatten(x).typeStr(), "f32[2,12]");
  EXPECT_EQ(flatten(x, 0).typeStr(), "f32[24]");
  EXPECT_EQ(unsqueeze(x, -1).typeStr(), "f32[2,3,4,1]");
  EXPECT_EQ(squeeze(unsqueeze(x, 0), 0).typeStr(), "f32[2,3,4]");
}

TEST(Shapes, NegativeAxesAreNormalized) {
  GraphBuilder b("t");
  BuildScope scope(b);
  Tensor x = input("x", {2, 3, 4});
  Tensor s = sum(x, -1);
  EXPECT_EQ(s.typeStr(), "f32[2,3]");
  EXPECT_EQ(intsAttr(nodeOf(s), "axes"), (std::vector<int64_t>{2}));
  EXPECT_EQ(mean(x, {0, -1}, true).typeStr(), "f32[1,3,1]");
  EXPECT_EQ(sum(x).typeStr(), "f32[]");
  EXPECT_EQ(intsAttr(nodeOf(max(x)), "axes"), (std::vector<int64_t>{0, 1, 2}));
  Tensor am = argmax(x);
  EXPECT_EQ(am.typeStr(), "i64[2,3]");
  EXPECT_EQ(intAttr(nodeOf(am), "axis"), 2);
  EXPECT_EQ(intAttr(nodeOf(softmax(x)), "axis"), 2);
  EXPECT_EQ(intAttr(nodeOf(log_softmax(x, -2)), "axis"), 1);
  EXPECT_EQ(logsumexp(x, 1).typeStr(), "f32[2,4]");
  Tensor t = transpose(x, -1, 0);
  EXPECT_EQ(t.typeStr(), "f32[4,3,2]");
  EXPECT_EQ(intsAttr(nodeOf(t), "perm"), (std::vector<int64_t>{2, 1, 0}));
  EXPECT_EQ(permute(x, {1, -1, 0}).typeStr(), "f32[3,4,2]");
}

TEST(Shapes, SliceSplitConcatPadGather) {
  GraphBuilder b("t");
  BuildScope scope(b);
  Tensor x = input("x", {2, 10});
  Tensor s = slice(x, 1, -4, 100);  // Python rules: [6:10]
  EXPECT_EQ(s.typeStr(), "f32[2,4]");
  EXPECT_EQ(intsAttr(nodeOf(s), "start"), (std::vector<int64_t>{0, 6}));
  EXPECT_EQ(slice(x, -1, 1, 10, 3).typeStr(), "f32[2,3]");
  auto parts = split(x, 4, 1);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[2].typeStr(), "f32[2,2]");
  EXPECT_EQ(intsAttr(nodeOf(parts[2]), "start"), (std::vector<int64_t>{0, 8}));
  auto halves = chunk(x, 2, -1);
  EXPECT_EQ(halves[1].typeStr(), "f32[2,5]");
  EXPECT_EQ(concat({halves[1], x}, -1).typeStr(), "f32[2,15]");
  EXPECT_NE(errorOf([&] { split(x, std::vector<int64_t>{3, 3}, 1); }).find("add up to 6"), std::string::npos);
  EXPECT_EQ(pad(x, {0, 1}, {1, 2}).typeStr(), "f32[3,13]");
  Tensor idx = input("idx", {3, 2}, DType::i32);
  EXPECT_EQ(gather(x, idx, -1).typeStr(), "f32[2,3,2]");
  Tensor upd = input("upd", {2, 3, 2});
  EXPECT_EQ(scatter_add(x, idx, upd, 1).typeStr(), "f32[2,10]");
  EXPECT_EQ(strided_slice(x, {0, 0}, {2, 10}, {1, 5}).typeStr(), "f32[2,2]");
}

TEST(Functional, ConvPoolAttentionShapes) {
  GraphBuilder b("t");
  BuildScope scope(b);
  Tensor x = input("x", {2, 3, 8, 8});
  Tensor w = param("w", {6, 3, 3, 3}, init::zeros());
  EXPECT_EQ(conv2d(x, w).typeStr(), "f32[2,6,6,6]");
  Tensor strided = conv2d(x, w, {.stride = 2, .padding = 1});
  EXPECT_EQ(strided.typeStr(), "f32[2,6,4,4]");
  EXPECT_EQ(intsAttr(nodeOf(strided), "padding"), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(max_pool2d(x, 2).typeStr(), "f32[2,3,4,4]");
  EXPECT_EQ(intsAttr(nodeOf(max_pool2d(x, 2)), "stride"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(avg_pool2d(x, 3, 1, 1).typeStr(), "f32[2,3,8,8]");
  Tensor wt = param("wt", {3, 4, 4, 4}, init::zeros());
  EXPECT_EQ(conv_transpose2d(x, wt, {.stride = 2, .padding = 1}).typeStr(), "f32[2,4,16,16]");
  Tensor q = input("q", {2, 4, 5, 16});
  Tensor att = attention(q, q, q, true);
  EXPECT_EQ(att.typeStr(), "f32[2,4,5,16]");
  EXPECT_DOUBLE_EQ(floatAttr(nodeOf(att), "scale"), 0.25);
  EXPECT_EQ(intAttr(nodeOf(att), "causal"), 1);
  EXPECT_EQ(intAttr(nodeOf(gelu(q)), "approximate"), 0);
  EXPECT_EQ(mse_loss(q, q, Reduction::none).typeStr(), "f32[2,4,5,16]");
  EXPECT_EQ(std::get<std::string>(nodeOf(bce_with_logits(q, q, Reduction::sum)).attrs.at("reduce")), "sum");
  EXPECT_NE(errorOf([&] { conv2d(q, w); }).find("conv(f32[2,4,5,16], f32[6,3,3,3]): weight expects 3 input channels"),
            std::string::npos);
  EXPECT_TRUE(ir::verifyErrors(b.graph()).empty());
}

TEST(Params, InitAttrsAndDerivedSeeds) {
  GraphBuilder b("t", 7);
  BuildScope scope(b);
  Tensor u = param("u", {3, 4}, init::xavier_uniform(3, 4));
  Tensor n = param("n", {3}, init::kaiming_normal(8));
  Tensor z = param("z", {3}, init::zeros());
  EXPECT_EQ(std::get<std::string>(nodeOf(u).attrs.at("init")), "uniform");
  EXPECT_DOUBLE_EQ(floatAttr(nodeOf(u), "scale"), std::sqrt(6.0 / 7.0));
  EXPECT_EQ(std::get<std::string>(nodeOf(n).attrs.at("init")), "normal");
  EXPECT_DOUBLE_EQ(floatAttr(nodeOf(n), "scale"), 0.5);
  EXPECT_DOUBLE_EQ(init::kaiming_uniform(16, std::sqrt(5.0)).scale, 0.25);
  EXPECT_EQ(nodeOf(z).attrs.count("seed"), 0u);
  EXPECT_NE(intAttr(nodeOf(u), "seed"), intAttr(nodeOf(n), "seed"));
  EXPECT_EQ(intAttr(nodeOf(u), "seed"), b.paramSeed("u"));
  GraphBuilder other("t", 8);
  EXPECT_NE(other.paramSeed("u"), b.paramSeed("u"));
  Tensor r1 = random_uniform({2});
  Tensor r2 = random_normal({2}, 1.0, 2.0);
  EXPECT_NE(intAttr(nodeOf(r1), "seed"), intAttr(nodeOf(r2), "seed"));
  EXPECT_DOUBLE_EQ(floatAttr(nodeOf(r2), "std"), 2.0);
  EXPECT_NE(errorOf([] { param("bad", {2}, Init{"glorot", 1.0}); }).find("unknown init 'glorot'"), std::string::npos);
}

TEST(Layers, LinearCreatesNamedParamsWithTorchInit) {
  GraphBuilder b("t");
  BuildScope scope(b);
  nn::Linear fc1("fc1", 16, 4);
  nn::Linear noBias("head", 4, 2, false);
  EXPECT_EQ(nodeOf(fc1.weight).name, "fc1.weight");
  EXPECT_EQ(fc1.weight.typeStr(), "f32[16,4]");
  EXPECT_EQ(nodeOf(fc1.bias).name, "fc1.bias");
  EXPECT_EQ(fc1.bias.typeStr(), "f32[4]");
  EXPECT_DOUBLE_EQ(floatAttr(nodeOf(fc1.weight), "scale"), 0.25);
  EXPECT_DOUBLE_EQ(floatAttr(nodeOf(fc1.bias), "scale"), 0.25);
  EXPECT_FALSE(noBias.bias.valid());
  Tensor x = input("x", {5, 7, 16});
  Tensor y = fc1(x);
  EXPECT_EQ(y.typeStr(), "f32[5,7,4]");
  EXPECT_EQ(nodeOf(y).op, OpKind::Add);
  EXPECT_EQ(nodeOf(noBias(y)).op, OpKind::Matmul);
  int line = __LINE__ + 1;
  std::string msg = errorOf([&] { noBias(x); });
  EXPECT_NE(msg.find(kThisFile + ":" + std::to_string(line) + ": matmul(f32[5,7,16], f32[4,2])"), std::string::npos) << msg;
}

TEST(Layers, NameScopesNest) {
  GraphBuilder b("t");
  BuildScope scope(b);
  {
    NameScope blocks("blocks");
    NameScope block("0");
    nn::LayerNorm ln1("ln1", 8);
    EXPECT_EQ(nodeOf(ln1.weight).name, "blocks.0.ln1.weight");
    EXPECT_EQ(std::get<std::string>(nodeOf(ln1.weight).attrs.at("init")), "ones");
    EXPECT_EQ(nodeOf(ln1.bias).name, "blocks.0.ln1.bias");
  }
  nn::LayerNorm ln("ln", 8);
  EXPECT_EQ(nodeOf(ln.weight).name, "ln.weight");
  Tensor x = input("x", {2, 3, 8});
  Tensor y = ln(x);
  EXPECT_EQ(intAttr(nodeOf(y), "axis"), 2);
  nn::LayerNorm ln2d("ln2d", Shape{3, 8});
  EXPECT_EQ(intAttr(nodeOf(ln2d(x)), "axis"), 1);
}

TEST(Layers, ConvNormEmbeddingShapes) {
  GraphBuilder b("t");
  BuildScope scope(b);
  nn::Conv2d conv("conv1", 3, 8, 3, {.padding = 1});
  EXPECT_EQ(conv.weight.typeStr(), "f32[8,3,3,3]");
  EXPECT_DOUBLE_EQ(floatAttr(nodeOf(conv.weight), "scale"), 1.0 / std::sqrt(27.0));
  EXPECT_EQ(nodeOf(conv.bias).name, "conv1.bias");
  nn::ConvTranspose2d up("up", 8, 4, 4, {.stride = 2, .padding = 1});
  EXPECT_EQ(up.weight.typeStr(), "f32[8,4,4,4]");
  EXPECT_DOUBLE_EQ(floatAttr(nodeOf(up.weight), "scale"), 1.0 / 8.0);  // fan-in = 4 * 4 * 4
  nn::BatchNorm2d bn("bn", 8);
  nn::GroupNorm gn("gn", 2, 8);
  nn::Embedding emb("emb", 10, 6);
  EXPECT_EQ(nodeOf(bn.running_mean).name, "bn.running_mean");  // a buffer in both modes
  EXPECT_EQ(std::get<int64_t>(nodeOf(bn.running_var).attrs.at("trainable")), 0);
  Tensor x = input("x", {2, 3, 6, 6});
  Tensor h = bn(conv(x));
  EXPECT_EQ(nodeOf(h).op, OpKind::BatchNorm);
  ASSERT_EQ(b.graph().updates().size(), 2u);  // training mode updates the running statistics
  EXPECT_EQ(b.graph().updates()[0].param, bn.running_mean.id());
  EXPECT_EQ(b.graph().updates()[1].param, bn.running_var.id());
  EXPECT_EQ(up(h).typeStr(), "f32[2,4,12,12]");
  EXPECT_EQ(nodeOf(gn(h)).op, OpKind::GroupNorm);
  Tensor ids = input("ids", {2, 5}, DType::i64);
  EXPECT_EQ(emb(ids).typeStr(), "f32[2,5,6]");
  EXPECT_EQ(std::get<std::string>(nodeOf(emb.weight).attrs.at("init")), "normal");
  EXPECT_TRUE(ir::verifyErrors(b.graph()).empty());
}

TEST(Layers, TrainAndEvalForms) {
  GraphBuilder b("t");
  b.setTraining(false);
  BuildScope scope(b);
  nn::BatchNorm2d bn("bn", 4);
  EXPECT_EQ(nodeOf(bn.running_mean).name, "bn.running_mean");
  EXPECT_EQ(std::get<std::string>(nodeOf(bn.running_var).attrs.at("init")), "ones");
  Tensor x = input("x", {2, 4, 3, 3});
  EXPECT_EQ(nodeOf(bn(x)).op, OpKind::BatchNormInfer);
  nn::Dropout drop(0.25);
  EXPECT_EQ(drop(x).id(), x.id());  // identity in evaluation mode
  b.setTraining(true);
  Tensor d = drop(x);
  const ir::Node& sel = nodeOf(d);
  EXPECT_EQ(sel.op, OpKind::Select);
  const ir::Node& mask = b.graph().node(sel.operands[0]);
  EXPECT_EQ(mask.op, OpKind::Ge);
  EXPECT_EQ(b.graph().node(mask.operands[0]).op, OpKind::RandomUniform);
  const ir::Node& scaled = b.graph().node(sel.operands[1]);
  EXPECT_EQ(scaled.op, OpKind::Mul);
  EXPECT_DOUBLE_EQ(std::get<ir::TensorDataPtr>(b.graph().node(scaled.operands[1]).attrs.at("value"))->get(0),
                   static_cast<double>(static_cast<float>(1.0 / 0.75)));
  EXPECT_EQ(d.typeStr(), "f32[2,4,3,3]");
  EXPECT_TRUE(ir::verifyErrors(b.graph()).empty());
}

TEST(Builder, BuildingTwiceGivesTheSameSeeds) {
  auto build = [] {
    GraphBuilder b("t", 3);
    BuildScope scope(b);
    nn::Linear fc("fc", 2, 2);
    Tensor r = random_normal({2});
    output("r", fc(reshape(r, {1, 2})));
    return b.finish();
  };
  ir::Graph g1 = build(), g2 = build();
  ASSERT_EQ(g1.size(), g2.size());
  for (ir::ValueId v = 0; v < g1.size(); ++v) {
    EXPECT_EQ(g1.node(v).op, g2.node(v).op);
    if (g1.node(v).attrs.count("seed")) {
      EXPECT_EQ(intAttr(g1.node(v), "seed"), intAttr(g2.node(v), "seed"));
    }
  }
}

TEST(Sources, ConstantsIotaCastAndFriends) {
  GraphBuilder b("t");
  BuildScope scope(b);
  Tensor c = constant({1, 2, 3, 4, 5, 6}, {2, 3}, DType::f32);
  EXPECT_EQ(c.typeStr(), "f32[2,3]");
  EXPECT_EQ(std::get<ir::TensorDataPtr>(nodeOf(c).attrs.at("value"))->get(5), 6.0);
  EXPECT_NE(errorOf([] { constant({1, 2}, {3}, DType::f32); }).find("2 values do not fill f32[3]"), std::string::npos);
  Tensor f = full({2, 2}, 3.0, DType::i64);
  EXPECT_EQ(f.typeStr(), "i64[2,2]");
  EXPECT_EQ(nodeOf(f).op, OpKind::Broadcast);
  EXPECT_EQ(zeros({4}).typeStr(), "f32[4]");
  Tensor io = iota({3, 5}, -1, DType::i32);
  EXPECT_EQ(intAttr(nodeOf(io), "axis"), 1);
  EXPECT_EQ(cast(io, DType::f32).typeStr(), "f32[3,5]");
  EXPECT_EQ(nodeOf(stop_gradient(c)).op, OpKind::StopGradient);
  Tensor cl = clamp(c, -1, 1);
  EXPECT_EQ(nodeOf(cl).op, OpKind::Minimum);
  EXPECT_EQ(b.graph().node(nodeOf(cl).operands[0]).op, OpKind::Maximum);
  EXPECT_EQ(c.dim(-1), 3);
  int line = __LINE__ + 1;
  EXPECT_EQ(errorOf([&] { c.dim(2); }), kThisFile + ":" + std::to_string(line) + ": dimension 2 is out of range for f32[2,3]");
  Tensor seq = input("seq", {2, 3, 10});
  EXPECT_EQ(max_pool(seq, 2).typeStr(), "f32[2,3,5]");
  EXPECT_EQ(avg_pool(seq, 3, 1, 1).typeStr(), "f32[2,3,10]");
  EXPECT_NE(errorOf([&] { max_pool2d(seq, 2); }).find("max_pool(f32[2,3,10]): input must be [N, C, H, W]"),
            std::string::npos);
  EXPECT_TRUE(ir::verifyErrors(b.graph()).empty());
}
