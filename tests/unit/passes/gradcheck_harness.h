#pragma once
// Finite-difference gradient checks: appends gradients with passes::appendGradients, runs
// them with the reference interpreter, and compares each checked coordinate with the central
// difference (f(x + eps) - f(x - eps)) / 2 eps of f = sum(output * R) for a fixed random R.
// Header-only so that the passes and models test binaries can both use it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/reference/interpreter.h"
#include "ir/verifier.h"
#include "passes/autodiff.h"

namespace weft::passes::testing {

/// How to compare.
struct GradCheckOptions {
  double eps = 1e-6;        ///< central-difference step
  double tolerance = 1e-6;  ///< |analytic - numeric| <= tolerance * max(1, |numeric|)
  int coordinates = -1;     ///< coordinates checked per value: -1 for all, else this many at random
  uint64_t seed = 1;        ///< for R and the chosen coordinates
  reference::RunOptions run;  ///< the random step used by every run
};

/// A tensor of `type` with elements from U[lo, hi] (integers: uniform in [lo, hi]; bool: 0/1).
inline ir::TensorData randomTensor(const ir::TensorType& type, std::mt19937_64& rng, double lo, double hi) {
  ir::TensorData t(type);
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (type.dtype == ir::DType::boolean) {
      t.set(i, static_cast<double>(rng() & 1u));
    } else if (ir::isInteger(type.dtype)) {
      auto lower = static_cast<int64_t>(lo), upper = static_cast<int64_t>(hi);
      t.set(i, static_cast<double>(std::uniform_int_distribution<int64_t>(lower, upper)(rng)));
    } else {
      t.set(i, std::uniform_real_distribution<double>(lo, hi)(rng));
    }
  }
  return t;
}

/// sum(a * b) over all elements.
inline double dotProduct(const ir::TensorData& a, const ir::TensorData& b) {
  double s = 0;
  for (int64_t i = 0; i < a.numel(); ++i) s += a.get(i) * b.get(i);
  return s;
}

/// The value of every name in `names` (inputs or parameters): from `feeds`, or the
/// parameter's initial value.
inline reference::TensorMap withParams(const ir::Graph& g, reference::TensorMap feeds) {
  for (const auto& [name, value] : reference::initialState(g))
    if (!feeds.count(name)) feeds.emplace(name, value);
  return feeds;
}

/// Adds to a copy of `g` the vector-Jacobian product of output `outputName` with a random
/// cotangent R (a constant; none for a rank-0 output) w.r.t. `wrt`, as outputs
/// `__grad.<name>` (zeros for unreachable values). Returns the graph and R.
inline std::pair<ir::Graph, ir::TensorData> withGradients(const ir::Graph& g, const std::string& outputName,
                                                          const std::vector<std::string>& wrt, uint64_t seed) {
  ir::Graph out = g;
  ir::ValueId y = *out.findOutput(outputName);
  ir::TensorType yType = out.type(y);
  std::mt19937_64 rng(seed);
  ir::TensorData r = randomTensor(yType, rng, -1, 1);
  GradRequest req{y, {}, std::nullopt};
  if (yType.rank() == 0) {
    r.set(0, 1.0);
  } else {
    req.cotangent = out.addConstant(std::make_shared<ir::TensorData>(r));
  }
  for (const auto& name : wrt) req.wrt.push_back(*out.find(name));
  GradResult result = appendGradients(out, req);
  for (size_t i = 0; i < wrt.size(); ++i) {
    ir::ValueId v = result.grads[i] ? *result.grads[i]  // unreachable: an explicit zero
                                    : out.addConstant(std::make_shared<ir::TensorData>(out.type(req.wrt[i])));
    out.addOutput("__grad." + wrt[i], v);
  }
  ir::verify(out);
  return {std::move(out), std::move(r)};
}

/// Checks d/dx sum(output * R) for every name in `wrt` against central differences.
inline void expectGradientsMatch(const ir::Graph& g, const std::string& outputName,
                                 const std::vector<std::string>& wrt, const reference::TensorMap& feeds,
                                 const GradCheckOptions& opt = {}) {
  auto [withGrads, r] = withGradients(g, outputName, wrt, opt.seed);
  reference::TensorMap base = withParams(g, feeds);
  reference::TensorMap analytic = reference::run(withGrads, base, opt.run);
  std::mt19937_64 rng(opt.seed * 31 + 7);
  auto f = [&](const reference::TensorMap& in) { return dotProduct(reference::run(g, in, opt.run).at(outputName), r); };
  for (const auto& name : wrt) {
    const ir::TensorData& grad = analytic.at("__grad." + name);
    int64_t n = base.at(name).numel();
    std::vector<int64_t> coords;
    if (opt.coordinates < 0 || opt.coordinates >= n) {
      for (int64_t i = 0; i < n; ++i) coords.push_back(i);
    } else {
      for (int k = 0; k < opt.coordinates; ++k) coords.push_back(std::uniform_int_distribution<int64_t>(0, n - 1)(rng));
    }
    for (int64_t i : coords) {
      reference::TensorMap plus = base, minus = base;
      double x = base.at(name).get(i);
      plus.at(name).set(i, x + opt.eps);
      minus.at(name).set(i, x - opt.eps);
      double numeric = (f(plus) - f(minus)) / (2 * opt.eps);
      double a = grad.get(i);
      EXPECT_NEAR(a, numeric, opt.tolerance * std::max(1.0, std::abs(numeric)))
          << "d" << outputName << "/d" << name << "[" << i << "]";
    }
  }
}

/// A copy of `g` with output `h` = sum over `wrt` of sum(grad_name * R2_name), where grad_name
/// is the VJP of output `outputName` with a random cotangent: checking h's gradient checks
/// second derivatives.
inline ir::Graph withGradientDot(const ir::Graph& g, const std::string& outputName, const std::vector<std::string>& wrt,
                                 uint64_t seed) {
  ir::Graph out = withGradients(g, outputName, wrt, seed).first;
  std::mt19937_64 rng(seed * 17 + 3);
  std::optional<ir::ValueId> h;
  for (const auto& name : wrt) {
    ir::ValueId grad = *out.findOutput("__grad." + name);
    auto r2 = std::make_shared<ir::TensorData>(randomTensor(out.type(grad), rng, -1, 1));
    ir::ValueId prod = out.addOp(ir::OpKind::Mul, {grad, out.addConstant(r2)});
    std::vector<int64_t> axes;
    for (int64_t d = 0; d < out.type(grad).rank(); ++d) axes.push_back(d);
    ir::ValueId s = out.addOp(ir::OpKind::ReduceSum, {prod}, {{"axes", axes}, {"keepdims", int64_t{0}}});
    h = h ? out.addOp(ir::OpKind::Add, {*h, s}) : s;
  }
  out.outputs().clear();
  out.addOutput("h", *h);
  return out;
}

}  // namespace weft::passes::testing
