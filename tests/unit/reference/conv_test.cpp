// conv, conv_transpose, max_pool and avg_pool against hand-computed values.
#include "backends/reference/kernels.h"
#include "ref_test_util.h"

using namespace reftest;

namespace {

const std::vector<double> kImage = {1, 2, 3, 4, 5, 6, 7, 8, 9};  // 3x3

Attrs convAttrs(std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation,
                int64_t groups) {
  return {{"stride", ints(stride)}, {"padding", ints(padding)}, {"dilation", ints(dilation)}, {"groups", I(groups)}};
}

Attrs poolAttrs(std::vector<int64_t> window, std::vector<int64_t> stride, std::vector<int64_t> padding) {
  return {{"window", ints(window)}, {"stride", ints(stride)}, {"padding", ints(padding)}};
}

Attrs convTransposeAttrs(std::vector<int64_t> stride, std::vector<int64_t> padding,
                         std::vector<int64_t> outputPadding, int64_t groups) {
  return {{"stride", ints(stride)},
          {"padding", ints(padding)},
          {"output_padding", ints(outputPadding)},
          {"dilation", ints(std::vector<int64_t>(stride.size(), 1))},
          {"groups", I(groups)}};
}

}  // namespace

TEST(Conv, StrideOneAndTwo) {
  for (DType dt : {DType::f32, DType::f64}) {
    SCOPED_TRACE(std::string(dtypeName(dt)));
    TensorData x = tensor(dt, {1, 1, 3, 3}, kImage), w = tensor(dt, {1, 1, 2, 2}, {1, 2, 3, 4});
    expectTensor(runOp(OpKind::Conv, {x, w}, convAttrs({1, 1}, {0, 0}, {1, 1}, 1)), dt, {1, 1, 2, 2},
                 {37, 47, 67, 77});
    expectTensor(runOp(OpKind::Conv, {x, w}, convAttrs({2, 2}, {0, 0}, {1, 1}, 1)), dt, {1, 1, 1, 1}, {37});
  }
}

TEST(Conv, PaddingOne) {
  TensorData x = f32({1, 1, 3, 3}, kImage), w = f32({1, 1, 2, 2}, {1, 2, 3, 4});
  expectTensor(runOp(OpKind::Conv, {x, w}, convAttrs({1, 1}, {1, 1}, {1, 1}, 1)), DType::f32, {1, 1, 4, 4},
               {4, 11, 18, 9, 18, 37, 47, 21, 36, 67, 77, 33, 14, 23, 26, 9});
  // Stride 2 with padding picks the even positions of the above.
  expectTensor(runOp(OpKind::Conv, {x, w}, convAttrs({2, 2}, {1, 1}, {1, 1}, 1)), DType::f32, {1, 1, 2, 2},
               {4, 18, 36, 77});
}

TEST(Conv, DilationTwo) {
  // The 2x2 kernel reads the corners of the 3x3 image: 1*1 + 3*2 + 7*3 + 9*4.
  TensorData x = f64({1, 1, 3, 3}, kImage), w = f64({1, 1, 2, 2}, {1, 2, 3, 4});
  expectTensor(runOp(OpKind::Conv, {x, w}, convAttrs({1, 1}, {0, 0}, {2, 2}, 1)), DType::f64, {1, 1, 1, 1}, {64});
}

TEST(Conv, GroupsTwo) {
  // Channel 0 [[1,2],[3,4]] meets the diagonal kernel, channel 1 [[5,6],[7,8]] the anti-diagonal.
  TensorData x = f32({1, 2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  TensorData w = f32({2, 1, 2, 2}, {1, 0, 0, 1, 0, 1, 1, 0});
  expectTensor(runOp(OpKind::Conv, {x, w}, convAttrs({1, 1}, {0, 0}, {1, 1}, 2)), DType::f32, {1, 2, 1, 1}, {5, 13});
  // Batch 2 with two output channels per group.
  TensorData x2 = f32({2, 2, 1, 1}, {1, 10, 2, 20});
  TensorData w2 = f32({4, 1, 1, 1}, {1, -1, 2, 3});
  expectTensor(runOp(OpKind::Conv, {x2, w2}, convAttrs({1, 1}, {0, 0}, {1, 1}, 2)), DType::f32, {2, 4, 1, 1},
               {1, -1, 20, 30, 2, -2, 40, 60});
}

TEST(Conv, OneDimensionalWithPaddingAndStride) {
  TensorData x = f32({1, 1, 5}, {1, 2, 3, 4, 5}), w = f32({1, 1, 3}, {1, 0, -1});
  expectTensor(runOp(OpKind::Conv, {x, w}, convAttrs({2}, {1}, {1}, 1)), DType::f32, {1, 1, 3}, {-2, -2, 4});
}

TEST(ConvTranspose, StrideOneOverlaps) {
  TensorData x = f32({1, 1, 2, 2}, {1, 2, 3, 4}), w = f32({1, 1, 2, 2}, {1, 1, 1, 1});
  expectTensor(runOp(OpKind::ConvTranspose, {x, w}, convTransposeAttrs({1, 1}, {0, 0}, {0, 0}, 1)), DType::f32,
               {1, 1, 3, 3}, {1, 3, 2, 4, 10, 6, 3, 7, 4});
}

TEST(ConvTranspose, StrideTwoPaddingAndOutputPadding) {
  for (DType dt : {DType::f32, DType::f64}) {
    SCOPED_TRACE(std::string(dtypeName(dt)));
    TensorData x = tensor(dt, {1, 1, 2, 2}, {1, 2, 3, 4}), w = tensor(dt, {1, 1, 2, 2}, {1, 2, 3, 4});
    // Without padding every input scatters x * w into its own 2x2 block.
    expectTensor(runOp(OpKind::ConvTranspose, {x, w}, convTransposeAttrs({2, 2}, {0, 0}, {0, 0}, 1)), dt,
                 {1, 1, 4, 4}, {1, 2, 2, 4, 3, 4, 6, 8, 3, 6, 4, 8, 9, 12, 12, 16});
    // Padding 1 crops one row/column on each side of that; output_padding 1 gives one back at the end.
    expectTensor(runOp(OpKind::ConvTranspose, {x, w}, convTransposeAttrs({2, 2}, {1, 1}, {0, 0}, 1)), dt,
                 {1, 1, 2, 2}, {4, 6, 6, 4});
    expectTensor(runOp(OpKind::ConvTranspose, {x, w}, convTransposeAttrs({2, 2}, {1, 1}, {1, 1}, 1)), dt,
                 {1, 1, 3, 3}, {4, 6, 8, 6, 4, 8, 12, 12, 16});
  }
}

TEST(ConvTranspose, Groups) {
  TensorData x = f32({1, 2, 1, 1}, {1, 2}), w = f32({2, 1, 1, 1}, {3, 5});
  expectTensor(runOp(OpKind::ConvTranspose, {x, w}, convTransposeAttrs({1, 1}, {0, 0}, {0, 0}, 2)), DType::f32,
               {1, 2, 1, 1}, {3, 10});
  expectTensor(runOp(OpKind::ConvTranspose, {x, f32({2, 1, 1, 1}, {3, 5})}, convTransposeAttrs({1, 1}, {0, 0}, {0, 0}, 1)),
               DType::f32, {1, 1, 1, 1}, {13});
}

TEST(ConvTranspose, IsTheAdjointOfConv) {
  // <conv(x, w), y> == <x, conv_transpose(y, w)> with stride, padding, dilation and groups.
  for (int64_t dilation : {1, 2}) {
    SCOPED_TRACE("dilation " + std::to_string(dilation));
    std::vector<double> xv, wv;
    for (int i = 0; i < 4 * 25; ++i) xv.push_back(std::sin(0.7 * i));
    for (int i = 0; i < 4 * 2 * 9; ++i) wv.push_back(std::cos(1.3 * i));
    TensorData x = f64({1, 4, 5, 5}, xv), w = f64({4, 2, 3, 3}, wv);
    TensorData y = runOp(OpKind::Conv, {x, w}, convAttrs({2, 2}, {1, 1}, {dilation, dilation}, 2));
    TensorData dy(y.type);
    for (int64_t i = 0; i < dy.numel(); ++i) dy.set(i, std::cos(0.3 * static_cast<double>(i)) + 0.5);
    Attrs t = {{"stride", ints({2, 2})}, {"padding", ints({1, 1})}, {"output_padding", ints({0, 0})},
               {"dilation", ints({dilation, dilation})}, {"groups", I(2)}};
    TensorData dx = runOp(OpKind::ConvTranspose, {dy, w}, t);
    ASSERT_EQ(dx.type, x.type);
    double lhs = 0, rhs = 0;
    for (int64_t i = 0; i < y.numel(); ++i) lhs += y.get(i) * dy.get(i);
    for (int64_t i = 0; i < x.numel(); ++i) rhs += x.get(i) * dx.get(i);
    EXPECT_NEAR(lhs, rhs, 1e-9);
  }
}

TEST(Pool, MaxPoolPadsWithMinusInfinity) {
  TensorData x = f32({1, 1, 3, 3}, kImage);
  expectTensor(runOp(OpKind::MaxPool, {x}, poolAttrs({2, 2}, {2, 2}, {1, 1})), DType::f32, {1, 1, 2, 2}, {1, 3, 7, 9});
  std::vector<double> negative;
  for (double v : kImage) negative.push_back(-v);
  expectTensor(runOp(OpKind::MaxPool, {f64({1, 1, 3, 3}, negative)}, poolAttrs({2, 2}, {2, 2}, {1, 1})), DType::f64,
               {1, 1, 2, 2}, {-1, -2, -4, -5});
  expectTensor(runOp(OpKind::MaxPool, {x}, poolAttrs({2, 2}, {1, 1}, {0, 0})), DType::f32, {1, 1, 2, 2}, {5, 6, 8, 9});
}

TEST(Pool, AvgPoolCountsPaddingInTheWindow) {
  TensorData x = f32({1, 1, 3, 3}, kImage);
  expectTensor(runOp(OpKind::AvgPool, {x}, poolAttrs({2, 2}, {2, 2}, {1, 1})), DType::f32, {1, 1, 2, 2},
               {0.25, 1.25, 2.75, 7});
  expectTensor(runOp(OpKind::AvgPool, {x}, poolAttrs({2, 2}, {1, 1}, {0, 0})), DType::f32, {1, 1, 2, 2}, {3, 4, 6, 7});
}

TEST(Pool, ChannelsAndBatchesArePooledSeparately) {
  TensorData x = f32({2, 2, 1, 2}, {1, 5, -1, -2, 7, 3, 0, 10});
  expectTensor(runOp(OpKind::MaxPool, {x}, poolAttrs({1, 2}, {1, 2}, {0, 0})), DType::f32, {2, 2, 1, 1},
               {5, -1, 7, 10});
}
