// pointwise-convs-to-matmuls: 1x1 convolutions (and their data and weight gradients) become
// matmuls computing the same; padded, grouped or larger kernels stay convolutions, and so does
// a strided forward one.
#include <gtest/gtest.h>

#include "ir/verifier.h"
#include "pass_test_util.h"
#include "passes/builtin_passes.h"

using namespace weft;
using namespace weft::ir;
using namespace weft::passes;
using namespace weft::passes::testing;

namespace {

using Ints = std::vector<int64_t>;

Attrs convAttrs(int64_t stride, int64_t padding, int64_t groups) {
  return {{"stride", Ints{stride, stride}},
          {"padding", Ints{padding, padding}},
          {"dilation", Ints{1, 1}},
          {"groups", groups}};
}

/// A 1x1 convolution of x [2,3,H,W] by w [O,3,1,1] with `stride`, its data gradient (with
/// `outputPadding`) and its weight gradient from dy [2,O,h,w], as outputs y, dx and dw.
Graph convAndGradients(const Shape& x, const Shape& w, const Shape& dy, int64_t stride, Ints outputPadding) {
  Graph g("pointwise");
  auto xv = g.addInput("x", {DType::f32, x});
  auto wv = g.addInput("w", {DType::f32, w});
  auto dyv = g.addInput("dy", {DType::f32, dy});
  g.addOutput("y", g.addOp(OpKind::Conv, {xv, wv}, convAttrs(stride, 0, 1)));
  Attrs transposeAttrs = convAttrs(stride, 0, 1);
  transposeAttrs["output_padding"] = outputPadding;
  g.addOutput("dx", g.addOp(OpKind::ConvTranspose, {dyv, wv}, transposeAttrs));
  Attrs gradAttrs = convAttrs(stride, 0, 1);
  gradAttrs["kernel"] = Ints{1, 1};
  g.addOutput("dw", g.addOp(OpKind::ConvWeightGrad, {xv, dyv}, gradAttrs));
  return g;
}

}  // namespace

TEST(PointwiseConvs, ConvAndItsGradientsBecomeMatmuls) {
  Graph g = convAndGradients({2, 3, 4, 5}, {6, 3, 1, 1}, {2, 6, 4, 5}, 1, {0, 0});
  Graph lowered = g;
  ASSERT_TRUE(lowerPointwiseConvs(lowered));
  verify(lowered);
  EXPECT_EQ(countOps(lowered, OpKind::Conv) + countOps(lowered, OpKind::ConvTranspose) +
                countOps(lowered, OpKind::ConvWeightGrad),
            0);
  EXPECT_EQ(countOps(lowered, OpKind::Matmul), 3);
  expectSameResults(g, lowered, smoothFeeds(g, 0.37), 1e-4);
}

// With a stride the weight gradient reads every other position (a strided slice) and the data
// gradient spreads its product over them (a pad between, a slice of the last row or column
// when output_padding leaves it out); the forward convolution stays one.
TEST(PointwiseConvs, StridedGradientsBecomeMatmuls) {
  Graph g = convAndGradients({2, 3, 5, 6}, {4, 3, 1, 1}, {2, 4, 3, 3}, 2, {0, 1});
  Graph lowered = g;
  ASSERT_TRUE(lowerPointwiseConvs(lowered));
  verify(lowered);
  EXPECT_EQ(countOps(lowered, OpKind::ConvWeightGrad) + countOps(lowered, OpKind::ConvTranspose), 0);
  EXPECT_EQ(countOps(lowered, OpKind::Conv), 1);
  EXPECT_EQ(countOps(lowered, OpKind::Pad), 1);
  EXPECT_EQ(countOps(lowered, OpKind::Slice), 2);  // x's every other position; dx's first 5 rows
  expectSameResults(g, lowered, smoothFeeds(g, 0.29), 1e-4);
}

TEST(PointwiseConvs, OtherConvolutionsStay) {
  Graph g("windows");
  auto x = g.addInput("x", {DType::f32, {2, 4, 6, 6}});
  auto w1 = g.addInput("w1", {DType::f32, {4, 4, 1, 1}});
  auto w3 = g.addInput("w3", {DType::f32, {4, 4, 3, 3}});
  auto wg = g.addInput("wg", {DType::f32, {4, 2, 1, 1}});
  g.addOutput("strided", g.addOp(OpKind::Conv, {x, w1}, convAttrs(2, 0, 1)));
  g.addOutput("padded", g.addOp(OpKind::Conv, {x, w1}, convAttrs(1, 1, 1)));
  g.addOutput("grouped", g.addOp(OpKind::Conv, {x, wg}, convAttrs(1, 0, 2)));
  g.addOutput("window", g.addOp(OpKind::Conv, {x, w3}, convAttrs(1, 1, 1)));
  Graph lowered = g;
  EXPECT_FALSE(lowerPointwiseConvs(lowered));
  expectSameGraph(g, lowered);
}

// Channels-last: the forward convolution and its unstrided data gradient stay convolutions
// (oneDNN reads them in place); weight gradients and strided data gradients become matmuls.
TEST(PointwiseConvs, ChannelsLastConvolutionsKeepTheForwardAndUnstridedDataGradients) {
  auto channelsLast = [](Attrs attrs) {
    attrs["channels_last"] = int64_t{1};
    return attrs;
  };
  Graph g("pointwise_cl");
  auto x = g.addInput("x", {DType::f32, {2, 4, 6, 16}});
  auto w = g.addInput("w", {DType::f32, {32, 16, 1, 1}});
  auto dy = g.addInput("dy", {DType::f32, {2, 4, 6, 32}});
  auto dyStrided = g.addInput("dy2", {DType::f32, {2, 2, 3, 32}});
  Attrs grad = channelsLast(convAttrs(1, 0, 1)), gradStrided = channelsLast(convAttrs(2, 0, 1));
  grad["kernel"] = gradStrided["kernel"] = Ints{1, 1};
  Attrs transpose = channelsLast(convAttrs(1, 0, 1)), transposeStrided = channelsLast(convAttrs(2, 0, 1));
  transpose["output_padding"] = transposeStrided["output_padding"] = Ints{0, 0};
  g.addOutput("y", g.addOp(OpKind::Conv, {x, w}, channelsLast(convAttrs(1, 0, 1))));
  g.addOutput("dx", g.addOp(OpKind::ConvTranspose, {dy, w}, transpose));
  g.addOutput("dw", g.addOp(OpKind::ConvWeightGrad, {x, dy}, grad));
  g.addOutput("dx2", g.addOp(OpKind::ConvTranspose, {dyStrided, w}, transposeStrided));
  g.addOutput("dw2", g.addOp(OpKind::ConvWeightGrad, {x, dyStrided}, gradStrided));
  Graph lowered = g;
  ASSERT_TRUE(lowerPointwiseConvs(lowered));
  verify(lowered);
  EXPECT_EQ(countOps(lowered, OpKind::Conv), 1);
  EXPECT_EQ(countOps(lowered, OpKind::ConvTranspose), 1);
  EXPECT_EQ(countOps(lowered, OpKind::ConvWeightGrad), 0);
  EXPECT_EQ(countOps(lowered, OpKind::Matmul), 3);
  expectSameResults(g, lowered, smoothFeeds(g, 0.31), 1e-4);
}
