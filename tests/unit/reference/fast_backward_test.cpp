// The typed fast paths of the backward kernels (conv_weight_grad, max_pool_grad) against
// their generic kernels and against hand-computed values.
#include "backends/reference/fast_paths.h"
#include "backends/reference/kernels.h"
#include "ref_test_util.h"

using namespace reftest;
using weft::reference::KernelContext;
using weft::reference::RunOptions;
using weft::reference::setFastPathsEnabled;

namespace {

/// Deterministic values in [-1, 1), exactly representable in f32.
TensorData pseudoRandom(DType dt, Shape shape, uint32_t seed) {
  std::vector<double> v;
  uint32_t state = seed * 2654435761u + 1;
  for (int64_t i = 0; i < numElements(shape); ++i) {
    state = state * 1664525u + 1013904223u;
    v.push_back(static_cast<float>(static_cast<double>(state >> 8) / static_cast<double>(1u << 23) - 1.0));
  }
  return tensor(dt, std::move(shape), v);
}

/// A graph with one node `op(x, dy)` and what it takes to run its kernel directly.
struct OneNode {
  Graph graph{"backward"};
  ValueId node;
  TensorData x, dy;
  TensorMap feeds;
  RunOptions options;

  OneNode(OpKind op, TensorData xv, TensorData dyv, Attrs attrs) : x(std::move(xv)), dy(std::move(dyv)) {
    ValueId xi = graph.addInput("x", x.type), di = graph.addInput("dy", dy.type);
    node = graph.addOp(op, {xi, di}, std::move(attrs), "y");
  }
  KernelContext context() const { return KernelContext{graph, node, {&x, &dy}, feeds, options}; }

  /// The fast path's result (which must apply).
  TensorData fast(bool (*tryFast)(const KernelContext&, TensorData&)) const {
    TensorData out;
    EXPECT_TRUE(tryFast(context(), out));
    return out;
  }
  /// The op's kernel with the fast paths switched off.
  TensorData generic() const {
    setFastPathsEnabled(false);
    TensorData out = weft::reference::kernelFor(graph.node(node).op)(context());
    setFastPathsEnabled(true);
    return out;
  }
};

Attrs weightGradAttrs(std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation,
                      int64_t groups, std::vector<int64_t> kernel) {
  return {{"stride", ints(stride)}, {"padding", ints(padding)}, {"dilation", ints(dilation)},
          {"groups", I(groups)},    {"kernel", ints(kernel)}};
}

void expectIdentical(const TensorData& fast, const TensorData& generic) {
  ASSERT_EQ(fast.type, generic.type);
  for (int64_t i = 0; i < fast.numel(); ++i) EXPECT_EQ(fast.get(i), generic.get(i)) << "element " << i;
}

}  // namespace

TEST(FastConvWeightGrad, ByHand) {
  // x 1x1x3x3 = 1..9, dy 1x1x2x2 = {1, 0, 0, 1}: dw[k] = x[k] + x[k + 4] for the 2x2 kernel
  // offsets k of the top-left window, i.e. {1+5, 2+6, 4+8, 5+9}.
  OneNode n(OpKind::ConvWeightGrad, f32({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9}), f32({1, 1, 2, 2}, {1, 0, 0, 1}),
            weightGradAttrs({1, 1}, {0, 0}, {1, 1}, 1, {2, 2}));
  expectTensor(n.fast(weft::reference::tryFastConvWeightGrad), DType::f32, {1, 1, 2, 2}, {6, 8, 12, 14}, 0);
}

TEST(FastConvWeightGrad, MatchesGenericWithStridePaddingDilationAndGroups) {
  for (DType dt : {DType::f32, DType::f64}) {
    SCOPED_TRACE(std::string(dtypeName(dt)));
    // conv of x [3,4,9,8] with a [6,2,3,2] kernel, stride {2,1}, padding {1,2}, dilation {2,1},
    // groups 2 has output [3,6,4,11].
    OneNode n(OpKind::ConvWeightGrad, pseudoRandom(dt, {3, 4, 9, 8}, 1), pseudoRandom(dt, {3, 6, 4, 11}, 2),
              weightGradAttrs({2, 1}, {1, 2}, {2, 1}, 2, {3, 2}));
    expectIdentical(n.fast(weft::reference::tryFastConvWeightGrad), n.generic());
    // 1-D, and lenet's second conv (64 x 7744 x 288 multiply-adds: split across threads).
    OneNode oneD(OpKind::ConvWeightGrad, pseudoRandom(dt, {2, 3, 11}, 3), pseudoRandom(dt, {2, 4, 5}, 4),
                 weightGradAttrs({2}, {1}, {2}, 1, {3}));
    expectIdentical(oneD.fast(weft::reference::tryFastConvWeightGrad), oneD.generic());
  }
  OneNode lenet(OpKind::ConvWeightGrad, pseudoRandom(DType::f32, {8, 32, 13, 13}, 5),
                pseudoRandom(DType::f32, {8, 64, 11, 11}, 6), weightGradAttrs({1, 1}, {0, 0}, {1, 1}, 1, {3, 3}));
  expectIdentical(lenet.fast(weft::reference::tryFastConvWeightGrad), lenet.generic());
}

TEST(FastMaxPoolGrad, ByHandAndAgainstGeneric) {
  // One 2x2 window over {1, 3, 3, 2}: the first maximum (position 1) gets dy.
  Attrs a = {{"window", ints({2, 2})}, {"stride", ints({2, 2})}, {"padding", ints({0, 0})}};
  OneNode n(OpKind::MaxPoolGrad, f64({1, 1, 2, 2}, {1, 3, 3, 2}), f64({1, 1, 1, 1}, {5}), a);
  expectTensor(n.fast(weft::reference::tryFastMaxPoolGrad), DType::f64, {1, 1, 2, 2}, {0, 5, 0, 0}, 0);
  Attrs padded = {{"window", ints({3, 2})}, {"stride", ints({2, 1})}, {"padding", ints({1, 1})}};
  for (DType dt : {DType::f32, DType::f64}) {
    SCOPED_TRACE(std::string(dtypeName(dt)));
    TensorData x = pseudoRandom(dt, {2, 3, 7, 6}, 7);
    x.set(9, NAN);
    OneNode m(OpKind::MaxPoolGrad, x, pseudoRandom(dt, {2, 3, 4, 7}, 8), padded);
    expectIdentical(m.fast(weft::reference::tryFastMaxPoolGrad), m.generic());
  }
}
