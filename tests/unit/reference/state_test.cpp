#include <gtest/gtest.h>

#include "backends/reference/interpreter.h"
#include "ir/error.h"
#include "ir/parser.h"

using namespace weft;

TEST(RunStep, UpdatesWriteBackIntoState) {
  ir::Graph g = ir::parseGraph(R"(
graph @sgd(%g: f32[2], %lr: f32[]) {
  param %w: f32[2] {init="ones"}
  %0 = mul(%g, %lr) : f32[2]
  %w.next = sub(%w, %0) : f32[2]
  update %w = %w.next
  return w=%w
})");
  ir::TensorData grad(ir::TensorType{ir::DType::f32, {2}});
  grad.set(0, 1.0);
  grad.set(1, -2.0);
  ir::TensorData lr(ir::TensorType{ir::DType::f32, {}});
  lr.set(0, 0.5);
  reference::TensorMap state;
  auto out = reference::runStep(g, {{"g", grad}, {"lr", lr}}, state);
  EXPECT_EQ(out.at("w").get(0), 1.0);  // outputs see the value before the update
  EXPECT_EQ(state.at("w").get(0), 0.5);
  EXPECT_EQ(state.at("w").get(1), 2.0);
  reference::runStep(g, {{"g", grad}, {"lr", lr}}, state);
  EXPECT_EQ(state.at("w").get(0), 0.0);
  EXPECT_EQ(state.at("w").get(1), 3.0);
}

TEST(RunStep, StateAndInputNamesMustNotClash) {
  ir::Graph g = ir::parseGraph(R"(
graph @g(%x: f32[2]) {
  param %w: f32[2] {init="ones"}
  %0 = add(%x, %w) : f32[2]
  return y=%0
})");
  reference::TensorMap state = reference::initialState(g);
  EXPECT_EQ(state.at("w").get(1), 1.0);
  ir::TensorData x(ir::TensorType{ir::DType::f32, {2}});
  EXPECT_THROW(reference::runStep(g, {{"x", x}, {"w", x}}, state), Error);
}
