#pragma once
/// Helpers of the generated-kernel tests: deterministic inputs, running a body through a
/// generated kernel and through the reference interpreter, and comparing the two.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/codegen/kernel_compiler.h"
#include "backends/reference/interpreter.h"
#include "../reference/ref_test_util.h"
#include "ir/error.h"
#include "ir/graph.h"

namespace cgtest {

using namespace weft::ir;
using weft::cpu::GeneratedKernel;
using weft::cpu::KernelCompiler;

/// A tensor of `type` with values spread evenly but irregularly over [low, high) (a golden
/// ratio walk; integers truncate, bools follow the walk's lower half).
inline TensorData spread(const TensorType& type, double low, double high, int seed = 0) {
  TensorData t(type);
  for (int64_t i = 0; i < t.numel(); ++i) {
    double walk = 0.6180339887498949 * static_cast<double>(i) + 0.3819660112501051 * seed + 0.05;
    double u = walk - std::floor(walk);
    t.set(i, type.dtype == DType::boolean ? (u < 0.5 ? 1.0 : 0.0) : low + (high - low) * u);
  }
  return t;
}

/// A scalar constant tensor.
inline TensorDataPtr scalarConstant(DType dtype, double v) {
  auto t = std::make_shared<TensorData>(TensorType{dtype, {}});
  t->set(0, v);
  return t;
}

/// The reference interpreter's output of `body` on `inputs` (in body input order).
inline TensorData referenceRun(const Graph& body, const std::vector<TensorData>& inputs) {
  weft::reference::TensorMap feeds;
  std::vector<ValueId> ids = body.inputs();
  for (size_t i = 0; i < ids.size(); ++i) feeds[body.node(ids[i]).name] = inputs[i];
  return weft::reference::run(body, feeds).begin()->second;
}

/// Runs a compiled kernel over its whole parallel range, or in `pieces` calls (each into its
/// own output for a partialSums kernel, added in order as the runtime adds its threads').
inline TensorData runKernel(const GeneratedKernel& kernel, const Graph& body, const std::vector<TensorData>& inputs,
                            int pieces = 1) {
  TensorData out(body.type(body.outputs()[0].value));
  std::vector<const void*> pointers;
  for (const TensorData& t : inputs) pointers.push_back(t.bytes.data());
  int64_t extent = kernel.parallelExtent;
  for (int p = 0; p < pieces; ++p) {
    TensorData part(out.type);
    TensorData& target = kernel.partialSums && p > 0 ? part : out;
    weft::cpu::invoke(kernel, target.bytes.data(), pointers, extent * p / pieces, extent * (p + 1) / pieces);
    if (&target == &part)
      for (int64_t i = 0; i < out.numel(); ++i) out.as<float>()[i] += part.as<float>()[i];
  }
  return out;
}

/// Compiles `body` with `compiler` and runs it.
inline TensorData compileAndRun(KernelCompiler& compiler, const Graph& body, const std::vector<TensorData>& inputs,
                                int pieces = 1) {
  const GeneratedKernel* kernel = compiler.compile({&body}).at(0);
  return runKernel(*kernel, body, inputs, pieces);
}

/// Errors of `got` against `want`: the largest |got - want| / |want| over elements with
/// |want| >= 1e-3, and the largest absolute error over the others.
struct ErrorStats {
  double maxRelative = 0;
  double maxAbsoluteNearZero = 0;
};

/// Compares every element: |got - want| <= tol * max(|want|, 1e-3) (so near zero the bound is
/// absolute); NaN must match NaN and infinities must be equal. Returns the error statistics.
inline ErrorStats expectClose(const TensorData& got, const TensorData& want, double tol) {
  ErrorStats stats;
  EXPECT_EQ(got.type, want.type);
  if (got.type != want.type) return stats;
  int failures = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    double g = got.get(i), w = want.get(i);
    bool ok;
    if (std::isnan(w)) ok = std::isnan(g);
    else if (std::isinf(w)) ok = g == w;
    else {
      double err = std::fabs(g - w);
      ok = err <= tol * std::max(std::fabs(w), 1e-3);
      if (std::fabs(w) >= 1e-3) stats.maxRelative = std::max(stats.maxRelative, err / std::fabs(w));
      else stats.maxAbsoluteNearZero = std::max(stats.maxAbsoluteNearZero, err);
    }
    if (!ok && failures++ < 5) ADD_FAILURE() << "element " << i << ": " << g << " vs reference " << w;
  }
  return stats;
}

/// Builds a body `y = op(in0, in1, ...)` over inputs of `types`.
inline Graph opBody(OpKind op, const std::vector<TensorType>& types, Attrs attrs = {}) {
  Graph g(std::string(opName(op)) + "_body");
  std::vector<ValueId> ids;
  for (size_t i = 0; i < types.size(); ++i) ids.push_back(g.addInput("in" + std::to_string(i), types[i]));
  g.addOutput("out", g.addOp(op, ids, std::move(attrs), "y"));
  return g;
}

/// Expects `f` to throw weft::Error whose message names every string of `parts`.
using reftest::expectError;

}  // namespace cgtest
