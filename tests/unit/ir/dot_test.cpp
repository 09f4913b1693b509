// Graphviz export: node, edge and output lines.
#include <gtest/gtest.h>

#include "ir/dot.h"
#include "ir/graph.h"

using namespace weft::ir;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST(Dot, NodesEdgesAndOutputs) {
  Graph g("mlp \"tiny\"");
  auto x = g.addInput("x", {DType::f32, {4, 8}});
  auto w = g.addParam("fc1.weight", {DType::f32, {8, 16}}, {{"init", std::string("zeros")}});
  auto c = g.addConstant(std::make_shared<TensorData>(TensorType{DType::f32, {16}}));
  auto mm = g.addOp(OpKind::Matmul, {x, w});
  auto sum = g.addOp(OpKind::Add, {mm, c}, {}, "h");
  g.addOutput("logits", sum);
  g.addOutput("raw", mm);
  std::string dot = toDot(g);

  EXPECT_EQ(dot.rfind("digraph \"mlp \\\"tiny\\\"\" {\n", 0), 0u) << dot;
  EXPECT_TRUE(contains(dot, "  v0 [label=\"%x\\ninput\\nf32[4,8]\", shape=invhouse, style=filled, "
                            "fillcolor=\"#cfe2ff\"];\n")) << dot;
  EXPECT_TRUE(contains(dot, "  v1 [label=\"%fc1.weight\\nparam\\nf32[8,16]\", shape=box, style=filled, "
                            "fillcolor=\"#d1e7dd\"];\n")) << dot;
  EXPECT_TRUE(contains(dot, "  v2 [label=\"%0\\nconstant\\nf32[16]\", shape=box, style=\"rounded,filled\", "
                            "fillcolor=\"#fff3cd\"];\n")) << dot;
  EXPECT_TRUE(contains(dot, "  v3 [label=\"%1\\nmatmul\\nf32[4,16]\", shape=ellipse];\n")) << dot;
  EXPECT_TRUE(contains(dot, "  v4 [label=\"%h\\nadd\\nf32[4,16]\", shape=ellipse];\n")) << dot;
  for (const char* edge : {"  v0 -> v3;\n", "  v1 -> v3;\n", "  v3 -> v4;\n", "  v2 -> v4;\n"})
    EXPECT_TRUE(contains(dot, edge)) << edge << dot;
  EXPECT_FALSE(contains(dot, "v0 -> v4"));
  EXPECT_TRUE(contains(dot, "  out0 [label=\"logits\", shape=doubleoctagon")) << dot;
  EXPECT_TRUE(contains(dot, "  v4 -> out0;\n")) << dot;
  EXPECT_TRUE(contains(dot, "  out1 [label=\"raw\", shape=doubleoctagon")) << dot;
  EXPECT_TRUE(contains(dot, "  v3 -> out1;\n")) << dot;
  EXPECT_EQ(dot.substr(dot.size() - 2), "}\n");
}

TEST(Dot, RepeatedOperandGivesOneEdgePerUse) {
  Graph g("sq");
  auto x = g.addInput("x", {DType::f32, {2}});
  g.addOutput("y", g.addOp(OpKind::Mul, {x, x}));
  std::string dot = toDot(g);
  size_t first = dot.find("  v0 -> v1;\n");
  ASSERT_NE(first, std::string::npos);
  EXPECT_NE(dot.find("  v0 -> v1;\n", first + 1), std::string::npos);
}
