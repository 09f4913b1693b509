// pool-gradient-masks: the rewritten graph computes what the original computes on the
// reference interpreter, with ties in the pool windows, NaNs, overlapping windows and both
// layouts; the mask moves to the pooled gradient and the sum to the incoming gradient.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "ir/parser.h"
#include "ir/verifier.h"
#include "passes/builtin_passes.h"
#include "pass_test_util.h"

using namespace weft::ir;
using namespace weft::passes;
using namespace weft::passes::testing;

namespace {

struct PoolCase {
  bool channelsLast;
  int64_t window, stride;
};

std::string dims(const Shape& s) {
  std::string r;
  for (int64_t d : s) r += (r.empty() ? "" : ",") + std::to_string(d);
  return r;
}

/// dx = the ReLU mask of max_pool_grad(x, dy) and db = its sum over all but the channels,
/// for 9x9 images of 3 channels.
Graph reluPoolGradient(const PoolCase& c) {
  const int64_t in = 9, out = (in - c.window) / c.stride + 1;
  const Shape x = c.channelsLast ? Shape{2, in, in, 3} : Shape{2, 3, in, in};
  const Shape y = c.channelsLast ? Shape{2, out, out, 3} : Shape{2, 3, out, out};
  const std::string attrs = "{channels_last=" + std::to_string(c.channelsLast) + ", padding=[0, 0], stride=[" +
                            std::to_string(c.stride) + ", " + std::to_string(c.stride) + "], window=[" +
                            std::to_string(c.window) + ", " + std::to_string(c.window) + "]}";
  const std::string axes = c.channelsLast ? "[0, 1, 2]" : "[0, 2, 3]";
  const std::string text = "graph @g(%x: f32[" + dims(x) + "], %dy: f32[" + dims(y) + "]) {\n" +
                           "  %zero = constant() {value=dense<[0.0]>} : f32[]\n"
                           "  %p = max_pool(%x) " + attrs + " : f32[" + dims(y) + "]\n" +
                           "  %g = max_pool_grad(%x, %dy) " + attrs + " : f32[" + dims(x) + "]\n" +
                           "  %m = gt(%x, %zero) : bool[" + dims(x) + "]\n" +
                           "  %dx = select(%m, %g, %zero) : f32[" + dims(x) + "]\n" +
                           "  %db = reduce_sum(%dx) {axes=" + axes + ", keepdims=0} : f32[3]\n" +
                           "  return dx=%dx, db=%db\n}\n";
  return parseGraph(text);
}

class PoolGradientMasks : public ::testing::TestWithParam<PoolCase> {};

TEST_P(PoolGradientMasks, ComputeWhatTheMaskedResultComputes) {
  Graph before = reluPoolGradient(GetParam());
  Graph g = before;
  ASSERT_TRUE(maskPoolGradients(g));
  eliminateDeadCode(g);
  ASSERT_TRUE(verifyErrors(g).empty());
  const Node& dx = g.node(g.outputs()[0].value);
  ASSERT_EQ(dx.op, OpKind::MaxPoolGrad);
  EXPECT_EQ(g.node(dx.operands[1]).op, OpKind::Select);  // the mask, on the pooled gradient
  const Node& db = g.node(g.outputs()[1].value);
  EXPECT_EQ(db.operands[0], dx.operands[1]);  // the sum reads the pooled gradient
  EXPECT_EQ(countOps(g, OpKind::MaxPoolGrad), 1);

  weft::reference::TensorMap feeds = smoothFeeds(before, 0.37);
  auto& x = feeds.at("x");
  for (int64_t i = 0; i < x.numel(); ++i) x.set(i, std::round(x.get(i) * 2) / 2);  // ties, zeros, negatives
  x.set(5, std::numeric_limits<double>::quiet_NaN());
  x.set(40, std::numeric_limits<double>::quiet_NaN());
  expectSameResults(before, g, feeds, 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Layouts, PoolGradientMasks,
                         ::testing::Values(PoolCase{true, 2, 2}, PoolCase{false, 2, 2}, PoolCase{true, 3, 2},
                                           PoolCase{false, 3, 1}, PoolCase{true, 2, 1}));

TEST(PoolGradientMasksPass, WithoutThePoolNothingChanges) {
  // Without a max_pool of x the mask has nowhere to move, and the sum reads the mask's select.
  std::string text = printGraph(reluPoolGradient({true, 2, 2}));
  const size_t at = text.find("  %p = max_pool");
  ASSERT_NE(at, std::string::npos);
  text.erase(at, text.find('\n', at) + 1 - at);
  Graph g = parseGraph(text);
  const std::string printed = printGraph(g);
  EXPECT_FALSE(maskPoolGradients(g));
  EXPECT_EQ(printGraph(g), printed);
}

}  // namespace
