// The oneDNN steps of conv_transpose, conv_weight_grad, avg_pool, 3-D max_pool and 1-D and 3-D
// max_pool_grad, and the native 1-D and 2-D max_pool and 2-D max_pool_grad, each on one-node
// graphs against the reference interpreter over several
// geometries (stride, padding, dilation, groups, output_padding, odd sizes, 1 to 3 spatial
// dims, ties in max pooling).
#include <gtest/gtest.h>

#include <cmath>

#include "backends/cpu/executable.h"

using namespace weft;

namespace {

using ir::OpKind;
using Ints = std::vector<int64_t>;

ir::TensorType f32(ir::Shape shape) { return {ir::DType::f32, std::move(shape)}; }

/// How the feeds of a test look.
enum class Values { Smooth, FewDistinct };

/// Deterministic values: smooth distinct ones, or only 5 distinct integers (many ties).
ir::TensorData sample(const ir::TensorType& type, int salt, Values kind) {
  ir::TensorData t(type);
  for (int64_t i = 0; i < t.numel(); ++i) {
    double s = std::sin(0.71 * double(i) + 1.7 * salt);
    t.set(i, kind == Values::Smooth ? s : std::floor(2.5 * s));
  }
  return t;
}

/// Compiles the one-node graph `g` without the CPU pipeline, expects oneDNN to run its node
/// (or not, with `onednn` false), and compares the result with the reference interpreter
/// within `tolerance` relative (absolute below 1).
void expectMatchesReference(const ir::Graph& g, Values kind = Values::Smooth, bool onednn = true,
                            double tolerance = 1e-5) {
  reference::TensorMap feeds;
  int salt = 0;
  for (ir::ValueId v : g.inputs()) {
    // dy of max_pool_grad stays smooth so that each routed value is recognizable.
    Values k = g.node(v).name == "dy" ? Values::Smooth : kind;
    feeds[g.node(v).name] = sample(g.type(v), salt++, k);
  }
  cpu::CompileOptions options;
  options.optimize = false;
  cpu::Executable exe = cpu::compile(g, options);
  EXPECT_EQ(exe.oneDnnNodeCount(), onednn ? 1 : 0);
  ir::TensorData got = exe.run(feeds).at("y");
  ir::TensorData want = reference::run(g, feeds).at("y");
  ASSERT_EQ(got.type, want.type);
  int failures = 0;
  for (int64_t i = 0; i < want.numel() && failures < 5; ++i) {
    double w = want.get(i), x = got.get(i);
    if (std::fabs(w - x) > tolerance * std::max(1.0, std::fabs(w))) {
      ADD_FAILURE() << "element " << i << ": " << x << ", reference " << w;
      ++failures;
    }
  }
}

ir::Graph convTranspose(ir::Shape x, ir::Shape w, Ints stride, Ints padding, Ints outputPadding, Ints dilation,
                        int64_t groups) {
  ir::Graph g("conv_transpose");
  ir::Attrs attrs{{"stride", stride},   {"padding", padding}, {"output_padding", outputPadding},
                  {"dilation", dilation}, {"groups", groups}};
  g.addOutput("y", g.addOp(OpKind::ConvTranspose, {g.addInput("x", f32(x)), g.addInput("w", f32(w))}, attrs));
  return g;
}

ir::Graph convWeightGrad(ir::Shape x, ir::Shape dy, Ints stride, Ints padding, Ints dilation, int64_t groups,
                         Ints kernel) {
  ir::Graph g("conv_weight_grad");
  ir::Attrs attrs{{"stride", stride}, {"padding", padding}, {"dilation", dilation}, {"groups", groups}, {"kernel", kernel}};
  g.addOutput("y", g.addOp(OpKind::ConvWeightGrad, {g.addInput("x", f32(x)), g.addInput("dy", f32(dy))}, attrs));
  return g;
}

ir::Graph pool(OpKind op, ir::Shape x, Ints window, Ints stride, Ints padding) {
  ir::Graph g("pool");
  g.addOutput("y", g.addOp(op, {g.addInput("x", f32(x))}, {{"window", window}, {"stride", stride}, {"padding", padding}}));
  return g;
}

/// max_pool_grad(x, dy) with dy of the pooled shape.
ir::Graph maxPoolGrad(ir::Shape x, Ints window, Ints stride, Ints padding, bool channelsLast = false) {
  ir::Graph g("max_pool_grad");
  ir::Attrs attrs{{"window", window}, {"stride", stride}, {"padding", padding}};
  if (channelsLast) attrs["channels_last"] = int64_t{1};
  ir::TensorType pooled = ir::inferType(OpKind::MaxPool, {f32(x)}, attrs);
  g.addOutput("y", g.addOp(OpKind::MaxPoolGrad, {g.addInput("x", f32(x)), g.addInput("dy", pooled)}, attrs));
  return g;
}

}  // namespace

TEST(OneDnnConvTranspose, StridePaddingOutputPadding) {
  expectMatchesReference(convTranspose({2, 3, 5, 4}, {3, 4, 3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, 1));
}

TEST(OneDnnConvTranspose, GroupsDilationAsymmetric) {
  expectMatchesReference(convTranspose({1, 4, 4, 5}, {4, 3, 2, 3}, {2, 1}, {0, 1}, {1, 0}, {2, 2}, 2));
}

TEST(OneDnnConvTranspose, OutputPaddingBeyondStrideLeavesZeros) {
  // output_padding 3 with stride 2: the last positions no input reaches stay 0.
  expectMatchesReference(convTranspose({2, 2, 3, 3}, {2, 3, 2, 2}, {2, 2}, {0, 0}, {3, 3}, {1, 1}, 1));
}

TEST(OneDnnConvTranspose, PaddingLargerThanOutputPadding) {
  expectMatchesReference(convTranspose({1, 3, 6, 7}, {3, 2, 3, 2}, {3, 2}, {2, 1}, {0, 1}, {1, 1}, 1));
}

TEST(OneDnnConvTranspose, OneAndThreeSpatialDims) {
  expectMatchesReference(convTranspose({2, 4, 9}, {4, 3, 3}, {2}, {1}, {1}, {2}, 2));
  expectMatchesReference(convTranspose({1, 2, 3, 4, 3}, {2, 2, 2, 3, 2}, {2, 1, 2}, {0, 1, 1}, {1, 0, 0}, {1, 1, 1}, 1));
}

TEST(OneDnnConvTranspose, AvgPoolGradientShape) {
  // What autodiff emits for avg_pool's gradient: [N*C, 1, ...] with a 1/window kernel.
  expectMatchesReference(convTranspose({6, 1, 3, 3}, {1, 1, 2, 2}, {2, 2}, {0, 0}, {1, 1}, {1, 1}, 1));
}

TEST(OneDnnConvWeightGrad, NaturalExtent) {
  // conv of x [2, 3, 7, 6] with a 3x3 kernel, stride 2, padding 1 has output 4x3.
  expectMatchesReference(convWeightGrad({2, 3, 7, 6}, {2, 4, 4, 3}, {2, 2}, {1, 1}, {1, 1}, 1, {3, 3}));
}

TEST(OneDnnConvWeightGrad, DyShorterThanTheConvOutput) {
  expectMatchesReference(convWeightGrad({2, 3, 7, 6}, {2, 4, 3, 2}, {2, 2}, {1, 1}, {1, 1}, 1, {3, 3}));
  expectMatchesReference(convWeightGrad({1, 2, 9, 9}, {1, 2, 1, 2}, {1, 3}, {0, 2}, {1, 1}, 1, {2, 3}));
}

TEST(OneDnnConvWeightGrad, GroupsAndDilation) {
  expectMatchesReference(convWeightGrad({2, 4, 8, 7}, {2, 6, 4, 3}, {1, 2}, {0, 1}, {2, 2}, 2, {3, 2}));
}

TEST(OneDnnConvWeightGrad, OneAndThreeSpatialDims) {
  expectMatchesReference(convWeightGrad({3, 2, 11}, {3, 4, 5}, {2}, {1}, {1}, 1, {3}));
  expectMatchesReference(convWeightGrad({1, 2, 4, 5, 3}, {1, 3, 2, 3, 2}, {2, 2, 1}, {1, 1, 0}, {1, 1, 1}, 1, {2, 3, 2}));
}

// 1-D and 2-D max_pool run as a native step (runtime/cpu/native_max_pool.cpp), 3-D on oneDNN.
TEST(NativeMaxPool, OverlappingPaddedWindowsWithTies) {
  expectMatchesReference(pool(OpKind::MaxPool, {2, 3, 7, 6}, {3, 3}, {2, 2}, {1, 1}), Values::FewDistinct, false, 0);
  expectMatchesReference(pool(OpKind::MaxPool, {2, 3, 8, 8}, {2, 2}, {2, 2}, {0, 0}), Values::Smooth, false, 0);
  // More than sixteen output columns (two vectors of them, the second partial), stride 1.
  expectMatchesReference(pool(OpKind::MaxPool, {2, 2, 5, 40}, {2, 3}, {1, 1}, {1, 1}), Values::FewDistinct, false, 0);
}

TEST(NativeMaxPool, OneSpatialDim) {
  expectMatchesReference(pool(OpKind::MaxPool, {2, 3, 9}, {3}, {2}, {1}), Values::FewDistinct, false, 0);
}

TEST(NativeMaxPool, ChannelsLastWithPartialChannelVectors) {
  // 20 channels: a vector of sixteen and one of four per position; 1-D too; one image large
  // enough to split its rows across threads.
  for (ir::Shape x : {ir::Shape{2, 7, 6, 20}, ir::Shape{2, 9, 20}, ir::Shape{1, 40, 40, 48}}) {
    ir::Graph g("pool");
    const bool twoD = x.size() == 4;
    ir::Attrs attrs{{"channels_last", int64_t{1}},
                    {"window", twoD ? Ints{3, 2} : Ints{3}},
                    {"stride", twoD ? Ints{2, 1} : Ints{2}},
                    {"padding", twoD ? Ints{1, 1} : Ints{1}}};
    g.addOutput("y", g.addOp(OpKind::MaxPool, {g.addInput("x", f32(x))}, attrs));
    expectMatchesReference(g, Values::FewDistinct, false, 0);
  }
}

TEST(NativeMaxPool, NaNsAndInfinitiesFollowTheReference) {
  // A NaN anywhere in a window is its maximum, even before a larger number (oneDNN's pooling
  // skips it); a window of -inf values and padding gives -inf (oneDNN: the lowest float).
  for (bool channelsLast : {false, true}) {
    SCOPED_TRACE(channelsLast ? "channels-last" : "channels-first");
    const ir::Shape shape = channelsLast ? ir::Shape{1, 6, 10, 18} : ir::Shape{1, 18, 6, 10};
    for (Ints window : {Ints{2, 2}, Ints{3, 3}}) {
      ir::Graph g("pool");
      ir::Attrs attrs{{"window", window}, {"stride", Ints{2, 2}}, {"padding", window[0] == 3 ? Ints{1, 1} : Ints{0, 0}}};
      if (channelsLast) attrs["channels_last"] = int64_t{1};
      g.addOutput("y", g.addOp(OpKind::MaxPool, {g.addInput("x", f32(shape))}, attrs));
      ir::TensorData x = sample(f32(shape), 1, Values::FewDistinct);
      for (int64_t i = 0; i < x.numel(); i += 7) x.set(i, std::nan(""));
      for (int64_t i = 3; i < x.numel(); i += 11) x.set(i, INFINITY);
      for (int64_t i = 0; i < 60; ++i) x.set(channelsLast ? i * 18 + 1 : 60 + i, -INFINITY);  // one channel's plane
      cpu::CompileOptions options;
      options.optimize = false;
      cpu::Executable exe = cpu::compile(g, options);
      EXPECT_EQ(exe.oneDnnNodeCount(), 0);
      ir::TensorData got = exe.run({{"x", x}}).at("y"), want = reference::run(g, {{"x", x}}).at("y");
      int nans = 0, negativeInfinities = 0;
      for (int64_t i = 0; i < want.numel(); ++i) {
        const double w = want.get(i), v = got.get(i);
        nans += std::isnan(w);
        negativeInfinities += w == -INFINITY;
        EXPECT_TRUE(std::isnan(w) ? std::isnan(v) : v == w) << "element " << i << ": " << v << ", reference " << w;
      }
      EXPECT_GT(nans, 0);
      EXPECT_GT(negativeInfinities, 0);
    }
  }
}

TEST(OneDnnAvgPool, CountsThePadding) {
  expectMatchesReference(pool(OpKind::AvgPool, {2, 3, 7, 6}, {3, 3}, {2, 2}, {1, 1}));
  expectMatchesReference(pool(OpKind::AvgPool, {2, 3, 9}, {4}, {3}, {2}));
  expectMatchesReference(pool(OpKind::AvgPool, {1, 2, 5, 4, 6}, {2, 3, 2}, {1, 2, 2}, {1, 1, 0}));
}

TEST(OneDnnMaxPool, ThreeSpatialDims) {
  expectMatchesReference(pool(OpKind::MaxPool, {1, 2, 5, 4, 6}, {2, 3, 2}, {1, 2, 2}, {1, 1, 0}), Values::FewDistinct,
                         true, 0);
}

TEST(NativeMaxPool, PaddingAsWideAsTheWindow) {
  expectMatchesReference(pool(OpKind::MaxPool, {1, 1, 5, 5}, {2, 2}, {2, 2}, {2, 2}), Values::Smooth, false, 0);
}

// 2-D max_pool_grad runs as a native step (runtime/cpu/native_pool.cpp), not on oneDNN.
TEST(NativeMaxPoolGrad, RoutesToTheFirstMaximumOnTies) {
  // Window 3, stride 1: each input lies in up to 9 windows, and with 5 distinct values most
  // windows hold their maximum several times.
  expectMatchesReference(maxPoolGrad({2, 3, 6, 7}, {3, 3}, {1, 1}, {1, 1}), Values::FewDistinct, false);
  expectMatchesReference(maxPoolGrad({2, 3, 7, 6}, {3, 2}, {2, 2}, {1, 0}), Values::FewDistinct, false);
  expectMatchesReference(maxPoolGrad({2, 3, 8, 8}, {2, 2}, {2, 2}, {0, 0}), Values::FewDistinct, false);
}

TEST(NativeMaxPoolGrad, TiledWindowsWithPartialGroupsAndUncoveredEdges) {
  // 2x2 windows, stride 2: output widths 13, 5, 3 and 8 leave 1, 1, 3 and 0 windows after
  // the groups of four; odd extents leave a last row and column no window covers. The
  // first shape has enough planes to run on several threads.
  for (Values kind : {Values::FewDistinct, Values::Smooth}) {
    expectMatchesReference(maxPoolGrad({4, 32, 26, 26}, {2, 2}, {2, 2}, {0, 0}), kind, false);
    expectMatchesReference(maxPoolGrad({2, 3, 11, 11}, {2, 2}, {2, 2}, {0, 0}), kind, false);
    expectMatchesReference(maxPoolGrad({1, 2, 7, 6}, {2, 2}, {2, 2}, {0, 0}), kind, false);
    expectMatchesReference(maxPoolGrad({1, 2, 4, 16}, {2, 2}, {2, 2}, {0, 0}), kind, false);
  }
}

TEST(NativeMaxPoolGrad, NaNsAndInfinitiesFollowTheReference) {
  // The first NaN of a window takes its gradient, wherever a larger value follows; -inf
  // windows route to their first position. Both paths: tiled 2x2 and the generic one.
  for (ir::Graph g : {maxPoolGrad({1, 2, 6, 10}, {2, 2}, {2, 2}, {0, 0}), maxPoolGrad({1, 2, 6, 10}, {3, 3}, {2, 2}, {1, 1})}) {
    ir::TensorData x = sample(f32({1, 2, 6, 10}), 1, Values::FewDistinct);
    for (int64_t i = 0; i < x.numel(); i += 7) x.set(i, std::nan(""));
    for (int64_t i = 3; i < x.numel(); i += 11) x.set(i, -INFINITY);
    for (int64_t i = 5; i < x.numel(); i += 13) x.set(i, INFINITY);
    ir::TensorType pooled = g.type(g.inputs()[1]);
    reference::TensorMap feeds{{"x", x}, {"dy", sample(pooled, 2, Values::Smooth)}};
    cpu::CompileOptions options;
    options.optimize = false;
    cpu::Executable exe = cpu::compile(g, options);
    EXPECT_EQ(exe.oneDnnNodeCount(), 0);
    // Overlapping windows add two gradients in f32 where the reference adds in f64.
    ir::TensorData got = exe.run(feeds).at("y"), want = reference::run(g, feeds).at("y");
    for (int64_t i = 0; i < want.numel(); ++i)
      EXPECT_NEAR(got.get(i), want.get(i), 1e-6 * std::max(1.0, std::fabs(want.get(i)))) << "element " << i;
  }
}

TEST(NativeMaxPoolGrad, ChannelsLastTilesWithNaNsAndPartialChannelVectors) {
  // [N, H, W, C] with 19 channels: vectors of eight (AVX2) or sixteen (AVX-512) and a rest;
  // the first NaN of a window takes its gradient; odd extents leave positions no window covers.
  const ir::Shape shape{2, 7, 9, 19};
  ir::Graph g = maxPoolGrad(shape, {2, 2}, {2, 2}, {0, 0}, true);
  ir::TensorData x = sample(f32(shape), 1, Values::FewDistinct);
  for (int64_t i = 0; i < x.numel(); i += 7) x.set(i, std::nan(""));
  for (int64_t i = 3; i < x.numel(); i += 11) x.set(i, -INFINITY);
  for (int64_t i = 5; i < x.numel(); i += 13) x.set(i, INFINITY);
  reference::TensorMap feeds{{"x", x}, {"dy", sample(g.type(g.inputs()[1]), 2, Values::Smooth)}};
  cpu::CompileOptions options;
  options.optimize = false;
  cpu::Executable exe = cpu::compile(g, options);
  EXPECT_EQ(exe.oneDnnNodeCount(), 0);
  EXPECT_EQ(exe.run(feeds).at("y"), reference::run(g, feeds).at("y"));  // one gradient per position: exact
}

TEST(NativeMaxPoolGrad, AllEqualWindows) {
  for (ir::Graph g : {maxPoolGrad({1, 2, 5, 5}, {3, 3}, {2, 2}, {1, 1}), maxPoolGrad({1, 2, 5, 5}, {2, 2}, {2, 2}, {0, 0})}) {
    ir::TensorType pooled = g.type(g.inputs()[1]);
    reference::TensorMap feeds{{"x", ir::TensorData(f32({1, 2, 5, 5}))}, {"dy", sample(pooled, 3, Values::Smooth)}};
    cpu::CompileOptions options;
    options.optimize = false;
    cpu::Executable exe = cpu::compile(g, options);
    EXPECT_EQ(exe.oneDnnNodeCount(), 0);
    EXPECT_EQ(exe.run(feeds).at("y"), reference::run(g, feeds).at("y"));
  }
}

TEST(OneDnnMaxPoolGrad, OneAndThreeSpatialDims) {
  expectMatchesReference(maxPoolGrad({2, 3, 9}, {3}, {2}, {1}), Values::FewDistinct);
  expectMatchesReference(maxPoolGrad({1, 2, 5, 4, 6}, {2, 3, 2}, {1, 2, 2}, {1, 1, 0}), Values::FewDistinct);
}

TEST(OneDnnWindowOps, OtherDtypesFallBack) {
  ir::Graph g("pool");
  ir::Attrs attrs{{"window", Ints{2, 2}}, {"stride", Ints{2, 2}}, {"padding", Ints{0, 0}}};
  g.addOutput("y", g.addOp(OpKind::MaxPool, {g.addInput("x", {ir::DType::f64, {1, 1, 4, 4}})}, attrs));
  expectMatchesReference(g, Values::Smooth, false, 0);
}
