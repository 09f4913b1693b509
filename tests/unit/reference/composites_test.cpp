// The composites, checked against values computed by hand from their definitions.
#include "ref_test_util.h"

using namespace reftest;

TEST(Activations, ReluLeakyReluGeluSiluSoftplus) {
  for (DType dt : {DType::f32, DType::f64}) {
    SCOPED_TRACE(std::string(dtypeName(dt)));
    TensorData x = tensor(dt, {3}, {-2, 0, 3});
    expectTensor(runOp(OpKind::Relu, {x}), dt, {3}, {0, 0, 3});
    expectTensor(runOp(OpKind::LeakyRelu, {x}, {{"alpha", F(0.1)}}), dt, {3}, {-0.2, 0, 3});
    TensorData ones = tensor(dt, {2}, {1, -1});
    expectTensor(runOp(OpKind::Gelu, {ones}, {{"approximate", I(0)}}), dt, {2}, {0.8413447461, -0.1586552539});
    expectTensor(runOp(OpKind::Gelu, {ones}, {{"approximate", I(1)}}), dt, {2}, {0.8411919906, -0.1588080094});
    expectTensor(runOp(OpKind::Silu, {tensor(dt, {2}, {1, -2})}), dt, {2}, {0.7310585786, -0.2384058440});
  }
  TensorData s = runOp(OpKind::Softplus, {f64({3}, {0, 100, -100})});
  expectTensor(s, DType::f64, {3}, {0.6931471806, 100, 0});
  EXPECT_NEAR(s.get(2), 3.720075976e-44, 1e-52);  // log1p form keeps the tiny tail
  EXPECT_TRUE(std::isnan(runOp(OpKind::Relu, {f32({1}, {NAN})}).get(0)));
}

TEST(Softmax, KnownValuesAndRowsSumToOne) {
  for (DType dt : {DType::f32, DType::f64}) {
    SCOPED_TRACE(std::string(dtypeName(dt)));
    TensorData x = tensor(dt, {2, 3}, {1, 2, 3, 0, 0, 0});
    TensorData s = runOp(OpKind::Softmax, {x}, {{"axis", I(1)}});
    expectTensor(s, dt, {2, 3}, {0.0900305732, 0.2447284711, 0.6652409558, 1.0 / 3, 1.0 / 3, 1.0 / 3});
    for (int r = 0; r < 2; ++r) EXPECT_NEAR(s.get(3 * r) + s.get(3 * r + 1) + s.get(3 * r + 2), 1.0, 1e-6);
    expectTensor(runOp(OpKind::LogSoftmax, {x}, {{"axis", I(1)}}), dt, {2, 3},
                 {-2.4076059644, -1.4076059644, -0.4076059644, -1.0986122887, -1.0986122887, -1.0986122887});
  }
  // Large logits do not overflow; softmax along axis 0 normalizes columns.
  expectTensor(runOp(OpKind::Softmax, {f32({3}, {1001, 1002, 1003})}, {{"axis", I(0)}}), DType::f32, {3},
               {0.0900305732, 0.2447284711, 0.6652409558});
  expectTensor(runOp(OpKind::Softmax, {f64({2, 2}, {0, 5, 0, 5})}, {{"axis", I(0)}}), DType::f64, {2, 2},
               {0.5, 0.5, 0.5, 0.5});
}

TEST(Norms, LayerNorm) {
  TensorData x = f32({1, 4}, {1, 2, 3, 4});
  TensorData gamma = f32({4}, {1, 1, 2, 1}), beta = f32({4}, {0, 0, 0, 1});
  expectTensor(runOp(OpKind::LayerNorm, {x, gamma, beta}, {{"axis", I(1)}, {"eps", F(0)}}), DType::f32, {1, 4},
               {-1.3416407865, -0.4472135955, 0.894427191, 2.3416407865}, 1e-5);
  // eps enters under the square root: mean 1, variance 1, eps 3 -> divide by 2.
  TensorData y = f64({2, 2}, {0, 2, 5, 7});
  expectTensor(runOp(OpKind::LayerNorm, {y, f64({2}, {1, 1}), f64({2}, {0, 0})}, {{"axis", I(1)}, {"eps", F(3)}}),
               DType::f64, {2, 2}, {-0.5, 0.5, -0.5, 0.5});
  // axis 0 normalizes the whole tensor.
  expectTensor(runOp(OpKind::LayerNorm, {f64({2, 2}, {1, 2, 3, 4}), f64({2, 2}, {1, 1, 1, 1}), f64({2, 2}, {0, 0, 0, 0})},
                     {{"axis", I(0)}, {"eps", F(0)}}),
               DType::f64, {2, 2}, {-1.3416407865, -0.4472135955, 0.4472135955, 1.3416407865});
}

TEST(Norms, BatchNormUsesBatchStatisticsPerChannel) {
  // Channel 0 holds {1,2,3,6}: mean 3, var 3.5; channel 1 holds {0,0,4,-4}: mean 0, var 8.
  TensorData x = f64({2, 2, 2}, {1, 2, 0, 0, 3, 6, 4, -4});
  TensorData gamma = f64({2}, {1, 1}), beta = f64({2}, {0, 0});
  double c1 = 4 / std::sqrt(8.5);
  expectTensor(runOp(OpKind::BatchNorm, {x, gamma, beta}, {{"eps", F(0.5)}}), DType::f64, {2, 2, 2},
               {-1, -0.5, 0, 0, 0, 1.5, c1, -c1});
  // gamma and beta are per channel.
  TensorData z = f32({2, 2}, {1, 10, 3, 30});
  expectTensor(runOp(OpKind::BatchNorm, {z, f32({2}, {1, 2}), f32({2}, {0, 5})}, {{"eps", F(0)}}), DType::f32, {2, 2},
               {-1, 3, 1, 7});
}

TEST(Norms, BatchNormInferUsesTheGivenStatistics) {
  TensorData x = f32({1, 2, 1}, {3, 10});
  expectTensor(runOp(OpKind::BatchNormInfer,
                     {x, f32({2}, {2, 1}), f32({2}, {0, 1}), f32({2}, {1, 4}), f32({2}, {4, 9})}, {{"eps", F(0)}}),
               DType::f32, {1, 2, 1}, {2, 3});
}

TEST(Norms, GroupNorm) {
  TensorData x = f32({1, 4, 1}, {1, 3, 10, 30});
  expectTensor(runOp(OpKind::GroupNorm, {x, f32({4}, {1, 1, 1, 2}), f32({4}, {0, 0, 0, 1})},
                     {{"groups", I(2)}, {"eps", F(0)}}),
               DType::f32, {1, 4, 1}, {-1, 1, -1, 3});
  // One group per sample spans channels and spatial positions.
  TensorData y = f64({2, 2, 2}, {1, 1, 3, 3, 5, 5, 5, 5});
  double r = 1 / std::sqrt(1.00001);
  expectTensor(runOp(OpKind::GroupNorm, {y, f64({2}, {1, 1}), f64({2}, {0, 0})}, {{"groups", I(1)}, {"eps", F(1e-5)}}),
               DType::f64, {2, 2, 2}, {-r, -r, r, r, 0, 0, 0, 0});
}

TEST(Losses, CrossEntropy) {
  TensorData logits = f32({2, 3}, {1, 2, 3, 0, 0, 0});
  TensorData labels = i64({2}, {2, 0});
  expectTensor(runOp(OpKind::CrossEntropy, {logits, labels}, {{"reduce", S("none")}}), DType::f32, {2},
               {0.4076059644, 1.0986122887});
  expectTensor(runOp(OpKind::CrossEntropy, {logits, labels}, {{"reduce", S("mean")}}), DType::f32, {},
               {0.7531091266});
  expectTensor(runOp(OpKind::CrossEntropy, {logits, labels}, {{"reduce", S("sum")}}), DType::f32, {}, {1.5062182531});
  // Rank-1 logits are one sample; i32 labels work too.
  expectTensor(runOp(OpKind::CrossEntropy, {f64({3}, {1, 2, 3}), tensor(DType::i32, {}, {2})}, {{"reduce", S("mean")}}),
               DType::f64, {}, {0.4076059644});
}

TEST(Losses, CrossEntropyLabelOutOfRangeIsAnError) {
  TensorData logits = f32({2, 3}, {1, 2, 3, 0, 0, 0});
  expectError([&] { runOp(OpKind::CrossEntropy, {logits, i64({2}, {0, 3})}, {{"reduce", S("mean")}}); },
              {"cross_entropy %y", "label 3", "position 1", "%in1", "[0, 3)"});
  expectError([&] { runOp(OpKind::CrossEntropy, {logits, i64({2}, {-1, 0})}, {{"reduce", S("sum")}}); },
              {"cross_entropy %y", "label -1"});
}

TEST(Losses, BceWithLogitsAndMse) {
  for (DType dt : {DType::f32, DType::f64}) {
    SCOPED_TRACE(std::string(dtypeName(dt)));
    TensorData x = tensor(dt, {3}, {0, 2, -1}), t = tensor(dt, {3}, {1, 0, 1});
    expectTensor(runOp(OpKind::BceWithLogits, {x, t}, {{"reduce", S("none")}}), dt, {3},
                 {0.6931471806, 2.1269280110, 1.3132616875});
    expectTensor(runOp(OpKind::BceWithLogits, {x, t}, {{"reduce", S("mean")}}), dt, {}, {1.3777789597});
    expectTensor(runOp(OpKind::BceWithLogits, {x, t}, {{"reduce", S("sum")}}), dt, {}, {4.1333368791}, 1e-5);
    TensorData a = tensor(dt, {3}, {1, 2, 3}), b = tensor(dt, {3}, {1, 0, 6});
    expectTensor(runOp(OpKind::MseLoss, {a, b}, {{"reduce", S("none")}}), dt, {3}, {0, 4, 9});
    expectTensor(runOp(OpKind::MseLoss, {a, b}, {{"reduce", S("mean")}}), dt, {}, {13.0 / 3});
    expectTensor(runOp(OpKind::MseLoss, {a, b}, {{"reduce", S("sum")}}), dt, {}, {13});
  }
  // Large logits stay finite.
  expectTensor(runOp(OpKind::BceWithLogits, {f64({2}, {800, -800}), f64({2}, {1, 0})}, {{"reduce", S("none")}}),
               DType::f64, {2}, {0, 0});
}
