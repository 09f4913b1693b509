// Generated steps: Adam's moment updates merge into their parameter's update kernel (one
// kernel writing the parameter and both moments), a moment read elsewhere keeps its own
// step, a GELU and its derivative factor share a kernel, so do a sigmoid and the SiLU
// product reading it, but not siblings whose in-place output LLVM may write before the other
// reads the input, and the merged steps compute what the reference interpreter does.
#include <gtest/gtest.h>

#include <cmath>

#include "cpu_test_util.h"

#include "backends/cpu/executable.h"
#include "ir/parser.h"
#include "ir/verifier.h"
#include "models/registry.h"
#include "passes/train_step.h"
#include "runtime/cpu/generated_steps.h"

using namespace weft;

namespace {

/// The update values the generated steps of `g` (optimized for the CPU) merge, by name.
std::vector<std::string> mergedNames(const ir::Graph& optimized) {
  std::vector<std::string> names;
  for (const cpu::GeneratedStep& step : cpu::generatedSteps(optimized, cpu::planMemory(optimized))) {
    EXPECT_EQ(step.body->outputs().size(), step.extraOutputs.size() + step.sideSums.size() + 1);
    for (ir::ValueId a : step.extraOutputs) names.push_back(optimized.node(a).name);
  }
  return names;
}

/// Steps both ways from the initial state and compares every output and the final state.
void expectStepsMatchTheReference(const ir::Graph& g) {
  cpu::Executable exe = cpu::compile(g);
  reference::TensorMap refState = reference::initialState(g);
  for (int step = 0; step < 2; ++step) {
    reference::TensorMap batch = cpu::testing::trainingBatch(g, step);
    reference::TensorMap want = reference::runStep(g, batch, refState);
    reference::TensorMap got = exe.step(batch);
    for (const auto& [name, t] : want)
      for (int64_t i = 0; i < t.numel(); ++i)
        ASSERT_NEAR(got.at(name).get(i), t.get(i), 1e-4 * std::max(1.0, std::fabs(t.get(i)))) << name << " " << i;
  }
  for (const auto& [name, t] : refState)
    for (int64_t i = 0; i < t.numel(); ++i)
      ASSERT_NEAR(exe.state().at(name).get(i), t.get(i), 1e-4 * std::max(1.0, std::fabs(t.get(i)))) << name << " " << i;
}

}  // namespace

TEST(GeneratedSteps, AdamMomentsMergeIntoTheirParameterUpdate) {
  ir::Graph g = cpu::testing::adamTrainStep("mlp_tiny");
  ir::Graph optimized = cpu::optimizeForCpu(g);
  std::vector<std::string> merged = mergedNames(optimized);
  // mlp_tiny's three layers: a weight and a bias each, every one with its two moments.
  EXPECT_EQ(merged.size(), 12u);
  for (const std::string& name : merged) EXPECT_TRUE(name.rfind("opt.", 0) == 0 && name.find(".next") != std::string::npos) << name;
  cpu::Executable exe = cpu::compile(g);
  EXPECT_EQ(exe.stats().mergedUpdates, 12);
  expectStepsMatchTheReference(g);
}

TEST(GeneratedSteps, AMomentReadElsewhereKeepsItsOwnStep) {
  ir::Graph g = cpu::testing::adamTrainStep("mlp_tiny");
  ir::ValueId moment = *g.find("opt.fc1.weight.m.next");
  g.addOutput("moment", moment);  // read after the run: not only by the parameter's update
  std::vector<std::string> merged = mergedNames(cpu::optimizeForCpu(g));
  EXPECT_EQ(merged.size(), 11u);
  EXPECT_EQ(std::count(merged.begin(), merged.end(), "opt.fc1.weight.m.next"), 0);
  EXPECT_EQ(std::count(merged.begin(), merged.end(), "opt.fc1.weight.v.next"), 1);
  expectStepsMatchTheReference(g);
}

// A batch norm's gradient kernel (the ReLU mask applied to the incoming gradient) also sums
// what the next kernels need: the gradient itself and its product with the normalized
// input, one pass over the data instead of three. The sums' buffers are planned from the
// kernel's step on.
TEST(GeneratedSteps, BatchNormGradientSumsRideAlongTheirKernel) {
  ir::Graph g = cpu::testing::adamTrainStep("resnet_tiny");
  ir::Graph optimized = cpu::optimizeForCpu(g);
  const cpu::MemoryPlan plan = cpu::planMemory(optimized);
  int sums = 0;
  for (const cpu::GeneratedStep& step : cpu::generatedSteps(optimized, plan)) {
    EXPECT_EQ(step.body->outputs().size(), step.extraOutputs.size() + step.sideSums.size() + 1);
    for (ir::ValueId r : step.sideSums) {
      ++sums;
      EXPECT_GT(r, step.value);
      EXPECT_EQ(optimized.node(r).op, ir::OpKind::Fused);
      const cpu::Placement& p = plan.values[static_cast<size_t>(r)];
      bool kept = false;
      for (const auto& [life, offset] : plan.arenaBuffers)
        kept = kept || (offset == p.offset && life.first == step.value && life.last >= r);
      EXPECT_TRUE(kept) << "the sum " << ir::valueRef(optimized, r) << " is not kept from its kernel's step on";
    }
  }
  EXPECT_GE(sums, 8);  // at least the two sums of each block's batch norms' gradients
  cpu::Executable exe = cpu::compile(g);
  EXPECT_EQ(exe.stats().sideSums, sums);
  expectStepsMatchTheReference(g);
}

// gpt_tiny's GELU derivative factors (precompute-derivatives) run in the kernel of the
// forward GELU they follow: one kernel per block writes the activation and the factor, and
// the step still computes what the reference interpreter does.
TEST(GeneratedSteps, AGeluAndItsDerivativeFactorShareAKernel) {
  ir::Graph g = cpu::testing::adamTrainStep("gpt_tiny");
  ir::Graph optimized = cpu::optimizeForCpu(g);
  int siblings = 0;
  for (const cpu::GeneratedStep& step : cpu::generatedSteps(optimized, cpu::planMemory(optimized)))
    for (ir::ValueId a : step.extraOutputs)
      if (optimized.node(a).body->name().find("erf") != std::string::npos) {
        ++siblings;
        EXPECT_NE(optimized.node(step.value).body->name().find("erf"), std::string::npos);
        EXPECT_EQ(step.body->outputs().size(), 2u);
      }
  EXPECT_EQ(siblings, 2);  // two blocks
  cpu::Executable exe = cpu::compile(g);
  EXPECT_EQ(exe.stats().mergedSiblings, 2);
  // One step: the outputs, and the state relative to its largest values. Not the key biases:
  // attention's softmax ignores them, so their gradients are rounding noise, which Adam's
  // first step turns into +-lr either way.
  cpu::testing::expectStepMatchesReference(exe, g, 1e-4, "qkv.bias");
}

// ddpm_tiny's group norms before a SiLU: the sigmoid kernel (its value kept for the backward
// pass) runs in the kernel of the product that reads it, which computes the sigmoid once and
// writes both, and the step still computes what the reference interpreter does.
TEST(GeneratedSteps, ASigmoidRunsInTheSiluKernelThatReadsIt) {
  ir::Graph g = cpu::testing::adamTrainStep("ddpm_tiny");
  ir::Graph optimized = cpu::optimizeForCpu(g);
  int read = 0;
  for (const cpu::GeneratedStep& step : cpu::generatedSteps(optimized, cpu::planMemory(optimized)))
    for (ir::ValueId a : step.extraOutputs) {
      const std::vector<ir::ValueId>& operands = optimized.node(step.value).operands;
      if (optimized.node(a).body->name().find("sigmoid") == std::string::npos ||
          std::find(operands.begin(), operands.end(), a) == operands.end())
        continue;  // Adam's moments, read by their parameter's update, merge too
      ++read;
      int sigmoids = 0;  // computed once, for both outputs
      for (const ir::Node& n : step.body->nodes()) sigmoids += n.op == ir::OpKind::Sigmoid;
      EXPECT_EQ(sigmoids, 1) << ir::valueRef(optimized, a);
    }
  EXPECT_GE(read, 2);
  cpu::Executable exe = cpu::compile(g);
  cpu::testing::expectStepMatchesReference(exe, g, 1e-4);
}

/// Two sibling loop kernels reading %y, the second (%z, written over %y, its last reader)
/// selecting by `condition`.
ir::Graph siblingsOverOneInput(const std::string& condition) {
  return ir::parseGraph(R"(graph @siblings(%x: f32[37]) {
  %one = constant() {value=dense<[1.0]>} : f32[]
  %half = constant() {value=dense<[0.5]>} : f32[]
  %zero = constant() {value=dense<[0.0]>} : f32[]
  %ninf = constant() {value=dense<[-inf]>} : f32[]
  %ax = abs(%x) : f32[37]
  %d = add(%ax, %one) : f32[37]
  %y = div(%x, %d) : f32[37]
  %ay = abs(%y) : f32[37]
  %h = add(%ay, %half) : f32[37]
  %s = sqrt(%h) : f32[37]
  %c = )" + condition + R"( : bool[37]
  %z = select(%c, %h, %zero) : f32[37]
  return s=%s, z=%z
}
)");
}

// Found by differential fuzzing (seed 70716): %z's condition h < h folds to false in LLVM, so
// its stores of 0 (over %y: the kernel's pointers are noalias) became a memset before the
// loop, and %s, merged into the same kernel, read zeros. Such siblings keep their own steps
// (so with h < -inf, which folds as well); with a condition that reads the input they still
// merge.
TEST(GeneratedSteps, SiblingsMergeOnlyWhereTheInPlaceOutputWaitsForItsInput) {
  for (const auto& [condition, merges] :
       {std::pair<std::string, bool>{"lt(%h, %h)", false}, {"lt(%h, %ninf)", false}, {"lt(%h, %one)", true}}) {
    SCOPED_TRACE(condition);
    const ir::Graph g = siblingsOverOneInput(condition);
    const ir::Graph optimized = cpu::optimizeForCpu(g);
    int merged = 0;
    for (const cpu::GeneratedStep& step : cpu::generatedSteps(optimized, cpu::planMemory(optimized)))
      merged += static_cast<int>(step.extraOutputs.size());
    EXPECT_EQ(merged, merges ? 1 : 0);
    reference::TensorMap feeds = cpu::testing::sineFeeds(g);
    cpu::testing::expectCloseToLargest(cpu::compile(g).run(feeds), reference::run(g, feeds), 1e-6);
  }
}
