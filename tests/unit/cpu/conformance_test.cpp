// The per-op conformance harness (the ggml test-backend-ops idea): every op of the table runs
// on the compiled CPU backend and on the reference interpreter, and the results must agree.
// Samples: the gradient-check samples (every differentiable op, f64 and converted to f32) plus
// the ops that are not differentiable.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "../passes/gradcheck_samples.h"
#include "backends/cpu/executable.h"

using namespace weft;
using passes::testing::GradSample;
using passes::testing::OperandSpec;

namespace {

/// `s` with every f64 type (inputs, dtype attributes) made f32.
GradSample toF32(const GradSample& s) {
  auto narrow = [](ir::TensorType t) {
    if (t.dtype == ir::DType::f64) t.dtype = ir::DType::f32;
    return t;
  };
  GradSample out{s.label + " [f32]", s.op, ir::Graph("sample_f32"), {}};
  for (const OperandSpec& o : s.operands) out.operands.push_back({narrow(o.type), o.lo, o.hi});
  std::vector<ir::ValueId> map;
  for (const ir::Node& n : s.graph.nodes()) {
    if (n.op == ir::OpKind::Input) {
      map.push_back(out.graph.addInput(n.name, narrow(n.type)));
      continue;
    }
    ir::Attrs attrs = n.attrs;
    for (auto& [name, value] : attrs)
      if (auto* d = std::get_if<ir::DType>(&value); d && *d == ir::DType::f64) *d = ir::DType::f32;
    std::vector<ir::ValueId> operands;
    for (ir::ValueId o : n.operands) operands.push_back(map[static_cast<size_t>(o)]);
    map.push_back(out.graph.addOp(n.op, operands, attrs, n.name));
  }
  for (const auto& o : s.graph.outputs()) out.graph.addOutput(o.name, map[static_cast<size_t>(o.value)]);
  return out;
}

/// Samples of the ops that have no gradient (comparisons, logic, rounding, arg-reductions,
/// sources), in f32 with integer and bool operands where the op takes them.
std::vector<GradSample> nonDifferentiableSamples() {
  using ir::DType;
  using ir::OpKind;
  std::vector<GradSample> samples;
  auto add = [&](const std::string& label, OpKind op, std::vector<OperandSpec> operands, ir::Attrs attrs = {}) {
    GradSample s{label, op, ir::Graph("sample"), operands};
    std::vector<ir::ValueId> values;
    for (size_t i = 0; i < operands.size(); ++i)
      values.push_back(s.graph.addInput("in" + std::to_string(i), operands[i].type));
    s.graph.addOutput("result", s.graph.addOp(op, values, std::move(attrs), "result"));
    samples.push_back(std::move(s));
  };
  OperandSpec f{{DType::f32, {3, 4}}, -3, 3}, row{{DType::f32, {1, 4}}, -3, 3};
  OperandSpec b{{DType::boolean, {3, 4}}, 0, 1}, i{{DType::i32, {3, 4}}, -5, 5};
  for (OpKind op : {OpKind::Sign, OpKind::Floor, OpKind::StopGradient}) add(std::string(ir::opName(op)), op, {f});
  add("sign(i32)", OpKind::Sign, {i});
  add("logical_not", OpKind::LogicalNot, {b});
  for (OpKind op : {OpKind::LogicalAnd, OpKind::LogicalOr}) add(std::string(ir::opName(op)), op, {b, b});
  for (OpKind op : {OpKind::Eq, OpKind::Ne, OpKind::Lt, OpKind::Le, OpKind::Gt, OpKind::Ge}) {
    add(std::string(ir::opName(op)), op, {f, row});
    add(std::string(ir::opName(op)) + "(i32)", op, {i, i});
  }
  add("add(i32)", OpKind::Add, {i, i});
  add("cast(f32->i32)", OpKind::Cast, {f}, {{"dtype", DType::i32}});
  add("cast(i32->f32)", OpKind::Cast, {i}, {{"dtype", DType::f32}});
  for (OpKind op : {OpKind::Argmax, OpKind::Argmin})
    for (int64_t axis : {0, 1}) add(std::string(ir::opName(op)) + " axis " + std::to_string(axis), op, {f}, {{"axis", axis}, {"keepdims", int64_t{0}}});
  OperandSpec labels{{DType::i32, {3, 4}}, 0, 4}, wide{{DType::i64, {5}}, 0, 6};
  add("check_index(i32)", OpKind::CheckIndex, {labels}, {{"limit", int64_t{5}}, {"what", std::string("label")}});
  add("check_index(i64)", OpKind::CheckIndex, {wide}, {{"limit", int64_t{6}}});
  add("iota", OpKind::Iota, {}, {{"shape", std::vector<int64_t>{3, 5}}, {"axis", int64_t{1}}, {"dtype", DType::f32}});
  add("random_uniform", OpKind::RandomUniform, {},
      {{"shape", std::vector<int64_t>{4, 8}}, {"dtype", DType::f32}, {"seed", int64_t{7}}, {"low", -1.0}, {"high", 1.0}});
  add("random_normal", OpKind::RandomNormal, {},
      {{"shape", std::vector<int64_t>{4, 8}}, {"dtype", DType::f32}, {"seed", int64_t{7}}, {"mean", 0.5}, {"std", 2.0}});
  // Large enough to be drawn on several threads (native_steps' fillRandom).
  add("random_normal(8192, f64)", OpKind::RandomNormal, {},
      {{"shape", std::vector<int64_t>{64, 128}}, {"dtype", DType::f64}, {"seed", int64_t{3}}, {"mean", 0.0}, {"std", 1.0}});
  add("random_uniform(8192)", OpKind::RandomUniform, {},
      {{"shape", std::vector<int64_t>{8192}}, {"dtype", DType::f32}, {"seed", int64_t{5}}, {"low", 0.0}, {"high", 1.0}});
  return samples;
}

std::vector<GradSample> allConformanceSamples() {
  std::vector<GradSample> all = passes::testing::primitiveGradSamples();
  for (auto& s : passes::testing::compositeGradSamples()) all.push_back(std::move(s));
  size_t f64count = all.size();
  for (size_t k = 0; k < f64count; ++k) all.push_back(toF32(all[k]));
  for (auto& s : nonDifferentiableSamples()) all.push_back(std::move(s));
  return all;
}

/// Tolerance of the CPU backend against the interpreter: f32 kernels may use fused
/// multiply-adds, other summation orders and polynomial approximations of transcendental
/// functions; the interpreter computes in double and rounds once.
double tolerance(ir::DType t) { return t == ir::DType::f32 ? 2e-5 : 1e-12; }

}  // namespace

TEST(Conformance, EveryOpHasASample) {
  std::set<ir::OpKind> sampled;
  for (const auto& s : allConformanceSamples()) sampled.insert(s.op);
  for (const auto& info : ir::allOps()) {
    if (info.kind == ir::OpKind::Input || info.kind == ir::OpKind::Param || info.kind == ir::OpKind::Constant ||
        info.kind == ir::OpKind::Fused)
      continue;  // bound, persistent, constant data; fused nodes are made by the fusion passes
    EXPECT_TRUE(sampled.count(info.kind)) << "no conformance sample for " << info.name;
  }
}

TEST(Conformance, EveryOpOnTheCpuBackendMatchesTheInterpreter) {
  for (const auto& s : allConformanceSamples()) {
    SCOPED_TRACE(s.label);
    reference::TensorMap feeds = passes::testing::sampleFeeds(s, 5 + static_cast<uint64_t>(s.op));
    reference::RunOptions options{.step = 3};
    ir::TensorData want = reference::run(s.graph, feeds, options).at("result");
    ir::TensorData got;
    try {
      got = cpu::compile(s.graph).run(feeds, options).at("result");
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what();
      continue;
    }
    ASSERT_EQ(got.type, want.type);
    double tol = tolerance(want.type.dtype);
    int failures = 0;
    for (int64_t k = 0; k < want.numel() && failures < 3; ++k) {
      double w = want.get(k), g = got.get(k);
      if (std::isnan(w) && std::isnan(g)) continue;
      if (!(std::fabs(g - w) <= tol * std::max(1.0, std::fabs(w)))) {
        ADD_FAILURE() << "element " << k << ": cpu " << g << ", interpreter " << w;
        ++failures;
      }
    }
  }
}
