// affine-grads-from-weight-grads: the rewritten gradients compute what the data gradient's
// matmul computed, on the reference interpreter; the matmul goes only where nothing else
// reads the data gradient and y is n * gamma + beta along the last dim.
#include <gtest/gtest.h>

#include <string>

#include "ir/parser.h"
#include "ir/verifier.h"
#include "passes/builtin_passes.h"
#include "pass_test_util.h"

using namespace weft::ir;
using namespace weft::passes;
using namespace weft::passes::testing;

namespace {

/// The backward pass of y = n * gamma + beta read by matmul(y, w) : [2, 3, 6], for upstream
/// gradient %g: the data gradient %dy, gamma's and beta's gradients from it and w's, with
/// gamma of type `gamma`, `extra` lines before the return and `outputs` added to it.
Graph affineBackward(const std::string& extra = "", const std::string& outputs = "",
                     const std::string& gamma = "f32[8]") {
  return parseGraph("graph @g(%n: f32[2,3,8], %gamma: " + gamma +
                    R"(, %beta: f32[8], %w: f32[8,6], %g: f32[2,3,6]) {
  %s = mul(%n, %gamma) : f32[2,3,8]
  %y = add(%s, %beta) : f32[2,3,8]
  %dy = matmul(%g, %w) {transpose_rhs=1} : f32[2,3,8]
  %yr = reshape(%y) {shape=[6, 8]} : f32[6,8]
  %gr = reshape(%g) {shape=[6, 6]} : f32[6,6]
  %dw = matmul(%yr, %gr) {transpose_lhs=1} : f32[8,6]
  %p = mul(%dy, %n) : f32[2,3,8]
  %dgamma = reduce_sum(%p) {axes=[0, 1], keepdims=1} : f32[1,1,8]
  %dbeta = reduce_sum(%dy) {axes=[0, 1], keepdims=0} : f32[8]
)" + extra + "  return dw=%dw, dgamma=%dgamma, dbeta=%dbeta" +
                    outputs + "\n}\n");
}

TEST(AffineGradsFromWeightGrads, TheDataGradientsMatmulGoesAndTheGradientsStay) {
  const Graph before = affineBackward();
  Graph g = before;
  ASSERT_TRUE(affineGradsFromWeightGrads(g));
  eliminateDeadCode(g);
  ASSERT_TRUE(verifyErrors(g).empty());
  EXPECT_EQ(countOps(g, OpKind::Matmul), 1);
  const Node& product = g.node(g.node(g.node(g.outputs()[0].value).operands[0]).operands[0]);
  ASSERT_EQ(product.op, OpKind::Matmul);
  EXPECT_EQ(g.node(g.node(product.operands[0]).operands[0]).name, "n");  // n^T g, not y^T g
  EXPECT_EQ(g.type(g.outputs()[1].value).shape, (Shape{1, 1, 8}));      // the kept shapes
  EXPECT_EQ(g.type(g.outputs()[2].value).shape, (Shape{8}));
  expectSameResults(before, g, smoothFeeds(before, 0.41), 1e-5);
}

TEST(AffineGradsFromWeightGrads, AnotherReaderOfTheDataGradientKeepsIt) {
  // The data gradient flows on (the norm's input needs it), or is an output itself.
  for (const auto& [extra, outputs] :
       {std::pair<std::string, std::string>{"  %more = exp(%dy) : f32[2,3,8]\n", ", more=%more"},
        std::pair<std::string, std::string>{"", ", dy=%dy"}}) {
    Graph g = affineBackward(extra, outputs);
    EXPECT_FALSE(affineGradsFromWeightGrads(g)) << outputs;
  }
}

TEST(AffineGradsFromWeightGrads, OnlyAnAffineAlongTheLastDimMatches) {
  // gamma over the rows instead ([3, 1] broadcast along the middle dim): y^T g is not gamma * n^T g.
  Graph g = affineBackward("", "", "f32[3,1]");
  EXPECT_FALSE(affineGradsFromWeightGrads(g));
}

TEST(AffineGradsFromWeightGrads, TwoDimensionalRowsNeedNoReshape) {
  const Graph before = parseGraph(R"(graph @g(%n: f32[5,4], %gamma: f32[4], %beta: f32[4], %w: f32[4,3], %g: f32[5,3]) {
  %s = mul(%gamma, %n) : f32[5,4]
  %y = add(%beta, %s) : f32[5,4]
  %dy = matmul(%g, %w) {transpose_rhs=1} : f32[5,4]
  %dw = matmul(%y, %g) {transpose_lhs=1} : f32[4,3]
  %p = mul(%n, %dy) : f32[5,4]
  %dgamma = reduce_sum(%p) {axes=[0], keepdims=0} : f32[4]
  %dbeta = reduce_sum(%dy) {axes=[0], keepdims=1} : f32[1,4]
  return dw=%dw, dgamma=%dgamma, dbeta=%dbeta
}
)");
  Graph g = before;
  ASSERT_TRUE(affineGradsFromWeightGrads(g));
  eliminateDeadCode(g);
  ASSERT_TRUE(verifyErrors(g).empty());
  EXPECT_EQ(countOps(g, OpKind::Matmul), 1);
  expectSameResults(before, g, smoothFeeds(before, 0.29), 1e-5);
}

}  // namespace
