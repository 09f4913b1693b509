#pragma once
// Small f64 sample graphs for the gradient checks: each computes `result` from inputs with a
// single node of the op under test, with input ranges that keep the op smooth (positive
// arguments for log/sqrt, indices in range). Primitives are listed here; composites come from
// composite_samples.h.
#include <random>
#include <string>
#include <vector>

#include "backends/reference/interpreter.h"
#include "composite_samples.h"
#include "gradcheck_harness.h"
#include "ir/graph.h"

namespace weft::passes::testing {

/// One operand of a sample: its type and the range its values are drawn from.
struct OperandSpec {
  ir::TensorType type;
  double lo = -2, hi = 2;  ///< floats U[lo, hi]; integers uniform in [lo, hi]; bool 0/1
};

/// A graph whose output `result` is one node of `op`.
struct GradSample {
  std::string label;
  ir::OpKind op;
  ir::Graph graph;
  std::vector<OperandSpec> operands;  ///< one per input, in input order
};

/// Random feeds for a sample.
inline reference::TensorMap sampleFeeds(const GradSample& s, uint64_t seed) {
  std::mt19937_64 rng(seed);
  reference::TensorMap feeds;
  std::vector<ir::ValueId> inputs = s.graph.inputs();
  for (size_t i = 0; i < inputs.size(); ++i) {
    const OperandSpec& spec = s.operands[i];
    feeds.emplace(s.graph.node(inputs[i]).name, randomTensor(spec.type, rng, spec.lo, spec.hi));
  }
  return feeds;
}

/// The names of a sample's float inputs.
inline std::vector<std::string> floatInputs(const ir::Graph& g) {
  std::vector<std::string> names;
  for (ir::ValueId v : g.inputs())
    if (ir::isFloat(g.type(v).dtype)) names.push_back(g.node(v).name);
  return names;
}

/// Every primitive sample (f64).
inline std::vector<GradSample> primitiveGradSamples() {
  using ir::DType;
  using ir::OpKind;
  using ir::Shape;
  std::vector<GradSample> samples;
  auto f64 = [](Shape s, double lo = -2, double hi = 2) { return OperandSpec{{DType::f64, std::move(s)}, lo, hi}; };
  auto index = [](DType t, Shape s, int64_t size) { return OperandSpec{{t, std::move(s)}, 0, double(size - 1)}; };
  auto add = [&](const std::string& label, OpKind op, std::vector<OperandSpec> operands, ir::Attrs attrs = {}) {
    GradSample s{label, op, ir::Graph("sample"), operands};
    std::vector<ir::ValueId> values;
    for (size_t i = 0; i < operands.size(); ++i)
      values.push_back(s.graph.addInput("in" + std::to_string(i), operands[i].type));
    s.graph.addOutput("result", s.graph.addOp(op, values, std::move(attrs), "result", "sample.cpp:1"));
    samples.push_back(std::move(s));
  };
  auto ints = [](std::vector<int64_t> v) { return v; };
  auto reduce = [](std::vector<int64_t> axes, int64_t keep) { return ir::Attrs{{"axes", axes}, {"keepdims", keep}}; };

  // Unary.
  for (OpKind op : {OpKind::Neg, OpKind::Abs, OpKind::Exp, OpKind::Tanh, OpKind::Sigmoid, OpKind::Sin, OpKind::Cos,
                    OpKind::Erf})
    add(std::string(ir::opName(op)), op, {f64({3, 4})});
  for (OpKind op : {OpKind::Log, OpKind::Sqrt, OpKind::Rsqrt}) add(std::string(ir::opName(op)), op, {f64({3, 4}, 0.3, 3)});
  add("exp(scalar)", OpKind::Exp, {f64({})});
  add("cast(f64)", OpKind::Cast, {f64({2, 3})}, {{"dtype", DType::f64}});

  // Binary, with broadcasting.
  std::vector<std::pair<Shape, Shape>> pairs = {{{3, 4}, {3, 4}}, {{3, 1}, {1, 4}}, {{4}, {2, 3, 4}}, {{}, {2, 3}}};
  for (OpKind op : {OpKind::Add, OpKind::Sub, OpKind::Mul, OpKind::Div, OpKind::Pow, OpKind::Maximum, OpKind::Minimum})
    for (const auto& [a, b] : pairs) {
      OperandSpec lhs = op == OpKind::Pow ? f64(a, 0.5, 2) : f64(a);
      OperandSpec rhs = op == OpKind::Div ? f64(b, 0.5, 2) : f64(b);
      add(std::string(ir::opName(op)) + ir::shapeStr(a) + ir::shapeStr(b), op, {lhs, rhs});
    }
  add("select", OpKind::Select, {OperandSpec{{DType::boolean, {3, 4}}}, f64({3, 1}), f64({4})});

  // Reductions.
  for (OpKind op : {OpKind::ReduceSum, OpKind::ReduceMax, OpKind::ReduceMin}) {
    std::string name(ir::opName(op));
    add(name + "(1)", op, {f64({2, 3, 4})}, reduce({1}, 0));
    add(name + "(0,2,keep)", op, {f64({2, 3, 4})}, reduce({0, 2}, 1));
    add(name + "(none)", op, {f64({2, 3})}, reduce({}, 0));
    add(name + "(all)", op, {f64({2, 3})}, reduce({0, 1}, 0));
  }

  // Data movement.
  add("reshape", OpKind::Reshape, {f64({2, 3, 4})}, {{"shape", ints({4, 6})}});
  add("transpose", OpKind::Transpose, {f64({2, 3, 4})}, {{"perm", ints({2, 0, 1})}});
  add("broadcast", OpKind::Broadcast, {f64({3, 1})}, {{"shape", ints({2, 3, 4})}});
  add("broadcast(scalar)", OpKind::Broadcast, {f64({})}, {{"shape", ints({2, 2})}});
  add("slice(strided)", OpKind::Slice, {f64({5, 7})},
      {{"start", ints({1, 0})}, {"limit", ints({5, 7})}, {"stride", ints({2, 3})}});
  add("slice", OpKind::Slice, {f64({4, 6})}, {{"start", ints({0, 1})}, {"limit", ints({3, 5})}, {"stride", ints({1, 1})}});
  add("slice(empty)", OpKind::Slice, {f64({3, 4})},
      {{"start", ints({1, 1})}, {"limit", ints({1, 3})}, {"stride", ints({1, 1})}});
  add("concat", OpKind::Concat, {f64({2, 3}), f64({2, 1}), f64({2, 2})}, {{"axis", int64_t{1}}});
  add("pad", OpKind::Pad, {f64({2, 3})}, {{"low", ints({1, 0})}, {"high", ints({0, 2})}, {"value", 1.5}});
  add("gather(0)", OpKind::Gather, {f64({4, 3}), index(DType::i64, {2, 2}, 4)}, {{"axis", int64_t{0}}});
  add("gather(1,i32)", OpKind::Gather, {f64({2, 5}), index(DType::i32, {3}, 5)}, {{"axis", int64_t{1}}});
  add("scatter_add(0)", OpKind::ScatterAdd, {f64({4, 3}), index(DType::i64, {5}, 4), f64({5, 3})},
      {{"axis", int64_t{0}}});
  add("scatter_add(1)", OpKind::ScatterAdd, {f64({2, 4, 3}), index(DType::i32, {2}, 4), f64({2, 2, 3})},
      {{"axis", int64_t{1}}});

  // Contractions.
  add("matmul", OpKind::Matmul, {f64({3, 4}), f64({4, 5})});
  add("matmul(tl)", OpKind::Matmul, {f64({4, 3}), f64({4, 5})}, {{"transpose_lhs", int64_t{1}}});
  add("matmul(tr)", OpKind::Matmul, {f64({3, 4}), f64({5, 4})}, {{"transpose_rhs", int64_t{1}}});
  add("matmul(tl,tr)", OpKind::Matmul, {f64({4, 3}), f64({5, 4})},
      {{"transpose_lhs", int64_t{1}}, {"transpose_rhs", int64_t{1}}});
  add("matmul(batch)", OpKind::Matmul, {f64({2, 3, 4}), f64({4, 5})});
  add("matmul(batch broadcast,tr)", OpKind::Matmul, {f64({2, 1, 3, 4}), f64({3, 2, 4})}, {{"transpose_rhs", int64_t{1}}});
  auto convAttrs = [&](std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation,
                       int64_t groups) {
    return ir::Attrs{{"stride", stride}, {"padding", padding}, {"dilation", dilation}, {"groups", groups}};
  };
  add("conv(2d,groups)", OpKind::Conv, {f64({2, 4, 5, 5}), f64({6, 2, 3, 3})}, convAttrs({2, 1}, {1, 0}, {1, 2}, 2));
  add("conv(1d,stride 3)", OpKind::Conv, {f64({1, 2, 7}), f64({3, 2, 2})}, convAttrs({3}, {1}, {1}, 1));
  add("conv(3d)", OpKind::Conv, {f64({1, 1, 3, 3, 3}), f64({2, 1, 2, 2, 2})}, convAttrs({1, 1, 1}, {0, 1, 0}, {1, 1, 1}, 1));
  ir::Attrs ct = convAttrs({2, 2}, {1, 0}, {1, 1}, 2);
  ct["output_padding"] = ints({1, 0});
  add("conv_transpose(2d,groups)", OpKind::ConvTranspose, {f64({2, 4, 3, 3}), f64({4, 3, 2, 2})}, ct);
  ir::Attrs ct1 = convAttrs({2}, {1}, {2}, 1);
  ct1["output_padding"] = ints({3});
  add("conv_transpose(1d,output_padding>stride)", OpKind::ConvTranspose, {f64({1, 2, 3}), f64({2, 2, 3})}, ct1);
  auto poolAttrs = [&](std::vector<int64_t> window, std::vector<int64_t> stride, std::vector<int64_t> padding) {
    return ir::Attrs{{"window", window}, {"stride", stride}, {"padding", padding}};
  };
  for (OpKind op : {OpKind::MaxPool, OpKind::AvgPool}) {
    std::string name(ir::opName(op));
    add(name + "(2x2)", op, {f64({2, 2, 4, 4})}, poolAttrs({2, 2}, {2, 2}, {0, 0}));
    add(name + "(3x3,overlap,pad)", op, {f64({1, 2, 5, 6})}, poolAttrs({3, 3}, {2, 2}, {1, 1}));
    add(name + "(1d)", op, {f64({2, 3, 7})}, poolAttrs({3}, {1}, {1}));
  }
  ir::Attrs cwg = convAttrs({2, 1}, {1, 0}, {1, 2}, 2);
  cwg["kernel"] = ints({3, 3});
  add("conv_weight_grad(2d,groups)", OpKind::ConvWeightGrad, {f64({2, 4, 5, 5}), f64({2, 6, 3, 1})}, cwg);
  ir::Attrs cwg1 = convAttrs({3}, {1}, {1}, 1);
  cwg1["kernel"] = ints({2});
  add("conv_weight_grad(1d)", OpKind::ConvWeightGrad, {f64({1, 2, 7}), f64({1, 3, 3})}, cwg1);
  add("conv_weight_grad(1d,short dy)", OpKind::ConvWeightGrad, {f64({1, 2, 7}), f64({1, 3, 2})}, cwg1);
  add("max_pool_grad(2x2)", OpKind::MaxPoolGrad, {f64({1, 2, 4, 4}), f64({1, 2, 2, 2})}, poolAttrs({2, 2}, {2, 2}, {0, 0}));
  add("max_pool_grad(3x3,pad)", OpKind::MaxPoolGrad, {f64({1, 1, 5, 5}), f64({1, 1, 3, 3})},
      poolAttrs({3, 3}, {2, 2}, {1, 1}));
  return samples;
}

/// Every composite sample of composite_samples.h (f64), with its input ranges.
inline std::vector<GradSample> compositeGradSamples() {
  std::vector<GradSample> samples;
  for (auto& c : compositeSamples(ir::DType::f64)) {
    GradSample s{c.label, c.op, c.graph, {}};
    for (ir::ValueId v : c.graph.inputs()) {
      const ir::Node& n = c.graph.node(v);
      if (ir::isInteger(n.type.dtype)) s.operands.push_back({n.type, 0, double(c.classes - 1)});
      else if (n.name == "var") s.operands.push_back({n.type, 0.1, 2.0});
      else s.operands.push_back({n.type, -c.inputScale, c.inputScale});
    }
    samples.push_back(std::move(s));
  }
  return samples;
}

}  // namespace weft::passes::testing
