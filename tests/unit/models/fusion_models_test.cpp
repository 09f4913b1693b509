// fuse-elementwise on whole models: every registered model at its tiny size, and the training
// steps of mlp_tiny and lenet_tiny, after `decompose-composites,canonicalize,cse,dce,
// fuse-elementwise` verify, round-trip through text, leave no fusible compute outside fused
// nodes, and compute what they computed before fusion on the reference interpreter.
#include <gtest/gtest.h>

#include "models/registry.h"
#include "passes/train_step.h"
#include "tests/unit/passes/fusion_check.h"

using namespace weft;
using namespace weft::passes::testing;

namespace {

bool isTiny(const std::string& name) { return name.size() > 5 && name.substr(name.size() - 5) == "_tiny"; }

/// The train step of model `name` with `optimizer`, fused, checked against the unfused step
/// over three steps: outputs and every updated state tensor (`clipNorm` > 0: clip gradients).
void checkTrainStep(const std::string& name, const std::string& optimizer, double clipNorm = 0) {
  SCOPED_TRACE(name + " step with " + optimizer);
  passes::TrainConfig cfg;
  cfg.optimizer = passes::parseOptimizer(optimizer);
  cfg.optimizer.clipNorm = clipNorm;
  ir::Graph step = passes::buildTrainStep(models::buildModel(name), cfg);
  ir::Graph before;
  ir::Graph fused = cleanedAndFused(step, &before);
  expectOnlyUnfusibleComputeLeft(fused);
  EXPECT_EQ(fused.updates().size(), before.updates().size());
  reference::TensorMap stateBefore, stateAfter;
  for (int i = 0; i < 3; ++i) {
    auto inputs = sampleFeeds(before, i);
    ir::TensorData lr(ir::TensorType{ir::DType::f32, {}});
    lr.set(0, 0.05);
    inputs["lr"] = lr;
    reference::RunOptions options;
    options.step = static_cast<uint64_t>(i);
    expectClose(reference::runStep(before, inputs, stateBefore, options),
                reference::runStep(fused, inputs, stateAfter, options), "outputs of step " + std::to_string(i));
    expectClose(stateBefore, stateAfter, "state after step " + std::to_string(i));
  }
}

}  // namespace

TEST(FusionModels, EveryModelHasATinySize) {
  int tiny = 0;
  for (const auto& m : models::allModels()) {
    if (isTiny(m.name)) ++tiny;
    else EXPECT_NE(models::findModel(m.name + "_tiny"), nullptr) << m.name;
  }
  EXPECT_GE(tiny, 4);
}

TEST(FusionModels, TinyModelsComputeTheSameAfterFusion) {
  for (const auto& m : models::allModels()) {
    if (!isTiny(m.name)) continue;
    for (bool training : {true, false}) {
      SCOPED_TRACE(m.name + (training ? " (training)" : " (eval)"));
      models::BuildOptions options;
      options.training = training;
      ir::Graph before;
      ir::Graph fused = cleanedAndFused(m.build(options), &before);
      expectOnlyUnfusibleComputeLeft(fused);
      EXPECT_FALSE(fusedNodes(fused).empty());
      auto feeds = sampleFeeds(before);
      expectClose(reference::run(before, feeds), reference::run(fused, feeds), m.name);
    }
  }
}

TEST(FusionModels, MlpTinyTrainStepWithAdamAndClipping) { checkTrainStep("mlp_tiny", "adam", 1.0); }

TEST(FusionModels, LenetTinyTrainStepWithMomentum) { checkTrainStep("lenet_tiny", "momentum"); }

TEST(FusionModels, MlpTinyTrainStepWithSgd) { checkTrainStep("mlp_tiny", "sgd"); }
