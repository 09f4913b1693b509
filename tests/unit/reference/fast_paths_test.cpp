// The typed f32/f64 fast paths of the reference kernels against the generic per-element
// paths (switched off with setFastPathsEnabled(false)), against f64 results for f32 inputs,
// and against hand-computed values where tiles, strips and broadcast rows have edges.
#include <cstring>
#include <limits>

#include "backends/reference/fast_paths.h"
#include "ref_test_util.h"

using namespace reftest;
using weft::reference::BroadcastWalk;
using weft::reference::setFastPathsEnabled;

namespace {

/// Deterministic values in [-1, 1) from a small linear congruential generator.
std::vector<double> pseudoRandom(int64_t count, uint32_t seed) {
  std::vector<double> v;
  uint32_t state = seed * 2654435761u + 1;
  for (int64_t i = 0; i < count; ++i) {
    state = state * 1664525u + 1013904223u;
    v.push_back(static_cast<double>(state >> 8) / static_cast<double>(1u << 23) - 1.0);
  }
  return v;
}

/// A tensor of pseudo-random values (exactly representable in f32, so that the f32 and f64
/// versions of a tensor hold the same numbers).
TensorData randomTensor(DType dt, Shape shape, uint32_t seed) {
  std::vector<double> v = pseudoRandom(numElements(shape), seed);
  for (double& x : v) x = static_cast<float>(x);
  return tensor(dt, std::move(shape), v);
}

/// Switches the fast paths off for its lifetime.
struct GenericPathsOnly {
  GenericPathsOnly() { setFastPathsEnabled(false); }
  ~GenericPathsOnly() { setFastPathsEnabled(true); }
};

/// The op's result with the generic kernels.
TensorData runGeneric(OpKind op, const std::vector<TensorData>& operands, Attrs attrs = {}) {
  GenericPathsOnly generic;
  return runOp(op, operands, std::move(attrs));
}

/// The fast and the generic path give bit-identical results.
void expectSameAsGeneric(OpKind op, const std::vector<TensorData>& operands, Attrs attrs = {}) {
  TensorData fast = runOp(op, operands, attrs);
  TensorData generic = runGeneric(op, operands, attrs);
  ASSERT_EQ(fast.type, generic.type);
  for (int64_t i = 0; i < fast.numel(); ++i) {
    double f = fast.get(i), g = generic.get(i);
    if (std::isnan(g)) EXPECT_TRUE(std::isnan(f)) << "element " << i;
    else EXPECT_EQ(f, g) << "element " << i;
  }
  EXPECT_TRUE(fast == generic) << "results differ in their bytes";
}

/// The fast and the generic path agree within `relTol` of the largest magnitude.
void expectCloseToGeneric(OpKind op, const std::vector<TensorData>& operands, Attrs attrs, double relTol) {
  TensorData fast = runOp(op, operands, attrs);
  TensorData generic = runGeneric(op, operands, attrs);
  ASSERT_EQ(fast.type, generic.type);
  double scale = 1e-30;
  for (int64_t i = 0; i < generic.numel(); ++i) scale = std::max(scale, std::fabs(generic.get(i)));
  for (int64_t i = 0; i < fast.numel(); ++i)
    EXPECT_NEAR(fast.get(i), generic.get(i), relTol * scale) << "element " << i;
}

/// The op on f32 operands agrees with the op on the same values in f64 (the f32 fast path
/// accumulates in double and rounds once per element).
void expectF32MatchesF64(OpKind op, const std::vector<TensorData>& f32Operands, Attrs attrs) {
  std::vector<TensorData> f64Operands;
  for (const TensorData& t : f32Operands) f64Operands.push_back(tensor(DType::f64, t.type.shape, valuesOf(t)));
  TensorData single = runOp(op, f32Operands, attrs), dbl = runOp(op, f64Operands, attrs);
  ASSERT_EQ(single.type.shape, dbl.type.shape);
  for (int64_t i = 0; i < single.numel(); ++i) {
    double want = dbl.get(i);
    EXPECT_NEAR(single.get(i), want, 1e-7 * std::max(1.0, std::fabs(want))) << "element " << i;
  }
}

Attrs convAttrs(std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation,
                int64_t groups) {
  return {{"stride", ints(stride)}, {"padding", ints(padding)}, {"dilation", ints(dilation)}, {"groups", I(groups)}};
}

Attrs reduceAttrs(std::vector<int64_t> axes, int64_t keep) {
  return {{"axes", ints(std::move(axes))}, {"keepdims", I(keep)}};
}

}  // namespace

// ---- the broadcast walk ------------------------------------------------------------------

TEST(BroadcastWalk, MergesContiguousDimsIntoLongRows) {
  // [2,3,4] + [2,3,4]: one row of 24; + [4]: six rows of 4 restarting at 0; + [2,1,1]: rows
  // of 12 in which that operand stays put.
  BroadcastWalk<2> same({2, 3, 4}, {Shape{2, 3, 4}, Shape{4}});
  EXPECT_EQ(same.rowLength(), 4);
  std::vector<std::array<int64_t, 3>> rows;
  same.forEachRow([&](int64_t out, const std::array<int64_t, 2>& at) { rows.push_back({out, at[0], at[1]}); });
  ASSERT_EQ(rows.size(), 6u);
  for (size_t r = 0; r < rows.size(); ++r) {
    auto o = static_cast<int64_t>(r * 4);
    EXPECT_EQ(rows[r], (std::array<int64_t, 3>{o, o, 0}));
  }
  BroadcastWalk<1> alone({2, 3, 4}, {Shape{2, 3, 4}});
  EXPECT_EQ(alone.rowLength(), 24);
  EXPECT_EQ(alone.step(0), 1);
  BroadcastWalk<1> perBatch({2, 3, 4}, {Shape{2, 1, 1}});
  EXPECT_EQ(perBatch.rowLength(), 12);
  EXPECT_EQ(perBatch.step(0), 0);
  std::vector<int64_t> starts;
  perBatch.forEachRow([&](int64_t, const std::array<int64_t, 1>& at) { starts.push_back(at[0]); });
  EXPECT_EQ(starts, (std::vector<int64_t>{0, 1}));
}

TEST(BroadcastWalk, MiddleBroadcastAndScalars) {
  // [2,1,3] against out [2,4,3]: rows of 3 that restart at 0, 0, 0, 0, 3, 3, 3, 3.
  BroadcastWalk<1> middle({2, 4, 3}, {Shape{2, 1, 3}});
  EXPECT_EQ(middle.rowLength(), 3);
  std::vector<int64_t> starts;
  middle.forEachRow([&](int64_t, const std::array<int64_t, 1>& at) { starts.push_back(at[0]); });
  EXPECT_EQ(starts, (std::vector<int64_t>{0, 0, 0, 0, 3, 3, 3, 3}));
  BroadcastWalk<1> scalar({}, {Shape{}});
  int calls = 0;
  scalar.forEachRow([&](int64_t out, const std::array<int64_t, 1>& at) { calls += (out == 0 && at[0] == 0); });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(scalar.rowLength(), 1);
  BroadcastWalk<1> empty({3, 0}, {Shape{3, 1}});
  empty.forEachRow([&](int64_t, const std::array<int64_t, 1>&) { ++calls; });
  EXPECT_EQ(calls, 1);
}

// ---- matmul ------------------------------------------------------------------------------

TEST(FastMatmul, TileAndStripEdgesByHand) {
  // a[i][p] = i + 1, b[p][j] = j + 1, so c[i][j] = k (i + 1)(j + 1); 5 x 9 leaves a partial
  // row tile and a partial column strip.
  const int64_t m = 5, k = 6, n = 9;
  std::vector<double> av, bv, want;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t p = 0; p < k; ++p) av.push_back(static_cast<double>(i + 1));
  for (int64_t p = 0; p < k; ++p)
    for (int64_t j = 0; j < n; ++j) bv.push_back(static_cast<double>(j + 1));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) want.push_back(static_cast<double>(k * (i + 1) * (j + 1)));
  for (DType dt : {DType::f32, DType::f64}) {
    SCOPED_TRACE(std::string(dtypeName(dt)));
    expectTensor(runOp(OpKind::Matmul, {tensor(dt, {m, k}, av), tensor(dt, {k, n}, bv)}), dt, {m, n}, want, 0);
  }
}

TEST(FastMatmul, MatchesGenericOnOddShapesTransposesAndBroadcastBatches) {
  for (DType dt : {DType::f32, DType::f64}) {
    SCOPED_TRACE(std::string(dtypeName(dt)));
    expectSameAsGeneric(OpKind::Matmul, {randomTensor(dt, {7, 13}, 1), randomTensor(dt, {13, 5}, 2)});
    expectSameAsGeneric(OpKind::Matmul, {randomTensor(dt, {1, 1}, 3), randomTensor(dt, {1, 17}, 4)});
    // [3,1,M,K] x [4,K,N] with every transpose combination.
    for (int tl = 0; tl < 2; ++tl)
      for (int tr = 0; tr < 2; ++tr) {
        SCOPED_TRACE("transpose_lhs " + std::to_string(tl) + " transpose_rhs " + std::to_string(tr));
        Shape ls = tl ? Shape{3, 1, 11, 6} : Shape{3, 1, 6, 11};
        Shape rs = tr ? Shape{4, 9, 11} : Shape{4, 11, 9};
        expectSameAsGeneric(OpKind::Matmul, {randomTensor(dt, ls, 5), randomTensor(dt, rs, 6)},
                            {{"transpose_lhs", I(tl)}, {"transpose_rhs", I(tr)}});
      }
  }
  expectF32MatchesF64(OpKind::Matmul, {randomTensor(DType::f32, {2, 9, 70}, 7), randomTensor(DType::f32, {70, 10}, 8)},
                      {{"transpose_rhs", I(0)}});
}

TEST(FastMatmul, LargeProductSplitAcrossThreadsMatchesGeneric) {
  // 96 x 300 x 400 = 11.5 M multiply-adds: above the threshold for two threads.
  for (DType dt : {DType::f32, DType::f64}) {
    SCOPED_TRACE(std::string(dtypeName(dt)));
    expectSameAsGeneric(OpKind::Matmul, {randomTensor(dt, {96, 300}, 9), randomTensor(dt, {300, 400}, 10)});
  }
}

TEST(FastMatmul, EmptyContractionAndNonFiniteValues) {
  expectTensor(runOp(OpKind::Matmul, {f64({2, 0}, {}), f64({0, 3}, {})}), DType::f64, {2, 3}, {0, 0, 0, 0, 0, 0});
  const double inf = std::numeric_limits<double>::infinity();
  TensorData a = f32({2, 2}, {inf, 1, 2, 3}), b = f32({2, 2}, {0, 1, 1, -1});
  // Row 0: inf * 0 = NaN, inf * 1 + 1 * -1 = inf.
  expectTensor(runOp(OpKind::Matmul, {a, b}), DType::f32, {2, 2}, {NAN, inf, 3, -1});
  expectSameAsGeneric(OpKind::Matmul, {a, b});
}

// ---- conv and pools ----------------------------------------------------------------------

TEST(FastConv, MatchesGenericWithStridePaddingDilationAndGroups) {
  for (DType dt : {DType::f32, DType::f64}) {
    SCOPED_TRACE(std::string(dtypeName(dt)));
    TensorData x = randomTensor(dt, {3, 4, 9, 8}, 11), w = randomTensor(dt, {6, 2, 3, 2}, 12);
    expectSameAsGeneric(OpKind::Conv, {x, w}, convAttrs({2, 1}, {1, 2}, {2, 1}, 2));
    expectSameAsGeneric(OpKind::Conv, {x, randomTensor(dt, {5, 4, 1, 1}, 13)}, convAttrs({1, 1}, {0, 0}, {1, 1}, 1));
    // 1-D and 3-D.
    expectSameAsGeneric(OpKind::Conv, {randomTensor(dt, {2, 3, 11}, 14), randomTensor(dt, {4, 3, 3}, 15)},
                        convAttrs({2}, {1}, {2}, 1));
    expectSameAsGeneric(OpKind::Conv, {randomTensor(dt, {1, 2, 4, 5, 3}, 16), randomTensor(dt, {2, 1, 2, 3, 2}, 17)},
                        convAttrs({1, 2, 1}, {1, 0, 1}, {1, 1, 2}, 2));
  }
  TensorData x = randomTensor(DType::f32, {2, 6, 7, 7}, 18), w = randomTensor(DType::f32, {9, 2, 3, 3}, 19);
  expectF32MatchesF64(OpKind::Conv, {x, w}, convAttrs({1, 1}, {1, 1}, {1, 1}, 3));
}

TEST(FastConv, LenetSizedConvSplitAcrossThreadsMatchesGeneric) {
  // 8 x 64 x 121 x 288 = 17.8 M multiply-adds.
  TensorData x = randomTensor(DType::f32, {8, 32, 13, 13}, 20), w = randomTensor(DType::f32, {64, 32, 3, 3}, 21);
  expectSameAsGeneric(OpKind::Conv, {x, w}, convAttrs({1, 1}, {0, 0}, {1, 1}, 1));
}

TEST(FastConvTranspose, MatchesGenericUpToRounding) {
  for (DType dt : {DType::f32, DType::f64}) {
    SCOPED_TRACE(std::string(dtypeName(dt)));
    double tol = dt == DType::f32 ? 1e-6 : 1e-13;
    Attrs a = {{"stride", ints({2, 3})}, {"padding", ints({1, 0})}, {"output_padding", ints({1, 2})},
               {"dilation", ints({1, 2})}, {"groups", I(2)}};
    TensorData x = randomTensor(dt, {3, 4, 5, 4}, 22), w = randomTensor(dt, {4, 3, 3, 2}, 23);
    expectCloseToGeneric(OpKind::ConvTranspose, {x, w}, a, tol);
    Attrs oneD = {{"stride", ints({1})}, {"padding", ints({2})}, {"output_padding", ints({0})},
                  {"dilation", ints({1})}, {"groups", I(1)}};
    expectCloseToGeneric(OpKind::ConvTranspose, {randomTensor(dt, {2, 3, 9}, 24), randomTensor(dt, {3, 2, 5}, 25)},
                         oneD, tol);
  }
}

TEST(FastPool, MatchesGenericWithPaddingAndNaN) {
  Attrs a = {{"window", ints({3, 2})}, {"stride", ints({2, 1})}, {"padding", ints({1, 1})}};
  for (DType dt : {DType::f32, DType::f64}) {
    SCOPED_TRACE(std::string(dtypeName(dt)));
    TensorData x = randomTensor(dt, {2, 3, 7, 6}, 26);
    x.set(5, NAN);
    expectSameAsGeneric(OpKind::MaxPool, {x}, a);
    expectSameAsGeneric(OpKind::AvgPool, {x}, a);
  }
}

// ---- elementwise -------------------------------------------------------------------------

TEST(FastElementwise, MiddleBroadcastByHand) {
  // [2,1,3] + [4,1] -> [2,4,3]: out[a][b][c] = x[a][c] + y[b].
  TensorData x = f32({2, 1, 3}, {0, 1, 2, 10, 11, 12}), y = f32({4, 1}, {100, 200, 300, 400});
  std::vector<double> want;
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 4; ++b)
      for (int c = 0; c < 3; ++c) want.push_back(10 * a + c + 100 * (b + 1));
  expectTensor(runOp(OpKind::Add, {x, y}), DType::f32, {2, 4, 3}, want, 0);
}

TEST(FastElementwise, BinaryOpsMatchGenericForEveryBroadcastPattern) {
  std::vector<std::pair<Shape, Shape>> patterns = {
      {{4, 5}, {4, 5}}, {{}, {4, 5}}, {{4, 5}, {}}, {{4, 5}, {5}}, {{4, 1}, {1, 5}},
      {{2, 1, 3}, {4, 1}}, {{3, 1, 1}, {3, 2, 2}}, {{0, 3}, {3}}, {{}, {}}};
  for (DType dt : {DType::f32, DType::f64})
    for (const auto& [sa, sb] : patterns) {
      SCOPED_TRACE(std::string(dtypeName(dt)) + " " + shapeStr(sa) + " with " + shapeStr(sb));
      TensorData a = randomTensor(dt, sa, 27), b = randomTensor(dt, sb, 28);
      for (OpKind op : {OpKind::Add, OpKind::Sub, OpKind::Mul, OpKind::Div, OpKind::Maximum, OpKind::Lt, OpKind::Ge})
        expectSameAsGeneric(op, {a, b});
    }
}

TEST(FastElementwise, NaNZeroDivisionAndUnaryMaps) {
  for (DType dt : {DType::f32, DType::f64}) {
    SCOPED_TRACE(std::string(dtypeName(dt)));
    TensorData a = tensor(dt, {4}, {NAN, 1, -1, 0}), b = tensor(dt, {4}, {2, NAN, 0, 0});
    expectTensor(runOp(OpKind::Maximum, {a, b}), dt, {4}, {NAN, NAN, 0, 0});
    expectTensor(runOp(OpKind::Div, {a, b}), dt, {4}, {NAN, NAN, -INFINITY, NAN});
    expectTensor(runOp(OpKind::Eq, {a, b}), DType::boolean, {4}, {0, 0, 0, 1});
    TensorData x = randomTensor(dt, {3, 7}, 29);
    for (OpKind op : {OpKind::Exp, OpKind::Tanh, OpKind::Neg, OpKind::Abs, OpKind::Sigmoid})
      expectSameAsGeneric(op, {x});
  }
}

TEST(FastElementwise, SelectWithBroadcastCondition) {
  TensorData cond = tensor(DType::boolean, {3, 1}, {1, 0, 1});
  for (DType dt : {DType::f32, DType::f64}) {
    SCOPED_TRACE(std::string(dtypeName(dt)));
    TensorData onTrue = tensor(dt, {1, 2}, {1, 2}), onFalse = tensor(dt, {3, 2}, {10, 20, 30, 40, 50, 60});
    expectTensor(runOp(OpKind::Select, {cond, onTrue, onFalse}), dt, {3, 2}, {1, 2, 30, 40, 1, 2}, 0);
    expectSameAsGeneric(OpKind::Select, {cond, onTrue, onFalse});
  }
}

// ---- reductions --------------------------------------------------------------------------

TEST(FastReduce, MatchesGenericOverAxisPatterns) {
  std::vector<std::vector<int64_t>> axesList = {{}, {0}, {2}, {1}, {0, 2}, {1, 2}, {0, 1, 2}};
  for (DType dt : {DType::f32, DType::f64}) {
    TensorData x = randomTensor(dt, {3, 4, 5}, 30);
    x.set(7, NAN);
    TensorData finite = randomTensor(dt, {3, 4, 5}, 31);
    for (const auto& axes : axesList)
      for (int64_t keep : {0, 1}) {
        SCOPED_TRACE(std::string(dtypeName(dt)) + " axes of size " + std::to_string(axes.size()) + " keep " +
                     std::to_string(keep));
        for (OpKind op : {OpKind::ReduceSum, OpKind::ReduceMax, OpKind::ReduceMin, OpKind::ReduceMean,
                          OpKind::LogSumExp}) {
          expectSameAsGeneric(op, {finite}, reduceAttrs(axes, keep));
          expectSameAsGeneric(op, {x}, reduceAttrs(axes, keep));
        }
      }
    for (int64_t axis : {0, 1, 2}) {
      expectSameAsGeneric(OpKind::Argmax, {x}, {{"axis", I(axis)}, {"keepdims", I(0)}});
      expectSameAsGeneric(OpKind::Argmin, {finite}, {{"axis", I(axis)}, {"keepdims", I(1)}});
    }
  }
}

TEST(FastReduce, BiasGradientShapesByHand) {
  // Summing [N, C, HW] over {0, 2}: x[n][c][s] = 100 n + 10 c + s with N = 2, HW = 3 gives
  // 2 * (30 c) + (0 + 100) * 3 + 2 * (0 + 1 + 2) = 60 c + 306.
  std::vector<double> v;
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 4; ++c)
      for (int s = 0; s < 3; ++s) v.push_back(100 * n + 10 * c + s);
  expectTensor(runOp(OpKind::ReduceSum, {f32({2, 4, 3}, v)}, reduceAttrs({0, 2}, 0)), DType::f32, {4},
               {306, 366, 426, 486}, 0);
  // Summing [N, F] over 0 (a linear layer's bias gradient).
  expectTensor(runOp(OpKind::ReduceSum, {f64({3, 2}, {1, 2, 3, 4, 5, 6})}, reduceAttrs({0}, 0)), DType::f64, {2},
               {9, 12}, 0);
}
