// Channels-last windowed ops and the channels-last pass: a channels_last=1 node computes what
// its channels-first form computes between transposes; the pass stores a conv chain's
// activations channels-last (convs get the attribute, the values between them are never
// transposed) and computes what the graph computed; a conv whose neighbours would all need
// transposes stays channels-first; autodiff refuses channels_last nodes.
#include <gtest/gtest.h>

#include "ir/channels_last.h"
#include "ir/error.h"
#include "ir/verifier.h"
#include "pass_test_util.h"
#include "passes/autodiff.h"
#include "passes/builtin_passes.h"

using namespace weft;
using namespace weft::ir;
using namespace weft::passes;
using namespace weft::passes::testing;

namespace {

using Ints = std::vector<int64_t>;

Attrs windowAttrs(OpKind op, int64_t stride, int64_t padding) {
  if (op == OpKind::MaxPool || op == OpKind::AvgPool || op == OpKind::MaxPoolGrad)
    return {{"window", Ints{3, 2}}, {"stride", Ints{stride, stride}}, {"padding", Ints{padding, padding}}};
  Attrs a{{"stride", Ints{stride, stride}}, {"padding", Ints{padding, padding}}, {"dilation", Ints{1, 1}},
          {"groups", int64_t{1}}};
  if (op == OpKind::ConvTranspose) a["output_padding"] = Ints{1, 0};
  if (op == OpKind::ConvWeightGrad) a["kernel"] = Ints{3, 2};
  return a;
}

/// Two graphs of one op over channels-last inputs `types` (data inputs [N, H, W, C]): the op
/// with channels_last=1, and the channels-first op between transposes.
std::pair<Graph, Graph> bothForms(OpKind op, const std::vector<TensorType>& types, int64_t stride, int64_t padding) {
  Graph last("last"), first("first");
  std::vector<ValueId> lastIn, firstIn;
  for (size_t i = 0; i < types.size(); ++i) {
    std::string name = "in" + std::to_string(i);
    lastIn.push_back(last.addInput(name, types[i]));
    ValueId f = first.addInput(name, types[i]);
    if (isDataOperand(op, i)) f = first.addOp(OpKind::Transpose, {f}, {{"perm", toChannelsFirstPerm(4)}});
    firstIn.push_back(f);
  }
  Attrs attrs = windowAttrs(op, stride, padding);
  ValueId f = first.addOp(op, firstIn, attrs);
  if (hasDataResult(op)) f = first.addOp(OpKind::Transpose, {f}, {{"perm", toChannelsLastPerm(4)}});
  first.addOutput("out", f);
  attrs["channels_last"] = int64_t{1};
  last.addOutput("out", last.addOp(op, lastIn, attrs));
  return {std::move(last), std::move(first)};
}

Attrs convAttrs(int64_t stride, int64_t padding) { return windowAttrs(OpKind::Conv, stride, padding); }

/// x [2,3,9,9] -> conv 3->8 -> batch-norm statistics (reduce with keepdims), normalize, relu
/// -> conv 8->8 stride 2 -> per-channel sums (reduce without keepdims) as "sums"; the
/// second conv's data and weight gradients for a cotangent dy as "dx" and "dw".
Graph convChain() {
  Graph g("chain");
  ValueId x = g.addInput("x", {DType::f32, {2, 3, 9, 9}});
  ValueId w1 = g.addInput("w1", {DType::f32, {8, 3, 3, 3}});
  ValueId w2 = g.addInput("w2", {DType::f32, {8, 8, 3, 3}});
  ValueId dy = g.addInput("dy", {DType::f32, {2, 8, 5, 5}});
  ValueId a = g.addOp(OpKind::Conv, {x, w1}, convAttrs(1, 1));
  ValueId mean = g.addOp(OpKind::ReduceSum, {a}, axesAttrs({0, 2, 3}, true));
  ValueId centered = g.addOp(OpKind::Sub, {a, mean});
  ValueId scaled = g.addOp(OpKind::Mul, {centered, g.addInput("gamma", {DType::f32, {8, 1, 1}})});
  ValueId relu = g.addOp(OpKind::Maximum, {scaled, g.addConstant(filled({DType::f32, {}}, 0.0))});
  ValueId b = g.addOp(OpKind::Conv, {relu, w2}, convAttrs(2, 1));
  g.addOutput("sums", g.addOp(OpKind::ReduceSum, {b}, axesAttrs({0, 2, 3}, false)));
  Attrs dataGrad = convAttrs(2, 1);
  dataGrad["output_padding"] = Ints{0, 0};
  g.addOutput("dx", g.addOp(OpKind::ConvTranspose, {dy, w2}, dataGrad));
  Attrs weightGrad = convAttrs(2, 1);
  weightGrad["kernel"] = Ints{3, 3};
  g.addOutput("dw", g.addOp(OpKind::ConvWeightGrad, {relu, dy}, weightGrad));
  return g;
}

int countChannelsLast(const Graph& g) {
  int n = 0;
  for (const Node& node : g.nodes()) n += isChannelsLast(node.op, node.attrs);
  return n;
}

}  // namespace

TEST(ChannelsLast, WindowedOpsComputeTheirChannelsFirstForm) {
  const TensorType x = {DType::f32, {2, 7, 6, 3}};
  struct Case {
    OpKind op;
    std::vector<TensorType> types;
  };
  const std::vector<Case> cases = {
      {OpKind::Conv, {x, {DType::f32, {4, 3, 3, 2}}}},
      {OpKind::ConvTranspose, {x, {DType::f32, {3, 4, 3, 2}}}},
      {OpKind::ConvWeightGrad, {x, {DType::f32, {2, 4, 3, 4}}}},
      {OpKind::MaxPool, {x}},
      {OpKind::AvgPool, {x}},
      {OpKind::MaxPoolGrad, {x, {DType::f32, {2, 4, 4, 3}}}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(opName(c.op));
    auto [last, first] = bothForms(c.op, c.types, 2, 1);
    verify(last);
    verify(first);
    EXPECT_EQ(last.type(last.outputs()[0].value), first.type(first.outputs()[0].value));
    expectSameResults(last, first, smoothFeeds(last, 0.41), 1e-9);
  }
}

TEST(ChannelsLast, TypeRulesReadTheChannelsLastShapes) {
  Graph g("bad");
  ValueId x = g.addInput("x", {DType::f32, {2, 7, 6, 3}});
  ValueId w = g.addInput("w", {DType::f32, {4, 7, 3, 3}});  // 7 would be the channels of a [N, C, H, W] x
  Attrs attrs = convAttrs(1, 0);
  attrs["channels_last"] = int64_t{1};
  try {
    g.addOp(OpKind::Conv, {x, w}, attrs);
    FAIL() << "a channels-last conv took a weight for 7 input channels";
  } catch (const weft::Error& e) {
    EXPECT_NE(std::string(e.what()).find("weight expects 7 input channels, input has 3"), std::string::npos) << e.what();
  }
}

TEST(ChannelsLast, PassStoresAConvChainChannelsLast) {
  Graph g = convChain();
  Graph converted = g;
  ASSERT_TRUE(convertToChannelsLast(converted));
  ASSERT_TRUE(canonicalize(converted));
  eliminateDeadCode(converted);
  verify(converted);
  EXPECT_EQ(countChannelsLast(converted), 4);  // both convs, the data and the weight gradient
  // Transposes only where the graph's inputs and outputs are: x and dy in (dy once for both
  // gradients), dx out (gamma's [8,1,1] only moves unit dims: a reshape; the sums reduce the
  // permuted axes). Nothing between the convolutions.
  EXPECT_EQ(countOps(converted, OpKind::Transpose), 3);
  expectSameResults(g, converted, smoothFeeds(g, 0.23), 1e-9);
}

TEST(ChannelsLast, ConvWhoseNeighboursNeedTransposesStaysChannelsFirst) {
  // The conv reads an input and its result is reshaped: two transposes of large tensors to
  // save two conversions.
  Graph g("lonely");
  ValueId x = g.addInput("x", {DType::f32, {2, 3, 40, 40}});
  ValueId y = g.addOp(OpKind::Conv, {x, g.addInput("w", {DType::f32, {8, 3, 3, 3}})}, convAttrs(1, 1));
  g.addOutput("flat", g.addOp(OpKind::Reshape, {y}, {{"shape", Ints{2, 8 * 1600}}}));
  EXPECT_FALSE(convertToChannelsLast(g));
  EXPECT_EQ(countChannelsLast(g), 0);
}

TEST(ChannelsLast, AutodiffRefusesChannelsLastNodes) {
  Graph g("refused");
  ValueId x = g.addInput("x", {DType::f32, {2, 9, 9, 3}});
  ValueId w = g.addInput("w", {DType::f32, {8, 3, 3, 3}});
  Attrs attrs = convAttrs(1, 1);
  attrs["channels_last"] = int64_t{1};
  ValueId y = g.addOp(OpKind::Conv, {x, w}, attrs);
  g.addOutput("loss", g.addOp(OpKind::ReduceSum, {y}, axesAttrs({0, 1, 2, 3}, false)));
  try {
    addGradientOutputs(g, "loss", {"w"});
    FAIL() << "autodiff differentiated a channels_last conv";
  } catch (const weft::Error& e) {
    EXPECT_NE(std::string(e.what()).find("is channels_last, which has no gradient rule"), std::string::npos) << e.what();
  }
}
