#pragma once
// Small helpers shared by the pass tests: constants, op counts, exact graph comparison and
// comparison of what two graphs compute.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "backends/reference/interpreter.h"
#include "ir/graph.h"
#include "ir/printer.h"

namespace weft::passes::testing {

/// A constant tensor of `type` whose every element is `value`.
inline ir::TensorDataPtr filled(ir::TensorType type, double value) {
  auto data = std::make_shared<ir::TensorData>(std::move(type));
  for (int64_t i = 0; i < data->numel(); ++i) data->set(i, value);
  return data;
}

/// A constant tensor of `type` holding `values` in row-major order.
inline ir::TensorDataPtr tensor(ir::TensorType type, const std::vector<double>& values) {
  auto data = std::make_shared<ir::TensorData>(std::move(type));
  for (size_t i = 0; i < values.size(); ++i) data->set(static_cast<int64_t>(i), values[i]);
  return data;
}

/// Number of nodes of op `op`.
inline int countOps(const ir::Graph& g, ir::OpKind op) {
  int n = 0;
  for (const auto& node : g.nodes()) n += node.op == op;
  return n;
}

/// Number of nodes whose op has all `flags`.
inline int countFlagged(const ir::Graph& g, uint32_t flags) {
  int n = 0;
  for (const auto& node : g.nodes()) n += ir::opInfo(node.op).has(flags);
  return n;
}

/// The ops of `g` in node order, by name, e.g. {"input", "exp", "add"}.
inline std::vector<std::string> opNames(const ir::Graph& g) {
  std::vector<std::string> names;
  for (const auto& node : g.nodes()) names.emplace_back(ir::opName(node.op));
  return names;
}

/// Asserts two graphs are node-for-node identical (ops, operands, attrs, types, names, locs,
/// outputs) and print the same.
inline void expectSameGraph(const ir::Graph& a, const ir::Graph& b) {
  ASSERT_EQ(a.size(), b.size());
  for (ir::ValueId v = 0; v < a.size(); ++v) {
    const ir::Node &x = a.node(v), &y = b.node(v);
    EXPECT_EQ(x.op, y.op) << "node " << v;
    EXPECT_EQ(x.operands, y.operands) << "node " << v;
    EXPECT_TRUE(x.attrs == y.attrs) << "node " << v;
    EXPECT_EQ(x.type, y.type) << "node " << v;
    EXPECT_EQ(x.name, y.name) << "node " << v;
    EXPECT_EQ(x.loc, y.loc) << "node " << v;
  }
  ASSERT_EQ(a.outputs().size(), b.outputs().size());
  for (size_t i = 0; i < a.outputs().size(); ++i) {
    EXPECT_EQ(a.outputs()[i].name, b.outputs()[i].name);
    EXPECT_EQ(a.outputs()[i].value, b.outputs()[i].value);
  }
  EXPECT_EQ(ir::printGraph(a), ir::printGraph(b));
}

/// Smooth feeds for every input of `g`: input k (in input order) holds sin(step * i + k).
inline reference::TensorMap smoothFeeds(const ir::Graph& g, double step) {
  reference::TensorMap feeds;
  int k = 0;
  for (ir::ValueId v : g.inputs()) {
    ir::TensorData t(g.type(v));
    for (int64_t i = 0; i < t.numel(); ++i) t.set(i, std::sin(step * double(i) + k));
    feeds[g.node(v).name] = std::move(t);
    ++k;
  }
  return feeds;
}

/// `a` and `b` (same inputs and outputs) compute the same on `feeds`, within `tol`.
inline void expectSameResults(const ir::Graph& a, const ir::Graph& b, const reference::TensorMap& feeds, double tol) {
  auto want = reference::run(a, feeds), got = reference::run(b, feeds);
  for (const auto& [name, w] : want) {
    ASSERT_EQ(got.at(name).type, w.type) << name;
    for (int64_t i = 0; i < w.numel(); ++i) EXPECT_NEAR(got.at(name).get(i), w.get(i), tol) << name << " " << i;
  }
}

/// Shorthand attribute makers.
inline ir::Attrs axesAttrs(std::vector<int64_t> axes, bool keepdims) {
  return {{"axes", std::move(axes)}, {"keepdims", int64_t{keepdims}}};
}

}  // namespace weft::passes::testing
