// Elementwise primitives: unary math, broadcasting binary ops, integer semantics, compare,
// logic, select and cast.
#include <limits>

#include "ref_test_util.h"

using namespace reftest;

TEST(Elementwise, UnaryMathF32AndF64) {
  for (DType dt : {DType::f32, DType::f64}) {
    SCOPED_TRACE(std::string(dtypeName(dt)));
    TensorData x = tensor(dt, {4}, {-2, -0.5, 0, 1});
    expectTensor(runOp(OpKind::Neg, {x}), dt, {4}, {2, 0.5, 0, -1});
    expectTensor(runOp(OpKind::Abs, {x}), dt, {4}, {2, 0.5, 0, 1});
    expectTensor(runOp(OpKind::Exp, {x}), dt, {4}, {0.1353352832, 0.6065306597, 1, 2.7182818285});
    expectTensor(runOp(OpKind::Tanh, {x}), dt, {4}, {-0.9640275801, -0.4621171573, 0, 0.7615941560});
    expectTensor(runOp(OpKind::Sigmoid, {x}), dt, {4}, {0.1192029220, 0.3775406688, 0.5, 0.7310585786});
    expectTensor(runOp(OpKind::Sin, {x}), dt, {4}, {-0.9092974268, -0.4794255386, 0, 0.8414709848});
    expectTensor(runOp(OpKind::Cos, {x}), dt, {4}, {-0.4161468365, 0.8775825619, 1, 0.5403023059});
    expectTensor(runOp(OpKind::Erf, {x}), dt, {4}, {-0.9953222650, -0.5204998778, 0, 0.8427007929});
    expectTensor(runOp(OpKind::Sign, {x}), dt, {4}, {-1, -1, 0, 1});
    expectTensor(runOp(OpKind::Floor, {x}), dt, {4}, {-2, -1, 0, 1});
    TensorData p = tensor(dt, {3}, {0.25, 1, 4});
    expectTensor(runOp(OpKind::Log, {p}), dt, {3}, {-1.3862943611, 0, 1.3862943611});
    expectTensor(runOp(OpKind::Sqrt, {p}), dt, {3}, {0.5, 1, 2});
    expectTensor(runOp(OpKind::Rsqrt, {p}), dt, {3}, {2, 1, 0.5});
  }
}

TEST(Elementwise, SigmoidIsStableForLargeInputs) {
  TensorData s = runOp(OpKind::Sigmoid, {f64({2}, {-800, 800})});
  EXPECT_EQ(s.get(0), 0.0);
  EXPECT_EQ(s.get(1), 1.0);
}

TEST(Elementwise, IntegerUnaryOps) {
  TensorData x = tensor(DType::i32, {3}, {-3, 0, 5});
  expectTensor(runOp(OpKind::Neg, {x}), DType::i32, {3}, {3, 0, -5});
  expectTensor(runOp(OpKind::Abs, {x}), DType::i32, {3}, {3, 0, 5});
  expectTensor(runOp(OpKind::Sign, {x}), DType::i32, {3}, {-1, 0, 1});
  expectTensor(runOp(OpKind::LogicalNot, {tensor(DType::boolean, {2}, {1, 0})}), DType::boolean, {2}, {0, 1});
  expectTensor(runOp(OpKind::StopGradient, {x}), DType::i32, {3}, {-3, 0, 5});
}

TEST(Elementwise, BinaryOpsBroadcast) {
  for (DType dt : {DType::f32, DType::f64}) {
    SCOPED_TRACE(std::string(dtypeName(dt)));
    TensorData a = tensor(dt, {2, 1}, {1, 2});
    TensorData b = tensor(dt, {3}, {10, 20, 30});
    expectTensor(runOp(OpKind::Add, {a, b}), dt, {2, 3}, {11, 21, 31, 12, 22, 32});
    expectTensor(runOp(OpKind::Sub, {a, b}), dt, {2, 3}, {-9, -19, -29, -8, -18, -28});
    expectTensor(runOp(OpKind::Mul, {a, b}), dt, {2, 3}, {10, 20, 30, 20, 40, 60});
    expectTensor(runOp(OpKind::Div, {b, a}), dt, {2, 3}, {10, 20, 30, 5, 10, 15});
    expectTensor(runOp(OpKind::Pow, {a, tensor(dt, {3}, {0, 0.5, 3})}), dt, {2, 3}, {1, 1, 1, 1, 1.4142135624, 8});
    expectTensor(runOp(OpKind::Maximum, {a, tensor(dt, {3}, {0, 1.5, 3})}), dt, {2, 3}, {1, 1.5, 3, 2, 2, 3});
    expectTensor(runOp(OpKind::Minimum, {a, tensor(dt, {3}, {0, 1.5, 3})}), dt, {2, 3}, {0, 1, 1, 0, 1.5, 2});
  }
  // A scalar operand broadcasts against everything.
  expectTensor(runOp(OpKind::Mul, {f32({}, {3}), f32({2, 2}, {1, 2, 3, 4})}), DType::f32, {2, 2}, {3, 6, 9, 12});
}

TEST(Elementwise, MaximumAndMinimumPropagateNaN) {
  double nan = std::numeric_limits<double>::quiet_NaN();
  TensorData a = f64({2}, {nan, 1}), b = f64({2}, {0, nan});
  expectTensor(runOp(OpKind::Maximum, {a, b}), DType::f64, {2}, {nan, nan});
  expectTensor(runOp(OpKind::Minimum, {a, b}), DType::f64, {2}, {nan, nan});
}

TEST(Elementwise, IntegerArithmeticIsExact) {
  TensorData a = tensor(DType::i32, {4}, {-7, 7, 6, -6});
  TensorData b = tensor(DType::i32, {4}, {2, 2, -4, -4});
  expectTensor(runOp(OpKind::Div, {a, b}), DType::i32, {4}, {-3, 3, -1, 1});  // truncates toward zero
  expectTensor(runOp(OpKind::Mul, {a, b}), DType::i32, {4}, {-14, 14, -24, 24});
  // i64 beyond 2^53 stays exact (a double would round 2^53 + 1).
  TensorData big(TensorType{DType::i64, {1}}), one(TensorType{DType::i64, {1}});
  big.as<int64_t>()[0] = (int64_t{1} << 53) + 1;
  one.as<int64_t>()[0] = 1;
  EXPECT_EQ(runOp(OpKind::Add, {big, one}).as<int64_t>()[0], (int64_t{1} << 53) + 2);
  // i32 overflow wraps around.
  TensorData maxI32 = tensor(DType::i32, {1}, {2147483647});
  EXPECT_EQ(runOp(OpKind::Add, {maxI32, tensor(DType::i32, {1}, {1})}).as<int32_t>()[0], -2147483647 - 1);
}

TEST(Elementwise, IntegerDivisionByZeroIsAnError) {
  expectError([] { runOp(OpKind::Div, {tensor(DType::i64, {2}, {1, 2}), tensor(DType::i64, {2}, {1, 0})}); },
              {"div %y", "division by zero"});
  // Floats follow IEEE.
  expectTensor(runOp(OpKind::Div, {f32({1}, {1}), f32({1}, {0})}), DType::f32, {1}, {INFINITY});
}

TEST(Elementwise, ComparisonsAndLogic) {
  TensorData a = f32({3}, {1, 2, 3}), b = f32({1}, {2});
  expectTensor(runOp(OpKind::Eq, {a, b}), DType::boolean, {3}, {0, 1, 0});
  expectTensor(runOp(OpKind::Ne, {a, b}), DType::boolean, {3}, {1, 0, 1});
  expectTensor(runOp(OpKind::Lt, {a, b}), DType::boolean, {3}, {1, 0, 0});
  expectTensor(runOp(OpKind::Le, {a, b}), DType::boolean, {3}, {1, 1, 0});
  expectTensor(runOp(OpKind::Gt, {a, b}), DType::boolean, {3}, {0, 0, 1});
  expectTensor(runOp(OpKind::Ge, {a, b}), DType::boolean, {3}, {0, 1, 1});
  expectTensor(runOp(OpKind::Lt, {i64({2}, {-1, 5}), i64({2}, {0, 5})}), DType::boolean, {2}, {1, 0});
  TensorData p = tensor(DType::boolean, {4}, {0, 0, 1, 1}), q = tensor(DType::boolean, {4}, {0, 1, 0, 1});
  expectTensor(runOp(OpKind::LogicalAnd, {p, q}), DType::boolean, {4}, {0, 0, 0, 1});
  expectTensor(runOp(OpKind::LogicalOr, {p, q}), DType::boolean, {4}, {0, 1, 1, 1});
}

TEST(Elementwise, SelectBroadcastsAllThree) {
  TensorData cond = tensor(DType::boolean, {2, 1}, {1, 0});
  TensorData t = f64({3}, {1, 2, 3}), f = f64({}, {-1});
  expectTensor(runOp(OpKind::Select, {cond, t, f}), DType::f64, {2, 3}, {1, 2, 3, -1, -1, -1});
  TensorData ci = tensor(DType::boolean, {3}, {0, 1, 0});
  expectTensor(runOp(OpKind::Select, {ci, i64({3}, {1, 2, 3}), i64({3}, {4, 5, 6})}), DType::i64, {3}, {4, 2, 6});
}

TEST(Elementwise, CastTruncatesRoundsAndWraps) {
  TensorData x = f32({5}, {-1.7, 2.5, 0, 3.9, -0.2});
  expectTensor(runOp(OpKind::Cast, {x}, {{"dtype", DType::i32}}), DType::i32, {5}, {-1, 2, 0, 3, 0});
  expectTensor(runOp(OpKind::Cast, {x}, {{"dtype", DType::boolean}}), DType::boolean, {5}, {1, 1, 0, 1, 1});
  expectTensor(runOp(OpKind::Cast, {i64({2}, {3, -2})}, {{"dtype", DType::f64}}), DType::f64, {2}, {3, -2});
  expectTensor(runOp(OpKind::Cast, {tensor(DType::boolean, {2}, {1, 0})}, {{"dtype", DType::f32}}), DType::f32, {2},
               {1, 0});
  // i64 -> i32 keeps the low 32 bits.
  TensorData wide(TensorType{DType::i64, {1}});
  wide.as<int64_t>()[0] = (int64_t{1} << 32) + 5;
  expectTensor(runOp(OpKind::Cast, {wide}, {{"dtype", DType::i32}}), DType::i32, {1}, {5});
  // Out-of-range floats saturate and NaN becomes 0 (no undefined behaviour).
  expectTensor(runOp(OpKind::Cast, {f64({3}, {1e20, -1e20, NAN})}, {{"dtype", DType::i32}}), DType::i32, {3},
               {2147483647, -2147483648.0, 0});
  // f32 -> bf16 rounds to nearest even: 1 + 2^-8 -> 1, 1 + 3 * 2^-8 -> 1 + 2^-6.
  TensorData b = runOp(OpKind::Cast, {f32({2}, {1.00390625, 1.01171875})}, {{"dtype", DType::bf16}});
  expectTensor(b, DType::bf16, {2}, {1.0, 1.015625}, 0);
}

TEST(Elementwise, Bf16ComputesInDoubleAndRoundsOnce) {
  TensorData a = tensor(DType::bf16, {2}, {1, 256}), b = tensor(DType::bf16, {2}, {0.5, 1});
  // 256 + 1 = 257 is not representable in bf16 (8 bits of precision): ties to even give 256.
  expectTensor(runOp(OpKind::Add, {a, b}), DType::bf16, {2}, {1.5, 256}, 0);
}
