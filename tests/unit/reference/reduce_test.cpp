// Reductions: reduce_sum/max/min with keepdims, argmax/argmin ties, reduce_mean, logsumexp.
#include "ref_test_util.h"

using namespace reftest;

namespace {
Attrs reduceAttrs(std::vector<int64_t> axes, int64_t keep) { return {{"axes", ints(std::move(axes))}, {"keepdims", I(keep)}}; }
Attrs argAttrs(int64_t axis, int64_t keep) { return {{"axis", I(axis)}, {"keepdims", I(keep)}}; }
}  // namespace

TEST(Reduce, SumMaxMinWithAndWithoutKeepdims) {
  for (DType dt : {DType::f32, DType::f64}) {
    SCOPED_TRACE(std::string(dtypeName(dt)));
    TensorData x = tensor(dt, {2, 3}, {1, 2, 3, 4, 5, 6});
    expectTensor(runOp(OpKind::ReduceSum, {x}, reduceAttrs({1}, 0)), dt, {2}, {6, 15});
    expectTensor(runOp(OpKind::ReduceSum, {x}, reduceAttrs({1}, 1)), dt, {2, 1}, {6, 15});
    expectTensor(runOp(OpKind::ReduceSum, {x}, reduceAttrs({0}, 1)), dt, {1, 3}, {5, 7, 9});
    expectTensor(runOp(OpKind::ReduceSum, {x}, reduceAttrs({0, 1}, 0)), dt, {}, {21});
    expectTensor(runOp(OpKind::ReduceSum, {x}, reduceAttrs({}, 0)), dt, {2, 3}, {1, 2, 3, 4, 5, 6});
    expectTensor(runOp(OpKind::ReduceMax, {x}, reduceAttrs({0}, 0)), dt, {3}, {4, 5, 6});
    expectTensor(runOp(OpKind::ReduceMin, {x}, reduceAttrs({1}, 1)), dt, {2, 1}, {1, 4});
  }
}

TEST(Reduce, NonAdjacentAxes) {
  // x[a][b][c] = 6a + 2b + c; summing a and c leaves 14 + 8b.
  std::vector<double> v;
  for (int i = 0; i < 12; ++i) v.push_back(i);
  TensorData x = f32({2, 3, 2}, v);
  expectTensor(runOp(OpKind::ReduceSum, {x}, reduceAttrs({0, 2}, 1)), DType::f32, {1, 3, 1}, {14, 22, 30});
  expectTensor(runOp(OpKind::ReduceMax, {x}, reduceAttrs({0, 2}, 0)), DType::f32, {3}, {7, 9, 11});
}

TEST(Reduce, IntegerReductionsAreExact) {
  TensorData x = tensor(DType::i32, {2, 2}, {-5, 3, 7, 2});
  expectTensor(runOp(OpKind::ReduceSum, {x}, reduceAttrs({1}, 0)), DType::i32, {2}, {-2, 9});
  expectTensor(runOp(OpKind::ReduceMax, {x}, reduceAttrs({0, 1}, 0)), DType::i32, {}, {7});
  expectTensor(runOp(OpKind::ReduceMin, {x}, reduceAttrs({0}, 0)), DType::i32, {2}, {-5, 2});
  expectTensor(runOp(OpKind::ReduceMean, {x}, reduceAttrs({1}, 0)), DType::i32, {2}, {-1, 4});  // -2/2, 9/2
}

TEST(Reduce, ArgmaxAndArgminTakeTheFirstOfTies) {
  TensorData x = f32({2, 4}, {1, 3, 3, 2, 5, 5, 5, 5});
  expectTensor(runOp(OpKind::Argmax, {x}, argAttrs(1, 0)), DType::i64, {2}, {1, 0});
  expectTensor(runOp(OpKind::Argmin, {x}, argAttrs(1, 0)), DType::i64, {2}, {0, 0});
  expectTensor(runOp(OpKind::Argmax, {x}, argAttrs(0, 1)), DType::i64, {1, 4}, {1, 1, 1, 1});
  TensorData y = f64({2, 4}, {1, 3, 3, 2, 0, 3, 4, 2});
  expectTensor(runOp(OpKind::Argmin, {y}, argAttrs(0, 0)), DType::i64, {4}, {1, 0, 0, 0});
  expectTensor(runOp(OpKind::Argmax, {i64({3}, {-1, 9, 9})}, argAttrs(0, 0)), DType::i64, {}, {1});
}

TEST(Reduce, ReduceMean) {
  TensorData x = f64({2, 3}, {1, 2, 3, 4, 5, 6});
  expectTensor(runOp(OpKind::ReduceMean, {x}, reduceAttrs({1}, 0)), DType::f64, {2}, {2, 5});
  expectTensor(runOp(OpKind::ReduceMean, {x}, reduceAttrs({0, 1}, 1)), DType::f64, {1, 1}, {3.5});
}

TEST(Reduce, LogSumExpIsStable) {
  TensorData x = f32({2, 2}, {0, 0, 1000, 1000});
  expectTensor(runOp(OpKind::LogSumExp, {x}, reduceAttrs({1}, 0)), DType::f32, {2},
               {0.6931471806, 1000.6931471806}, 1e-4);
  TensorData y = f64({3}, {1, 2, 3});
  expectTensor(runOp(OpKind::LogSumExp, {y}, reduceAttrs({0}, 1)), DType::f64, {1}, {3.4076059644});
  expectTensor(runOp(OpKind::LogSumExp, {f64({2}, {-INFINITY, -INFINITY})}, reduceAttrs({0}, 0)), DType::f64, {},
               {-INFINITY});
}
