// Generated row kernels (kind "rows", ir/fused_rows.h) against the reference interpreter:
// softmax with a causal mask, a layer norm with per-row scalars computed from two
// reductions, and the rules that tell a row body from others.
#include "backends/cpu/codegen/kernel_plan.h"
#include "ir/fused_rows.h"
#include "tests/unit/codegen/codegen_test_util.h"

using namespace cgtest;
using weft::cpu::codegen::KernelPlan;
using weft::cpu::codegen::planKernel;

namespace {

KernelCompiler& compiler() {
  static KernelCompiler instance([] {
    KernelCompiler::Options options;
    options.cacheDir = "off";  // the tests read the MLIR generated
    return options;
  }());
  return instance;
}

TensorType f32(Shape shape) { return {DType::f32, std::move(shape)}; }

ValueId reduce(Graph& g, OpKind op, ValueId x, int64_t axis) {
  return g.addOp(op, {x}, {{"axes", std::vector<int64_t>{axis}}, {"keepdims", int64_t{1}}});
}

/// Softmax over the last axis of x [B, H, Q, K] with the positions after the row's own masked
/// to -inf (gpt's attention, where Q = K), as decompose-composites writes it.
Graph causalSoftmax(const Shape& shape) {
  Graph g("causal_softmax");
  ValueId x = g.addInput("x", f32(shape));
  const Shape plane = {shape[2], shape[3]};
  ValueId column = g.addOp(OpKind::Iota, {}, {{"axis", int64_t{1}}, {"dtype", DType::i64}, {"shape", plane}});
  ValueId row = g.addOp(OpKind::Iota, {}, {{"axis", int64_t{0}}, {"dtype", DType::i64}, {"shape", plane}});
  ValueId masked = g.addOp(OpKind::Select, {g.addOp(OpKind::Gt, {column, row}),
                                            g.addConstant(scalarConstant(DType::f32, -INFINITY)), x});
  ValueId max = reduce(g, OpKind::ReduceMax, masked, 3);
  ValueId e = g.addOp(OpKind::Exp, {g.addOp(OpKind::Sub, {masked, max})});
  g.addOutput("out", g.addOp(OpKind::Div, {e, reduce(g, OpKind::ReduceSum, e, 3)}));
  return g;
}

/// (x - mean) * rsqrt(var + eps) * gamma + beta over the last axis of x [R, L].
Graph layerNorm(int64_t rows, int64_t length) {
  Graph g("layer_norm");
  ValueId x = g.addInput("x", f32({rows, length}));
  ValueId gamma = g.addInput("gamma", f32({length})), beta = g.addInput("beta", f32({length}));
  ValueId n = g.addConstant(scalarConstant(DType::f32, static_cast<double>(length)));
  ValueId mean = g.addOp(OpKind::Div, {reduce(g, OpKind::ReduceSum, x, 1), n});
  ValueId centered = g.addOp(OpKind::Sub, {x, mean});
  ValueId var = g.addOp(OpKind::Div, {reduce(g, OpKind::ReduceSum, g.addOp(OpKind::Mul, {centered, centered}), 1), n});
  ValueId eps = g.addConstant(scalarConstant(DType::f32, 1e-5));
  ValueId scale = g.addOp(OpKind::Rsqrt, {g.addOp(OpKind::Add, {var, eps})});
  ValueId y = g.addOp(OpKind::Mul, {g.addOp(OpKind::Mul, {centered, scale}), gamma});
  g.addOutput("out", g.addOp(OpKind::Add, {y, beta}));
  return g;
}

/// Runs `body` in one call and in `pieces` calls; both must match the reference.
void check(const Graph& body, const std::vector<TensorData>& inputs, double tol, int pieces) {
  ASSERT_FALSE(rowsBodyProblem(body)) << *rowsBodyProblem(body);
  TensorData want = referenceRun(body, inputs);
  const GeneratedKernel* kernel = compiler().compile({&body}).at(0);
  {
    SCOPED_TRACE("one call");
    expectClose(runKernel(*kernel, body, inputs), want, tol);
  }
  SCOPED_TRACE("split calls");
  expectClose(runKernel(*kernel, body, inputs, pieces), want, tol);
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST(CodegenRows, CausalSoftmaxRowByRow) {
  const Shape shape = {2, 3, 5, 37};
  Graph g = causalSoftmax(shape);
  const GeneratedKernel* kernel = compiler().compile({&g}).at(0);
  EXPECT_EQ(kernel->parallelExtent, 30);  // the rows
  // Two folding loops (max, sum) carry an accumulator; exp(x - max) is computed once: the sum's
  // loop stores it into the output row and the last loop reads it back to divide it.
  EXPECT_EQ(count(kernel->mlir, "iter_args"), 2u) << kernel->mlir;
  EXPECT_EQ(count(kernel->mlir, "math.exp"), 1u) << kernel->mlir;
  EXPECT_EQ(count(kernel->mlir, "memref.store"), 2u) << kernel->mlir;
  EXPECT_EQ(count(kernel->mlir, "memref.load %arg0"), 1u) << kernel->mlir;
  check(g, {spread(f32(shape), -6, 6)}, 1e-6, 4);
}

// Square matrices: row i reads columns 0..i only (rounded up to a vector of 16) and writes
// zeros right of them (KernelPlan::diagonal), what the masked positions come to anyway.
TEST(CodegenRows, CausalSoftmaxStopsAtTheDiagonal) {
  for (const Shape& shape : {Shape{2, 3, 37, 37}, Shape{1, 2, 48, 48}}) {
    Graph g = causalSoftmax(shape);
    EXPECT_EQ(planKernel(g).diagonal, shape.back());
    const GeneratedKernel* kernel = compiler().compile({&g}).at(0);
    EXPECT_EQ(count(kernel->mlir, "arith.remui"), 1u) << kernel->mlir;
    EXPECT_EQ(count(kernel->mlir, "memref.store"), 3u) << kernel->mlir;  // and the zeros
    check(g, {spread(f32(shape), -6, 6)}, 1e-6, 5);
  }
  // Not without the mask, nor where the masked positions count (their max, -inf, in a sum).
  Graph plain("softmax");
  ValueId x = plain.addInput("x", f32({2, 16, 16}));
  ValueId e = plain.addOp(OpKind::Exp, {x});
  plain.addOutput("out", plain.addOp(OpKind::Div, {e, reduce(plain, OpKind::ReduceSum, e, 2)}));
  EXPECT_EQ(planKernel(plain).kind, KernelPlan::Kind::Rows);
  EXPECT_EQ(planKernel(plain).diagonal, 0);
  Graph counted = causalSoftmax({1, 1, 16, 16});
  const ValueId shifted = counted.node(counted.node(counted.outputs()[0].value).operands[0]).operands[0];  // x - max
  ValueId sum = reduce(counted, OpKind::ReduceSum, counted.node(shifted).operands[0], 3);
  counted.outputs()[0].value = counted.addOp(OpKind::Mul, {counted.outputs()[0].value, sum});
  EXPECT_EQ(planKernel(counted).kind, KernelPlan::Kind::Rows);
  EXPECT_EQ(planKernel(counted).diagonal, 0);
}

TEST(CodegenRows, LayerNormWithPerRowScalars) {
  Graph g = layerNorm(9, 45);
  const GeneratedKernel* kernel = compiler().compile({&g}).at(0);
  EXPECT_EQ(kernel->parallelExtent, 9);
  EXPECT_EQ(count(kernel->mlir, "iter_args"), 2u) << kernel->mlir;
  // Nothing is kept in the output: the last loop reads x - mean, not the variance's square.
  EXPECT_EQ(count(kernel->mlir, "memref.load %arg0"), 0u) << kernel->mlir;
  // The kernel sums in another order than the interpreter; (x - mean) * rsqrt(var) carries
  // that rounding (3e-6 relative, 1.5e-8 absolute near zero seen).
  check(g, {spread(f32({9, 45}), -3, 5), spread(f32({45}), 0.5, 1.5, 1), spread(f32({45}), -1, 1, 2)}, 2e-5, 4);
}

TEST(CodegenRows, WhatIsNotARowBody) {
  // A reduction over another axis than the last.
  Graph columns("columns");
  ValueId x = columns.addInput("x", f32({4, 6}));
  columns.addOutput("out", columns.addOp(OpKind::Sub, {x, reduce(columns, OpKind::ReduceSum, x, 0)}));
  ASSERT_TRUE(rowsBodyProblem(columns));
  const std::string why = *rowsBodyProblem(columns);
  EXPECT_NE(why.find("must reduce the last axis"), std::string::npos) << why;
  expectError([&] { compiler().compile({&columns}); }, {"reduce_sum", "root"});

  // A row scalar moved across rows (a transpose of the per-row sums).
  Graph moved("moved");
  ValueId y = moved.addInput("y", f32({4, 4}));
  ValueId sums = reduce(moved, OpKind::ReduceSum, y, 1);
  ValueId across = moved.addOp(OpKind::Transpose, {moved.addOp(OpKind::Broadcast, {sums}, {{"shape", Shape{4, 4}}})},
                               {{"perm", std::vector<int64_t>{1, 0}}});
  moved.addOutput("out", moved.addOp(OpKind::Add, {y, across}));
  ASSERT_TRUE(rowsBodyProblem(moved));  // the broadcast is allowed; the transpose reading it is not
  EXPECT_NE(rowsBodyProblem(moved)->find("transpose"), std::string::npos) << *rowsBodyProblem(moved);

  // No reduction: a loop body.
  Graph loop("loop");
  ValueId z = loop.addInput("z", f32({4, 6}));
  loop.addOutput("out", loop.addOp(OpKind::Exp, {z}));
  EXPECT_TRUE(rowsBodyProblem(loop));
}

TEST(CodegenRows, ARowOfAnInputIsReadAgainNotKept) {
  // x / sum(x): the sum's operand is the input itself, which the last loop loads again; the
  // output row keeps nothing.
  Graph g("normalize");
  ValueId x = g.addInput("x", f32({7, 19}));
  g.addOutput("out", g.addOp(OpKind::Div, {x, reduce(g, OpKind::ReduceSum, x, 1)}));
  const GeneratedKernel* kernel = compiler().compile({&g}).at(0);
  EXPECT_EQ(count(kernel->mlir, "memref.load %arg0"), 0u) << kernel->mlir;
  EXPECT_EQ(count(kernel->mlir, "memref.store"), 1u) << kernel->mlir;
  check(g, {spread(f32({7, 19}), 0.5, 2)}, 1e-6, 3);
}
