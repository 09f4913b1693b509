// Data movement: reshape, transpose, broadcast, slice, concat, pad, gather, scatter_add.
#include "ref_test_util.h"

using namespace reftest;

namespace {
std::vector<double> iotaValues(int n) {
  std::vector<double> v;
  for (int i = 0; i < n; ++i) v.push_back(i);
  return v;
}
}  // namespace

TEST(Movement, ReshapeKeepsTheOrder) {
  expectTensor(runOp(OpKind::Reshape, {f32({2, 3}, iotaValues(6))}, {{"shape", ints({3, 1, 2})}}), DType::f32,
               {3, 1, 2}, iotaValues(6));
}

TEST(Movement, Transpose) {
  expectTensor(runOp(OpKind::Transpose, {f32({2, 3}, {1, 2, 3, 4, 5, 6})}, {{"perm", ints({1, 0})}}), DType::f32,
               {3, 2}, {1, 4, 2, 5, 3, 6});
  // out[a][b][c] = x[b][c][a] = 12b + 4c + a.
  TensorData out = runOp(OpKind::Transpose, {i64({2, 3, 4}, iotaValues(24))}, {{"perm", ints({2, 0, 1})}});
  std::vector<double> want;
  for (int a = 0; a < 4; ++a)
    for (int b = 0; b < 2; ++b)
      for (int c = 0; c < 3; ++c) want.push_back(12 * b + 4 * c + a);
  expectTensor(out, DType::i64, {4, 2, 3}, want);
}

TEST(Movement, Broadcast) {
  expectTensor(runOp(OpKind::Broadcast, {f64({3, 1}, {1, 2, 3})}, {{"shape", ints({2, 3, 2})}}), DType::f64,
               {2, 3, 2}, {1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3});
}

TEST(Movement, SliceWithStride) {
  TensorData x = f32({2, 5}, iotaValues(10));
  auto slice = [&](std::vector<int64_t> s, std::vector<int64_t> l, std::vector<int64_t> st) {
    return runOp(OpKind::Slice, {x}, {{"start", ints(s)}, {"limit", ints(l)}, {"stride", ints(st)}});
  };
  expectTensor(slice({0, 1}, {2, 5}, {1, 2}), DType::f32, {2, 2}, {1, 3, 6, 8});
  expectTensor(slice({1, 0}, {2, 5}, {1, 3}), DType::f32, {1, 2}, {5, 8});
  expectTensor(slice({0, 2}, {2, 2}, {1, 1}), DType::f32, {2, 0}, {});
}

TEST(Movement, Concat) {
  expectTensor(runOp(OpKind::Concat, {f32({2, 1}, {1, 2}), f32({2, 2}, {3, 4, 5, 6})}, {{"axis", I(1)}}), DType::f32,
               {2, 3}, {1, 3, 4, 2, 5, 6});
  expectTensor(runOp(OpKind::Concat, {i64({1, 2}, {1, 2}), i64({2, 2}, {3, 4, 5, 6}), i64({1, 2}, {7, 8})},
                     {{"axis", I(0)}}),
               DType::i64, {4, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
}

TEST(Movement, Pad) {
  TensorData x = f32({2, 2}, {1, 2, 3, 4});
  expectTensor(runOp(OpKind::Pad, {x}, {{"low", ints({1, 0})}, {"high", ints({0, 2})}, {"value", F(-1)}}), DType::f32,
               {3, 4}, {-1, -1, -1, -1, 1, 2, -1, -1, 3, 4, -1, -1});
  expectTensor(runOp(OpKind::Pad, {i64({2}, {5, 6})}, {{"low", ints({2})}, {"high", ints({1})}, {"value", F(0)}}),
               DType::i64, {5}, {0, 0, 5, 6, 0});
}

TEST(Movement, GatherIsNumpyTake) {
  TensorData x = f32({3, 2}, {1, 2, 3, 4, 5, 6});
  expectTensor(runOp(OpKind::Gather, {x, i64({2, 2}, {2, 0, 1, 1})}, {{"axis", I(0)}}), DType::f32, {2, 2, 2},
               {5, 6, 1, 2, 3, 4, 3, 4});
  expectTensor(runOp(OpKind::Gather, {x, tensor(DType::i32, {1}, {1})}, {{"axis", I(1)}}), DType::f32, {3, 1},
               {2, 4, 6});
  expectTensor(runOp(OpKind::Gather, {x, i64({}, {2})}, {{"axis", I(0)}}), DType::f32, {2}, {5, 6});
}

TEST(Movement, ScatterAddAccumulatesRepeatedIndices) {
  TensorData updates = f32({3, 2}, {1, 2, 3, 4, 5, 6});
  expectTensor(runOp(OpKind::ScatterAdd, {f32({3, 2}, {0, 0, 0, 0, 0, 0}), i64({3}, {2, 0, 2}), updates},
                     {{"axis", I(0)}}),
               DType::f32, {3, 2}, {3, 4, 0, 0, 6, 8});
  expectTensor(runOp(OpKind::ScatterAdd, {f64({2, 3}, {1, 1, 1, 1, 1, 1}), i64({2}, {0, 0}), f64({2, 2}, {1, 2, 3, 4})},
                     {{"axis", I(1)}}),
               DType::f64, {2, 3}, {4, 1, 1, 8, 1, 1});
  expectTensor(runOp(OpKind::ScatterAdd, {i64({3}, {10, 20, 30}), tensor(DType::i32, {2}, {1, 1}), i64({2}, {5, 6})},
                     {{"axis", I(0)}}),
               DType::i64, {3}, {10, 31, 30});
}

TEST(Movement, OutOfRangeIndicesAreErrors) {
  TensorData x = f32({3, 2}, {1, 2, 3, 4, 5, 6});
  expectError([&] { runOp(OpKind::Gather, {x, i64({2}, {1, 3})}, {{"axis", I(0)}}); },
              {"gather %y", "index 3", "position 1", "%in1", "[0, 3)"});
  expectError([&] { runOp(OpKind::Gather, {x, i64({1}, {-1})}, {{"axis", I(1)}}); }, {"gather %y", "index -1"});
  expectError([&] { runOp(OpKind::ScatterAdd, {x, i64({1}, {5}), f32({1, 2}, {1, 1})}, {{"axis", I(0)}}); },
              {"scatter_add %y", "index 5", "%in1"});
}
