// Contractions: matmul with broadcast batches and transposes; attention.
#include "ref_test_util.h"

using namespace reftest;

TEST(Matmul, PlainAndBatchedWithBroadcastRhs) {
  for (DType dt : {DType::f32, DType::f64}) {
    SCOPED_TRACE(std::string(dtypeName(dt)));
    TensorData a = tensor(dt, {2, 3}, {1, 2, 3, 4, 5, 6});
    TensorData b = tensor(dt, {3, 2}, {1, 2, 3, 4, 5, 6});
    expectTensor(runOp(OpKind::Matmul, {a, b}), dt, {2, 2}, {22, 28, 49, 64});
    TensorData batched = tensor(dt, {2, 2, 3}, {1, 2, 3, 4, 5, 6, 1, 0, 0, 0, 1, 0});
    expectTensor(runOp(OpKind::Matmul, {batched, b}), dt, {2, 2, 2}, {22, 28, 49, 64, 1, 2, 3, 4});
  }
}

TEST(Matmul, BothBatchDimsBroadcast) {
  // lhs [2,1,1,2] rows {1,2}, {3,4}; rhs [1,3,2,1] columns {1,1}, {1,0}, {0,1}.
  TensorData lhs = f32({2, 1, 1, 2}, {1, 2, 3, 4});
  TensorData rhs = f32({1, 3, 2, 1}, {1, 1, 1, 0, 0, 1});
  expectTensor(runOp(OpKind::Matmul, {lhs, rhs}), DType::f32, {2, 3, 1, 1}, {3, 1, 2, 7, 3, 4});
}

TEST(Matmul, Transposes) {
  TensorData aT = f64({3, 2}, {1, 4, 2, 5, 3, 6});  // [[1,2,3],[4,5,6]] transposed
  TensorData b = f64({3, 2}, {1, 2, 3, 4, 5, 6});
  TensorData bT = f64({2, 3}, {1, 3, 5, 2, 4, 6});
  TensorData a = f64({2, 3}, {1, 2, 3, 4, 5, 6});
  std::vector<double> want = {22, 28, 49, 64};
  expectTensor(runOp(OpKind::Matmul, {aT, b}, {{"transpose_lhs", I(1)}}), DType::f64, {2, 2}, want);
  expectTensor(runOp(OpKind::Matmul, {a, bT}, {{"transpose_rhs", I(1)}}), DType::f64, {2, 2}, want);
  expectTensor(runOp(OpKind::Matmul, {aT, bT}, {{"transpose_lhs", I(1)}, {"transpose_rhs", I(1)}}), DType::f64,
               {2, 2}, want);
  expectTensor(runOp(OpKind::Matmul, {a, b}, {{"transpose_lhs", I(0)}, {"transpose_rhs", I(0)}}), DType::f64, {2, 2},
               want);
}

TEST(Attention, CausalAndFull) {
  // One batch, T = 2, D = 1; k = {0, ln 3} so that the unmasked weights of a row are {1/4, 3/4}.
  TensorData q = f64({1, 2, 1}, {1, 1});
  TensorData k = f64({1, 2, 1}, {0, std::log(3.0)});
  TensorData v = f64({1, 2, 2}, {10, 0, 20, 4});
  expectTensor(runOp(OpKind::Attention, {q, k, v}, {{"causal", I(1)}, {"scale", F(1)}}), DType::f64, {1, 2, 2},
               {10, 0, 17.5, 3});
  expectTensor(runOp(OpKind::Attention, {q, k, v}, {{"causal", I(0)}, {"scale", F(1)}}), DType::f64, {1, 2, 2},
               {17.5, 3, 17.5, 3});
  // scale multiplies the scores: k / 2 with scale 2 is the same.
  TensorData kHalf = f32({1, 2, 1}, {0, std::log(3.0) / 2});
  TensorData q32 = f32({1, 2, 1}, {1, 1}), v32 = f32({1, 2, 2}, {10, 0, 20, 4});
  expectTensor(runOp(OpKind::Attention, {q32, kHalf, v32}, {{"causal", I(1)}, {"scale", F(2)}}), DType::f32,
               {1, 2, 2}, {10, 0, 17.5, 3}, 1e-5);
}

TEST(Attention, BatchesAreIndependent) {
  // Two heads [2, 1, 1]: a single key means the output is that key's value.
  TensorData q = f32({2, 1, 1}, {1, 1}), k = f32({2, 1, 1}, {5, -5}), v = f32({2, 1, 1}, {7, -3});
  expectTensor(runOp(OpKind::Attention, {q, k, v}, {{"causal", I(0)}, {"scale", F(1)}}), DType::f32, {2, 1, 1},
               {7, -3});
}
