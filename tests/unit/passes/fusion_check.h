#pragma once
// Helpers of the fusion tests (tests/unit/passes/fusion_test.cpp and the whole-model checks
// in tests/unit/models/fusion_models_test.cpp): pipelines, sample feeds, numeric comparison
// with the reference interpreter, and counts of what fusion made.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "backends/reference/interpreter.h"
#include "ir/parser.h"
#include "ir/printer.h"
#include "ir/verifier.h"
#include "passes/pass_manager.h"

namespace weft::passes::testing {

/// The passes that run before fuse-elementwise.
inline const char* kCleanupPipeline = "decompose-composites,canonicalize,cse,dce";

/// Deterministic feeds for every input of `g`: floats 0.25 + 0.5 sin(i + salt), integers
/// i % 2 (valid labels and token ids), bools alternating.
inline reference::TensorMap sampleFeeds(const ir::Graph& g, int salt = 0) {
  reference::TensorMap feeds;
  for (ir::ValueId v : g.inputs()) {
    ir::TensorData t(g.type(v));
    for (int64_t i = 0; i < t.numel(); ++i)
      t.set(i, ir::isFloat(t.type.dtype) ? 0.25 + 0.5 * std::sin(double(i + salt)) : double(i % 2));
    feeds[g.node(v).name] = t;
  }
  return feeds;
}

/// Every tensor of `want` is in `got` with the same type and values within 1e-6 relative
/// (absolute below magnitude 1).
inline void expectClose(const reference::TensorMap& want, const reference::TensorMap& got, const std::string& what) {
  ASSERT_EQ(want.size(), got.size()) << what;
  for (const auto& [name, w] : want) {
    auto it = got.find(name);
    ASSERT_NE(it, got.end()) << what << ": missing " << name;
    const ir::TensorData& x = it->second;
    ASSERT_EQ(x.type, w.type) << what << ": " << name;
    for (int64_t i = 0; i < w.numel(); ++i) {
      double a = w.get(i), b = x.get(i);
      if (std::isnan(a) && std::isnan(b)) continue;
      ASSERT_LE(std::abs(a - b), 1e-6 * std::max(1.0, std::abs(a)))
          << what << ": " << name << "[" << i << "] was " << a << ", is " << b;
    }
  }
}

/// Prints `g`, parses it back and expects the same text (constants in full).
inline void expectTextRoundTrip(const ir::Graph& g) {
  ir::PrintOptions full;
  full.elideLargeConstants = false;
  std::string text = ir::printGraph(g, full);
  ir::Graph parsed = ir::parseGraph(text, g.name() + ".weft");
  EXPECT_EQ(ir::printGraph(parsed, full), text);
}

/// The fused nodes of `g`, in order.
inline std::vector<const ir::Node*> fusedNodes(const ir::Graph& g) {
  std::vector<const ir::Node*> r;
  for (const auto& n : g.nodes())
    if (n.op == ir::OpKind::Fused) r.push_back(&n);
  return r;
}

/// The `kind` of every fused node, in order.
inline std::vector<std::string> fusedKinds(const ir::Graph& g) {
  std::vector<std::string> kinds;
  for (const ir::Node* n : fusedNodes(g)) kinds.push_back(std::get<std::string>(n->attrs.at("kind")));
  return kinds;
}

/// How many nodes of op `op` all fused bodies of `g` hold together.
inline int countInBodies(const ir::Graph& g, ir::OpKind op) {
  int count = 0;
  for (const ir::Node* n : fusedNodes(g))
    for (const auto& inner : n->body->nodes()) count += inner.op == op;
  return count;
}

/// The ops of a body in order, inputs left out, e.g. {"sub", "exp"}.
inline std::vector<std::string> bodyOps(const ir::Node& fused) {
  std::vector<std::string> ops;
  for (const auto& n : fused.body->nodes())
    if (n.op != ir::OpKind::Input) ops.emplace_back(ir::opName(n.op));
  return ops;
}

/// After fuse-elementwise, compute outside fused nodes is only what cannot fuse (and reshapes).
inline void expectOnlyUnfusibleComputeLeft(const ir::Graph& g) {
  for (ir::ValueId v = 0; v < g.size(); ++v) {
    const ir::Node& n = g.node(v);
    bool fusible = ir::opInfo(n.op).has(ir::kElementwise) || n.op == ir::OpKind::Broadcast ||
                   n.op == ir::OpKind::Transpose || n.op == ir::OpKind::Slice || n.op == ir::OpKind::Pad ||
                   n.op == ir::OpKind::ReduceSum || n.op == ir::OpKind::ReduceMax || n.op == ir::OpKind::ReduceMin;
    EXPECT_FALSE(fusible) << ir::valueRef(g, v) << " (" << ir::opName(n.op) << ") was left outside a fused node";
  }
}

/// `g` after the cleanup pipeline and then fuse-elementwise, verified and round-tripped; the
/// graph before fusion is left in `beforeFusion`.
inline ir::Graph cleanedAndFused(ir::Graph g, ir::Graph* beforeFusion = nullptr) {
  PassManager(kCleanupPipeline).run(g);
  if (beforeFusion) *beforeFusion = g;
  PassManager("fuse-elementwise").run(g);
  EXPECT_EQ(ir::verifyErrors(g), std::vector<std::string>{});
  expectTextRoundTrip(g);
  return g;
}

}  // namespace weft::passes::testing
