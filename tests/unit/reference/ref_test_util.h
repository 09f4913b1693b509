#pragma once
/// Helpers of the reference-interpreter tests: tiny tensors, one-op graphs, value checks.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "backends/reference/interpreter.h"
#include "ir/error.h"
#include "ir/graph.h"

namespace reftest {

using namespace weft::ir;
using weft::reference::TensorMap;

/// A tensor of `dtype` and `shape` holding `values` (row-major).
inline TensorData tensor(DType dtype, Shape shape, const std::vector<double>& values) {
  TensorData t(TensorType{dtype, std::move(shape)});
  EXPECT_EQ(static_cast<int64_t>(values.size()), t.numel()) << "test tensor has the wrong number of values";
  for (int64_t i = 0; i < t.numel() && i < static_cast<int64_t>(values.size()); ++i)
    t.set(i, values[static_cast<size_t>(i)]);
  return t;
}

/// An f32 tensor.
inline TensorData f32(Shape shape, const std::vector<double>& values) { return tensor(DType::f32, std::move(shape), values); }
/// An f64 tensor.
inline TensorData f64(Shape shape, const std::vector<double>& values) { return tensor(DType::f64, std::move(shape), values); }
/// An i64 tensor.
inline TensorData i64(Shape shape, const std::vector<double>& values) { return tensor(DType::i64, std::move(shape), values); }

/// An int attribute.
inline AttrValue I(int64_t v) { return v; }
/// A float attribute.
inline AttrValue F(double v) { return v; }
/// An int-list attribute.
inline AttrValue ints(std::vector<int64_t> v) { return v; }
/// A string attribute.
inline AttrValue S(const char* v) { return std::string(v); }

/// Builds `y = op(in0, in1, ...)` with one graph input per operand and runs it.
inline TensorData runOp(OpKind op, const std::vector<TensorData>& operands, Attrs attrs = {}) {
  Graph g("op_test");
  std::vector<ValueId> ids;
  TensorMap feeds;
  for (size_t i = 0; i < operands.size(); ++i) {
    std::string name = "in" + std::to_string(i);
    ids.push_back(g.addInput(name, operands[i].type));
    feeds[name] = operands[i];
  }
  ValueId y = g.addOp(op, ids, std::move(attrs), "y");
  g.addOutput("y", y);
  return weft::reference::run(g, feeds).at("y");
}

/// All elements as doubles.
inline std::vector<double> valuesOf(const TensorData& t) {
  std::vector<double> v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(t.get(i));
  return v;
}

/// Checks the type and every element (within `tol`; NaN matches NaN).
inline void expectTensor(const TensorData& t, DType dtype, const Shape& shape, const std::vector<double>& expected,
                         double tol = 1e-6) {
  EXPECT_EQ(t.type.str(), (TensorType{dtype, shape}).str());
  ASSERT_EQ(t.numel(), static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    double got = t.get(static_cast<int64_t>(i));
    if (std::isnan(expected[i])) EXPECT_TRUE(std::isnan(got)) << "element " << i << " is " << got;
    else if (std::isinf(expected[i])) EXPECT_EQ(got, expected[i]) << "element " << i;
    else EXPECT_NEAR(got, expected[i], tol) << "element " << i;
  }
}

/// Expects `f` to throw weft::Error whose message contains every string of `parts`.
template <class F>
void expectError(F f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "expected a weft::Error";
  } catch (const weft::Error& e) {
    std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' missing in: " << msg;
  }
}

}  // namespace reftest
