// The native transpose (runtime/cpu/native_transpose.h): which loop kernels it runs, and
// that it moves every float where the reference puts it, blocks and edges alike.
#include "runtime/cpu/native_transpose.h"

#include <gtest/gtest.h>

#include "backends/cpu/executable.h"
#include "cpu_test_util.h"

using namespace weft;

namespace {

using ir::OpKind;
using Ints = std::vector<int64_t>;

/// y = reshape(transpose(x, perm), result) over x of shape `shape`, negated when `negate`.
ir::Graph transposeGraph(const std::string& name, const ir::Shape& shape, const Ints& perm, const ir::Shape& result,
                         bool negate = false) {
  ir::Graph g(name);
  ir::ValueId y = g.addOp(OpKind::Transpose, {g.addInput("x", {ir::DType::f32, shape})}, {{"perm", perm}});
  if (negate) y = g.addOp(OpKind::Neg, {y});
  g.addOutput("y", g.addOp(OpKind::Reshape, {y}, {{"shape", result}}));
  return g;
}

/// Compiles `g`, checks its result is the reference's, bit for bit, and returns the stats.
cpu::CompileStats expectSameAsReference(const ir::Graph& g) {
  cpu::Executable exe = cpu::compile(g);
  reference::TensorMap feeds = cpu::testing::sineFeeds(g);
  EXPECT_EQ(exe.run(feeds).at("y").bytes, reference::run(g, feeds).at("y").bytes);
  return exe.stats();
}

TEST(NativeTranspose, RunsBatchedTranspositionsWithTheirEdges) {
  // A channels-last flatten (lenet's: [N, H, W, C] -> [N, C * H * W]); a plain 2-D transpose;
  // one large enough for the worker threads; rows and columns not multiples of 8 throughout.
  const ir::Graph flatten = transposeGraph("flatten", {3, 5, 6, 16}, {0, 3, 1, 2}, {3, 480});
  const ir::Graph plain = transposeGraph("plain", {13, 21}, {1, 0}, {21, 13});
  const ir::Graph large = transposeGraph("large", {70, 37, 41}, {0, 2, 1}, {70, 41, 37});
  for (const ir::Graph* g : {&flatten, &plain, &large}) {
    SCOPED_TRACE(g->name());
    const cpu::CompileStats stats = expectSameAsReference(*g);
    EXPECT_EQ(stats.kernels, 1);
    EXPECT_EQ(stats.nativeSteps, 1);
    EXPECT_EQ(stats.generatedKernels, 0);
  }
}

TEST(NativeTranspose, LeavesOtherLoopKernelsGenerated) {
  // Sides under 8 floats; a permutation that is no batched 2-D transpose (two pairs of dims
  // move); a transpose with arithmetic in its kernel.
  const ir::Graph narrow = transposeGraph("narrow", {4, 6, 5}, {0, 2, 1}, {4, 5, 6});
  const ir::Graph twoSwaps = transposeGraph("two_swaps", {9, 10, 11, 12}, {1, 0, 3, 2}, {10, 9, 12, 11});
  const ir::Graph arithmetic = transposeGraph("arithmetic", {3, 16, 24}, {0, 2, 1}, {3, 24, 16}, true);
  for (const ir::Graph* g : {&narrow, &twoSwaps, &arithmetic}) {
    SCOPED_TRACE(g->name());
    const cpu::CompileStats stats = expectSameAsReference(*g);
    EXPECT_EQ(stats.nativeSteps, 0);
    EXPECT_EQ(stats.generatedKernels, 1);
  }
}

}  // namespace
