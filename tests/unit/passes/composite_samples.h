#pragma once
// One or more small graphs per composite op, each computing `result` from inputs with a
// single composite node, for the decomposition tests.
#include <cstdint>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace weft::passes::testing {

/// A graph whose output `result` is one composite node (also named `result`).
struct CompositeSample {
  std::string label;       ///< for messages, e.g. "gelu(tanh)"
  ir::OpKind op;           ///< the composite under test
  ir::Graph graph;
  double inputScale = 2;   ///< float inputs are drawn from U[-scale, scale] ...
  int64_t classes = 1;     ///< ... and integer inputs from [0, classes)
};

/// Every sample, with float tensors of dtype `dtype`.
inline std::vector<CompositeSample> compositeSamples(ir::DType dtype) {
  using ir::OpKind;
  using ir::Shape;
  std::vector<CompositeSample> samples;
  auto add = [&](const std::string& label, OpKind op, std::vector<Shape> shapes, ir::Attrs attrs,
                 double scale = 2, std::vector<std::string> names = {}, ir::DType labelType = ir::DType::i64,
                 int64_t classes = 1) {
    CompositeSample s{label, op, ir::Graph("sample"), scale, classes};
    std::vector<ir::ValueId> operands;
    const auto& info = ir::opInfo(op);
    for (size_t i = 0; i < shapes.size(); ++i) {
      std::string name = i < names.size() ? names[i] : info.operandNames.at(i);
      bool isLabels = op == OpKind::CrossEntropy && i == 1;
      operands.push_back(s.graph.addInput(name, {isLabels ? labelType : dtype, shapes[i]}));
    }
    s.graph.addOutput("result", s.graph.addOp(op, operands, std::move(attrs), "result", "sample.cpp:1"));
    samples.push_back(std::move(s));
  };
  auto reduceAttrs = [](std::vector<int64_t> axes, int64_t keep) {
    return ir::Attrs{{"axes", std::move(axes)}, {"keepdims", keep}};
  };
  auto lossAttrs = [](const char* mode) { return ir::Attrs{{"reduce", std::string(mode)}}; };

  add("relu", OpKind::Relu, {{3, 4}}, {});
  add("leaky_relu", OpKind::LeakyRelu, {{3, 4}}, {{"alpha", 0.1}});
  add("gelu(erf)", OpKind::Gelu, {{3, 4}}, {{"approximate", int64_t{0}}}, 4);
  add("gelu(tanh)", OpKind::Gelu, {{3, 4}}, {{"approximate", int64_t{1}}}, 4);
  add("silu", OpKind::Silu, {{3, 4}}, {});
  add("softplus", OpKind::Softplus, {{3, 4}}, {}, 30);
  add("reduce_mean(1)", OpKind::ReduceMean, {{2, 3, 4}}, reduceAttrs({1}, 0));
  add("reduce_mean(0,2,keep)", OpKind::ReduceMean, {{2, 3, 4}}, reduceAttrs({0, 2}, 1));
  add("reduce_mean(none)", OpKind::ReduceMean, {{2, 3}}, reduceAttrs({}, 0));
  add("softmax(0)", OpKind::Softmax, {{3, 4}}, {{"axis", int64_t{0}}}, 10);
  add("softmax(1)", OpKind::Softmax, {{2, 3, 4}}, {{"axis", int64_t{1}}}, 10);
  add("log_softmax", OpKind::LogSoftmax, {{3, 5}}, {{"axis", int64_t{1}}}, 10);
  add("logsumexp(1)", OpKind::LogSumExp, {{3, 5}}, reduceAttrs({1}, 0), 10);
  add("logsumexp(0,1,keep)", OpKind::LogSumExp, {{2, 3, 4}}, reduceAttrs({0, 1}, 1), 10);
  add("layer_norm(1)", OpKind::LayerNorm, {{2, 3, 4}, {3, 4}, {3, 4}}, {{"axis", int64_t{1}}, {"eps", 1e-5}});
  add("layer_norm(2)", OpKind::LayerNorm, {{2, 3, 4}, {4}, {4}}, {{"axis", int64_t{2}}, {"eps", 1e-3}});
  add("batch_norm(4d)", OpKind::BatchNorm, {{4, 3, 2, 2}, {3}, {3}}, {{"eps", 1e-5}});
  add("batch_norm(2d)", OpKind::BatchNorm, {{5, 3}, {3}, {3}}, {{"eps", 1e-5}});
  add("batch_norm_infer", OpKind::BatchNormInfer, {{2, 3, 2}, {3}, {3}, {3}, {3}}, {{"eps", 1e-5}});
  add("group_norm", OpKind::GroupNorm, {{2, 4, 3}, {4}, {4}}, {{"groups", int64_t{2}}, {"eps", 1e-5}});
  add("group_norm(4d,1 group)", OpKind::GroupNorm, {{2, 3, 2, 2}, {3}, {3}}, {{"groups", int64_t{1}}, {"eps", 1e-5}});
  for (const char* mode : {"mean", "sum", "none"}) {
    std::string m(mode);
    add("cross_entropy(" + m + ")", OpKind::CrossEntropy, {{4, 5}, {4}}, lossAttrs(mode), 5, {}, ir::DType::i64, 5);
    add("bce_with_logits(" + m + ")", OpKind::BceWithLogits, {{3, 4}, {3, 4}}, lossAttrs(mode), 30);
    add("mse_loss(" + m + ")", OpKind::MseLoss, {{3, 4}, {3, 4}}, lossAttrs(mode));
  }
  add("cross_entropy(3d,i32)", OpKind::CrossEntropy, {{2, 3, 6}, {2, 3}}, lossAttrs("mean"), 5, {}, ir::DType::i32, 6);
  add("attention", OpKind::Attention, {{2, 3, 4}, {2, 5, 4}, {2, 5, 6}}, {{"causal", int64_t{0}}, {"scale", 0.5}});
  add("attention(causal)", OpKind::Attention, {{2, 2, 4, 3}, {2, 2, 4, 3}, {2, 2, 4, 3}},
      {{"causal", int64_t{1}}, {"scale", 0.57}});
  add("attention(causal,3x5)", OpKind::Attention, {{3, 2}, {5, 2}, {5, 4}}, {{"causal", int64_t{1}}, {"scale", 1.0}});
  return samples;
}

}  // namespace weft::passes::testing
