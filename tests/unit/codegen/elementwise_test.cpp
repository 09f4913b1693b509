// Generated kernels of single elementwise ops against the reference interpreter: every
// supported op in f32, a few in f64, integer and bool ops, casts and special values. The
// maximum errors of the f32 math functions (polynomial approximations) are printed.
#include "tests/unit/codegen/codegen_test_util.h"

#include <cstdio>
#include <limits>

using namespace cgtest;

namespace {

/// One compiler for the whole file: MLIR contexts and JIT engines are not free.
KernelCompiler& compiler() {
  static KernelCompiler instance;
  return instance;
}

struct UnaryCase {
  OpKind op;
  double low, high;
  double tol;  ///< relative (absolute below 1e-3)
};

/// Runs `op` on `inputs` through a generated kernel and the reference; returns the errors.
ErrorStats checkOp(OpKind op, const std::vector<TensorData>& inputs, double tol, Attrs attrs = {}) {
  std::vector<TensorType> types;
  for (const TensorData& t : inputs) types.push_back(t.type);
  Graph body = opBody(op, types, std::move(attrs));
  return expectClose(compileAndRun(compiler(), body, inputs), referenceRun(body, inputs), tol);
}

const TensorType kF32{DType::f32, {4099}};  // not a multiple of any vector width: tails run too
const TensorType kF64{DType::f64, {1031}};

}  // namespace

TEST(CodegenElementwise, UnaryF32MatchesReferenceAndReportsMaxError) {
  const UnaryCase cases[] = {
      {OpKind::Exp, -86, 88.5, 2e-7},    {OpKind::Log, 1e-4, 1e4, 2e-6},     {OpKind::Tanh, -9, 9, 2e-6},
      {OpKind::Erf, -4, 4, 5e-7},        {OpKind::Sigmoid, -30, 30, 2e-6},   {OpKind::Sin, -10, 10, 2e-6},
      {OpKind::Cos, -10, 10, 2e-6},      {OpKind::Sqrt, 0, 1e4, 1e-7},       {OpKind::Rsqrt, 1e-4, 1e4, 2e-7},
      {OpKind::Floor, -50, 50, 0},       {OpKind::Neg, -5, 5, 0},            {OpKind::Abs, -5, 5, 0},
      {OpKind::Sign, -5, 5, 0},          {OpKind::StopGradient, -5, 5, 0},
  };
  for (const UnaryCase& c : cases) {
    SCOPED_TRACE(std::string(opName(c.op)));
    ErrorStats e = checkOp(c.op, {spread(kF32, c.low, c.high)}, c.tol);
    std::printf("  f32 %-8s on [%g, %g]: max relative error %.3g, max absolute error near 0 %.3g\n",
                std::string(opName(c.op)).c_str(), c.low, c.high, e.maxRelative, e.maxAbsoluteNearZero);
  }
}

TEST(CodegenElementwise, PowF32IncludingNegativeBases) {
  TensorData base = spread(kF32, 0.05, 6), exponent = spread(kF32, -4, 4, 1);
  ErrorStats e = checkOp(OpKind::Pow, {base, exponent}, 4e-6);
  std::printf("  f32 pow      base [0.05, 6], exponent [-4, 4]: max relative error %.3g\n", e.maxRelative);
  // Negative bases: integer exponents keep their sign, others give NaN; y == 0 gives 1.
  // -inf: +inf or +0 for powers that are not odd integers (found by differential fuzzing).
  const double inf = std::numeric_limits<double>::infinity();
  TensorData x(TensorType{DType::f32, {12}}), y(TensorType{DType::f32, {12}});
  const double xs[] = {-2, -2, -3, -1.5, 0, 0, 1, -7, -inf, -inf, -inf, -inf},
               ys[] = {3, 2, 0.5, -2, 2, 0, std::nan(""), 0, 1.5, -0.5, 3, -3};
  for (int i = 0; i < 12; ++i) x.set(i, xs[i]), y.set(i, ys[i]);
  checkOp(OpKind::Pow, {x, y}, 4e-6);
}

TEST(CodegenElementwise, SpecialValuesOfMathF32) {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
  // exp: 88.72 is just below the overflow to inf at ln(FLT_MAX) = 88.7228, 88.73 just past it;
  // below -87 it is smaller than the least normal float.
  TensorData x(TensorType{DType::f32, {12}});
  const double values[] = {0, -0.0, 1e-30, -100, 100, inf, -inf, nan, 88, 88.72, 88.73, -87.5};
  for (int i = 0; i < 12; ++i) x.set(i, values[i]);
  for (OpKind op : {OpKind::Exp, OpKind::Tanh, OpKind::Sigmoid, OpKind::Erf, OpKind::Sqrt}) {
    SCOPED_TRACE(std::string(opName(op)));
    checkOp(op, {x}, 2e-6);
  }
  // Denormals too (kernels called directly keep IEEE denormals): log(1e-40) is -92.1.
  TensorData positive(TensorType{DType::f32, {8}});
  const double logValues[] = {0, 1, 1e-30, inf, nan, 1e-40, 1e-39, 1.1e-38};
  for (int i = 0; i < 8; ++i) positive.set(i, logValues[i]);
  checkOp(OpKind::Log, {positive}, 2e-6);
}

TEST(CodegenElementwise, BinaryF32) {
  TensorData a = spread(kF32, -8, 8), b = spread(kF32, 0.5, 9, 2);
  for (OpKind op : {OpKind::Add, OpKind::Sub, OpKind::Mul, OpKind::Div, OpKind::Maximum, OpKind::Minimum}) {
    SCOPED_TRACE(std::string(opName(op)));
    checkOp(op, {a, b}, 0);
  }
}

TEST(CodegenElementwise, MaximumAndMinimumPropagateNaN) {
  TensorData a(TensorType{DType::f32, {4}}), b(TensorType{DType::f32, {4}});
  const double av[] = {std::nan(""), 1, 2, -3}, bv[] = {1, std::nan(""), 3, -4};
  for (int i = 0; i < 4; ++i) a.set(i, av[i]), b.set(i, bv[i]);
  checkOp(OpKind::Maximum, {a, b}, 0);
  checkOp(OpKind::Minimum, {a, b}, 0);
}

TEST(CodegenElementwise, ComparisonsGiveBools) {
  TensorData a = spread(kF32, -3, 3), b = spread(kF32, -3, 3, 5);
  for (int64_t i = 0; i < a.numel(); i += 3) b.set(i, a.get(i));  // some equal pairs
  b.set(1, std::nan(""));
  for (OpKind op : {OpKind::Eq, OpKind::Ne, OpKind::Lt, OpKind::Le, OpKind::Gt, OpKind::Ge}) {
    SCOPED_TRACE(std::string(opName(op)));
    checkOp(op, {a, b}, 0);
  }
  TensorType i32Type{DType::i32, {300}}, boolType{DType::boolean, {300}};
  TensorData ia = spread(i32Type, -20, 20), ib = spread(i32Type, -20, 20, 3);
  TensorData ba = spread(boolType, 0, 1), bb = spread(boolType, 0, 1, 1);
  for (OpKind op : {OpKind::Eq, OpKind::Ne, OpKind::Lt, OpKind::Le, OpKind::Gt, OpKind::Ge}) {
    SCOPED_TRACE(std::string(opName(op)));
    checkOp(op, {ia, ib}, 0);
    checkOp(op, {ba, bb}, 0);
  }
}

TEST(CodegenElementwise, LogicAndSelect) {
  TensorType boolType{DType::boolean, {515}};
  TensorData p = spread(boolType, 0, 1), q = spread(boolType, 0, 1, 1);
  checkOp(OpKind::LogicalAnd, {p, q}, 0);
  checkOp(OpKind::LogicalOr, {p, q}, 0);
  checkOp(OpKind::LogicalNot, {p}, 0);
  TensorData a = spread(TensorType{DType::f32, {515}}, -1, 1), b = spread(TensorType{DType::f32, {515}}, 5, 6);
  checkOp(OpKind::Select, {p, a, b}, 0);
  TensorData ia = spread(TensorType{DType::i64, {515}}, -1e12, 1e12), ib = spread(TensorType{DType::i64, {515}}, 0, 9);
  checkOp(OpKind::Select, {q, ia, ib}, 0);
}

TEST(CodegenElementwise, Casts) {
  TensorType f32Type{DType::f32, {64}};
  TensorData f = spread(f32Type, -1e10, 1e10);  // beyond i32: saturates
  f.set(0, std::nan(""));
  f.set(1, 0.0);
  f.set(2, -2.75);
  for (DType to : {DType::f64, DType::i32, DType::i64, DType::boolean}) {
    SCOPED_TRACE(std::string(dtypeName(to)));
    checkOp(OpKind::Cast, {f}, 0, {{"dtype", to}});
  }
  TensorData d = spread(TensorType{DType::f64, {64}}, -1e3, 1e3);
  checkOp(OpKind::Cast, {d}, 0, {{"dtype", DType::f32}});
  TensorData i = spread(TensorType{DType::i64, {64}}, -1e11, 1e11);  // beyond i32: wraps
  for (DType to : {DType::i32, DType::f32, DType::f64, DType::boolean}) {
    SCOPED_TRACE("i64 -> " + std::string(dtypeName(to)));
    checkOp(OpKind::Cast, {i}, 0, {{"dtype", to}});
  }
  TensorData small = spread(TensorType{DType::i32, {64}}, -1000, 1000);
  checkOp(OpKind::Cast, {small}, 0, {{"dtype", DType::i64}});
  TensorData flags = spread(TensorType{DType::boolean, {64}}, 0, 1);
  for (DType to : {DType::f32, DType::i32, DType::i64}) checkOp(OpKind::Cast, {flags}, 0, {{"dtype", to}});
}

TEST(CodegenElementwise, IntegerArithmetic) {
  for (DType t : {DType::i32, DType::i64}) {
    SCOPED_TRACE(std::string(dtypeName(t)));
    TensorType type{t, {259}};
    TensorData a = spread(type, -1000, 1000), b = spread(type, -1000, 1000, 4);
    for (OpKind op : {OpKind::Add, OpKind::Sub, OpKind::Mul, OpKind::Maximum, OpKind::Minimum}) checkOp(op, {a, b}, 0);
    for (OpKind op : {OpKind::Neg, OpKind::Abs, OpKind::Sign}) checkOp(op, {a}, 0);
  }
  // i32 arithmetic wraps like the reference.
  TensorData big(TensorType{DType::i32, {2}});
  big.set(0, 2147483647.0);
  big.set(1, -2147483648.0);
  checkOp(OpKind::Add, {big, big}, 0);
  checkOp(OpKind::Mul, {big, big}, 0);
}

TEST(CodegenElementwise, F64MathUsesExactFunctions) {
  const UnaryCase cases[] = {{OpKind::Exp, -20, 20, 1e-15}, {OpKind::Log, 1e-4, 1e4, 1e-15},
                             {OpKind::Tanh, -9, 9, 1e-15},  {OpKind::Erf, -4, 4, 1e-15},
                             {OpKind::Sigmoid, -30, 30, 1e-14}, {OpKind::Sin, -10, 10, 1e-15},
                             {OpKind::Sqrt, 0, 1e4, 1e-15}, {OpKind::Rsqrt, 1e-4, 1e4, 1e-15}};
  for (const UnaryCase& c : cases) {
    SCOPED_TRACE(std::string(opName(c.op)));
    checkOp(c.op, {spread(kF64, c.low, c.high)}, c.tol);
  }
  TensorData a = spread(kF64, 0.1, 5), b = spread(kF64, -3, 3, 1);
  for (OpKind op : {OpKind::Add, OpKind::Div, OpKind::Pow, OpKind::Maximum}) {
    SCOPED_TRACE(std::string(opName(op)));
    checkOp(op, {a, b}, 1e-15);
  }
}
