// A LeNet-sized forward pass: the reference interpreter must handle benchmark-size models.
#include "ref_test_util.h"

using namespace reftest;

namespace {

ValueId param(Graph& g, const std::string& name, Shape shape, int64_t seed) {
  return g.addParam(name, {DType::f32, std::move(shape)}, {{"init", S("uniform")}, {"seed", I(seed)}, {"scale", F(0.2)}});
}

Attrs conv(int64_t pad) {
  return {{"stride", ints({1, 1})}, {"padding", ints({pad, pad})}, {"dilation", ints({1, 1})}, {"groups", I(1)}};
}

Attrs pool() { return {{"window", ints({2, 2})}, {"stride", ints({2, 2})}, {"padding", ints({0, 0})}}; }

}  // namespace

TEST(LeNetSmoke, Batch64ForwardAndLoss) {
  const int64_t batch = 64;
  Graph g("lenet");
  auto x = g.addInput("x", {DType::f32, {batch, 1, 28, 28}});
  auto labels = g.addInput("labels", {DType::i64, {batch}});
  auto h = g.addOp(OpKind::Conv, {x, param(g, "c1", {6, 1, 5, 5}, 1)}, conv(2));
  h = g.addOp(OpKind::MaxPool, {g.addOp(OpKind::Relu, {h})}, pool());
  h = g.addOp(OpKind::Conv, {h, param(g, "c2", {16, 6, 5, 5}, 2)}, conv(0));
  h = g.addOp(OpKind::MaxPool, {g.addOp(OpKind::Relu, {h})}, pool());
  h = g.addOp(OpKind::Reshape, {h}, {{"shape", ints({batch, 400})}});
  h = g.addOp(OpKind::Relu, {g.addOp(OpKind::Matmul, {h, param(g, "f1", {400, 120}, 3)})});
  h = g.addOp(OpKind::Relu, {g.addOp(OpKind::Matmul, {h, param(g, "f2", {120, 84}, 4)})});
  auto logits = g.addOp(OpKind::Matmul, {h, param(g, "f3", {84, 10}, 5)});
  g.addOutput("probs", g.addOp(OpKind::Softmax, {logits}, {{"axis", I(1)}}));
  g.addOutput("loss", g.addOp(OpKind::CrossEntropy, {logits, labels}, {{"reduce", S("mean")}}));

  TensorData image(TensorType{DType::f32, {batch, 1, 28, 28}}), y(TensorType{DType::i64, {batch}});
  for (int64_t i = 0; i < image.numel(); ++i) image.set(i, std::sin(0.01 * static_cast<double>(i)));
  for (int64_t i = 0; i < batch; ++i) y.set(i, static_cast<double>(i % 10));
  TensorMap out = weft::reference::run(g, {{"x", image}, {"labels", y}});

  const TensorData& probs = out.at("probs");
  EXPECT_EQ(probs.type.str(), "f32[64,10]");
  for (int64_t r = 0; r < batch; ++r) {
    double sum = 0;
    for (int64_t c = 0; c < 10; ++c) sum += probs.get(r * 10 + c);
    EXPECT_NEAR(sum, 1.0, 1e-5);
  }
  double loss = out.at("loss").get(0);
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_GT(loss, 0);
}
