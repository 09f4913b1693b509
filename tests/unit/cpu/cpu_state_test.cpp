// The compiled CPU executable holds parameters and optimizer state and steps in place.
#include <gtest/gtest.h>

#include <cmath>

#include "cpu_test_util.h"

#include "backends/cpu/executable.h"
#include "ir/error.h"
#include "models/registry.h"
#include "passes/train_step.h"

using namespace weft;

namespace {

void expectNear(const ir::TensorData& got, const ir::TensorData& want, double rel) {
  ASSERT_EQ(got.type, want.type);
  for (int64_t i = 0; i < want.numel(); ++i)
    ASSERT_NEAR(got.get(i), want.get(i), rel * std::max(1.0, std::fabs(want.get(i)))) << "element " << i;
}

}  // namespace

TEST(CpuState, TrainingStepsMatchTheReferenceStepByStep) {
  for (const char* model : {"mlp_tiny", "lenet_tiny"}) {
    SCOPED_TRACE(model);
    ir::Graph g = cpu::testing::adamTrainStep(model);
    cpu::Executable exe = cpu::compile(g);
    reference::TensorMap refState = reference::initialState(g);
    for (int step = 0; step < 3; ++step) {
      reference::TensorMap batch = cpu::testing::trainingBatch(g, step);
      reference::TensorMap want = reference::runStep(g, batch, refState);
      reference::TensorMap got = exe.step(batch);
      expectNear(got.at("loss"), want.at("loss"), 1e-4);
    }
    reference::TensorMap state = exe.state();
    ASSERT_EQ(state.size(), refState.size());
    for (const auto& [name, t] : refState) {
      SCOPED_TRACE(name);
      expectNear(state.at(name), t, 1e-4);
    }
  }
}

TEST(CpuState, RunStepHelperRoundTripsTheState) {
  ir::Graph g = cpu::testing::adamTrainStep("mlp_tiny");
  cpu::Executable exe = cpu::compile(g);
  reference::TensorMap state = reference::initialState(g), refState = state;
  reference::TensorMap batch = cpu::testing::trainingBatch(g, 1);
  cpu::runStep(exe, batch, state);
  reference::runStep(g, batch, refState);
  for (const auto& [name, t] : refState) expectNear(state.at(name), t, 1e-4);
}

TEST(CpuState, RunDoesNotApplyUpdatesAndFedParametersOverrideTheState) {
  ir::Graph g = cpu::testing::adamTrainStep("mlp_tiny");
  cpu::Executable exe = cpu::compile(g);
  reference::TensorMap before = exe.state();
  reference::TensorMap batch = cpu::testing::trainingBatch(g, 2);
  reference::TensorMap first = exe.run(batch);
  EXPECT_EQ(exe.state(), before);
  EXPECT_EQ(exe.run(batch).at("loss"), first.at("loss"));
  // Feeding zero weights changes the loss without touching the state.
  reference::TensorMap zeroed = batch;
  zeroed["fc1.weight"] = ir::TensorData(before.at("fc1.weight").type);
  EXPECT_NE(exe.run(zeroed).at("loss"), first.at("loss"));
  EXPECT_EQ(exe.state(), before);
}

TEST(CpuState, BadStateAndBadStepFeedsAreErrors) {
  ir::Graph g = cpu::testing::adamTrainStep("mlp_tiny");
  cpu::Executable exe = cpu::compile(g);
  EXPECT_THROW(exe.setState({{"nope", ir::TensorData(ir::TensorType{ir::DType::f32, {1}})}}), Error);
  EXPECT_THROW(exe.setState({{"fc1.weight", ir::TensorData(ir::TensorType{ir::DType::f32, {1}})}}), Error);
  reference::TensorMap batch = cpu::testing::trainingBatch(g, 0);
  batch["fc1.weight"] = exe.state().at("fc1.weight");
  EXPECT_THROW(exe.step(batch), Error);  // parameters come from the state
  reference::TensorMap missing = cpu::testing::trainingBatch(g, 0);
  missing.erase("lr");
  EXPECT_THROW(exe.step(missing), Error);
}

TEST(CpuState, ReferenceStepsAreListedWithTheirReason) {
  // argmax has no oneDNN primitive, generated kernel or native step: the interpreter runs it,
  // and the stats say so (`weft compile --stats` prints them).
  ir::Graph g("argmax_only");
  ir::ValueId x = g.addInput("x", {ir::DType::f32, {3, 4}});
  g.addOutput("i", g.addOp(ir::OpKind::Argmax, {x}, {{"axis", int64_t{1}}, {"keepdims", int64_t{0}}}));
  cpu::Executable exe = cpu::compile(g);
  ASSERT_EQ(exe.stats().referenceKernels, 1);
  ASSERT_EQ(exe.stats().referenceSteps.size(), 1u);
  EXPECT_NE(exe.stats().referenceSteps[0].find("argmax"), std::string::npos) << exe.stats().referenceSteps[0];
  EXPECT_NE(exe.stats().referenceSteps[0].find("no oneDNN primitive"), std::string::npos);
  ir::TensorData in({ir::DType::f32, {3, 4}});
  for (int64_t i = 0; i < 12; ++i) in.set(i, double((i * 7) % 5));
  ir::TensorData out = exe.run({{"x", in}}).at("i");
  EXPECT_EQ(out, reference::run(g, {{"x", in}}).at("i"));
}

TEST(CpuState, RunsBetweenStepsSeeTheSteppedStateAndLeaveIt) {
  // Update values are computed in their parameters' own slots (planMemory's in-place
  // updates): a run between steps overwrites them as it goes and must put them back.
  ir::Graph g = cpu::testing::adamTrainStep("mlp_tiny");
  cpu::Executable exe = cpu::compile(g);
  reference::TensorMap refState = reference::initialState(g);
  for (int step = 0; step < 2; ++step) {
    reference::TensorMap batch = cpu::testing::trainingBatch(g, step);
    reference::runStep(g, batch, refState);
    exe.step(batch);
    reference::TensorMap stepped = exe.state();
    reference::TensorMap ran = exe.run(batch);
    reference::TensorMap wantRun = reference::run(g, [&] {
      reference::TensorMap feeds = batch;
      for (const auto& [name, t] : refState) feeds[name] = t;
      return feeds;
    }());
    expectNear(ran.at("loss"), wantRun.at("loss"), 1e-4);
    EXPECT_EQ(exe.state(), stepped);
  }
  for (const auto& [name, t] : refState) {
    SCOPED_TRACE(name);
    expectNear(exe.state().at(name), t, 1e-4);
  }
}

namespace {

/// An inference graph whose weights are parameters no update writes, y = relu(x w) and
/// z = conv(img, k): its oneDNN steps hold the weights converted into the layouts their
/// primitives read (blocked panels and blocked filters); and channels-last convolutions, a 3x3
/// one and a 4x4 stride-2 conv_transpose, whose weights weft's Winograd steps hold transformed
/// where oneDNN has no Winograd kernels (AVX2 CPUs).
ir::Graph heldWeightsGraph() {
  using ir::OpKind;
  auto f32 = [](ir::Shape s) { return ir::TensorType{ir::DType::f32, std::move(s)}; };
  auto normal = [](int64_t seed) {
    return ir::Attrs{{"init", std::string("normal")}, {"scale", 0.1}, {"seed", seed}};
  };
  ir::Graph g("held_weights");
  ir::ValueId x = g.addInput("x", f32({64, 256}));
  ir::ValueId w = g.addParam("w", f32({256, 128}), normal(1));
  g.addOutput("y", g.addOp(OpKind::Relu, {g.addOp(OpKind::Matmul, {x, w})}));
  ir::ValueId img = g.addInput("img", f32({2, 16, 12, 12}));
  ir::ValueId k = g.addParam("k", f32({32, 16, 3, 3}), normal(2));
  g.addOutput("z", g.addOp(OpKind::Conv, {img, k}, cpu::testing::convAttrs(1, 1, false)));
  ir::ValueId image = g.addInput("image", f32({2, 10, 10, 16}));
  ir::ValueId filter = g.addParam("filter", f32({32, 16, 3, 3}), normal(4));
  g.addOutput("zl", g.addOp(OpKind::Conv, {image, filter}, cpu::testing::convAttrs(1, 1, true)));
  ir::Attrs upAttrs = cpu::testing::convAttrs(2, 1, true);
  upAttrs["output_padding"] = std::vector<int64_t>{0, 0};
  ir::ValueId up = g.addParam("up", f32({16, 16, 4, 4}), normal(5));
  g.addOutput("zu", g.addOp(OpKind::ConvTranspose, {g.addInput("small", f32({2, 7, 7, 16})), up}, upAttrs));
  // A kernel of a parameter alone (tanh(v), a generated kernel): its result is held too.
  ir::ValueId v = g.addParam("v", f32({256, 32}), normal(3));
  g.addOutput("u", g.addOp(OpKind::Matmul, {x, g.addOp(OpKind::Tanh, {v})}));
  return g;
}

/// `feeds` with `state` added (what reference::run reads the parameters from).
reference::TensorMap withState(reference::TensorMap feeds, const reference::TensorMap& state) {
  for (const auto& [name, t] : state) feeds[name] = t;
  return feeds;
}

/// `t` with every element replaced by sin(element + salt).
ir::TensorData reshuffled(ir::TensorData t, double salt) {
  for (int64_t i = 0; i < t.numel(); ++i) t.set(i, std::sin(t.get(i) * 7.0 + salt));
  return t;
}

}  // namespace

TEST(CpuState, HeldWeightsFollowSetStateAndFedParameters) {
  ir::Graph g = heldWeightsGraph();
  cpu::Executable exe = cpu::compile(g);
  EXPECT_GT(exe.stats().heldBytes, 256 * 32 * 4);
  EXPECT_EQ(exe.stats().heldResults, 1);
  if (!cpu::channelBlocksFit()) {
    EXPECT_EQ(exe.stats().nativeWinogradSteps, 2);
  }
  const reference::TensorMap feeds = cpu::testing::sineFeeds(g);
  reference::TensorMap state = exe.state();
  cpu::testing::expectClose(exe.run(feeds), reference::run(g, withState(feeds, state)), "initial state");

  // New weights through setState: the held copies are converted again.
  for (auto& [name, t] : state) t = reshuffled(t, 1.0);
  exe.setState(state);
  cpu::testing::expectClose(exe.run(feeds), reference::run(g, withState(feeds, state)), "after setState");

  // Fed weights override the held ones for one run, even when a feed reuses its buffer with
  // other bytes; the next run without them reads the state again.
  reference::TensorMap fed = feeds;
  fed["w"] = reshuffled(state.at("w"), 2.0);
  fed["k"] = reshuffled(state.at("k"), 3.0);
  fed["v"] = reshuffled(state.at("v"), 4.0);
  fed["filter"] = reshuffled(state.at("filter"), 5.0);
  fed["up"] = reshuffled(state.at("up"), 6.0);
  cpu::testing::expectClose(exe.run(fed), reference::run(g, fed), "fed weights");
  for (const char* name : {"w", "k", "v", "filter", "up"}) {
    ir::TensorData& t = fed.at(name);
    const void* buffer = t.bytes.data();
    for (int64_t i = 0; i < t.numel(); ++i) t.set(i, -t.get(i));
    ASSERT_EQ(t.bytes.data(), buffer);
  }
  cpu::testing::expectClose(exe.run(fed), reference::run(g, fed), "the fed buffer rewritten");
  cpu::testing::expectClose(exe.run(feeds), reference::run(g, withState(feeds, state)), "the state again");
}

TEST(CpuState, TrainingStepsHoldNoWeights) {
  // Parameters that the step updates change every run: their steps convert them as they go,
  // and kernels that read them run every step. Only kernels of constants alone keep their
  // results (a scalar of the optimizer's).
  EXPECT_LE(cpu::compile(cpu::testing::adamTrainStep("mlp_tiny")).stats().heldBytes, 8);
}
