// A LeNet training step (forward, gradients through conv_transpose, conv_weight_grad and
// max_pool_grad, SGD update) compiled for the CPU against the reference interpreter, with
// its convolutions, convolution gradients and pools on oneDNN; and a printed (not asserted)
// timing of a batch-64 LeNet step on both.
#include <gtest/gtest.h>

#include "cpu_test_util.h"

#include <chrono>
#include <cmath>
#include <cstdio>

#include "backends/cpu/executable.h"
#include "models/registry.h"
#include "passes/train_step.h"
#include "runtime/cpu/native_direct_weight_grad.h"
#include "runtime/cpu/native_few_channel_weight_grad.h"
#include "runtime/cpu/native_few_channels.h"
#include "runtime/cpu/native_max_pool.h"

using namespace weft;
using cpu::testing::expectClose;

namespace {

using ir::OpKind;

/// The SGD training step of model `name` at batch `batch`.
ir::Graph trainStep(const std::string& name, int64_t batch) {
  models::BuildOptions options;
  options.batch = batch;
  passes::TrainConfig config;
  config.optimizer.momentum = 0.9;  // optimizer state too
  return passes::buildTrainStep(models::buildModel(name, options), config);
}

/// Images 0.5 + 0.5 sin(0.37 i + salt), labels (i + salt) % classes, learning rate 0.05.
reference::TensorMap stepInputs(const ir::Graph& g, int salt) {
  reference::TensorMap inputs;
  for (ir::ValueId v : g.inputs()) {
    const std::string& name = g.node(v).name;
    ir::TensorData t(g.type(v));
    for (int64_t i = 0; i < t.numel(); ++i)
      t.set(i, name == "lr" ? 0.05 : name == "y" ? double((i + salt) % 5) : 0.5 + 0.5 * std::sin(0.37 * double(i) + salt));
    inputs[name] = t;
  }
  return inputs;
}

/// True when the CPU backend should run node `v` of `g` on oneDNN.
bool isOneDnnNode(const ir::Graph& g, ir::ValueId v) {
  const ir::Node& n = g.node(v);
  switch (n.op) {
    case OpKind::Conv:
    case OpKind::ConvTranspose: return n.type.dtype == ir::DType::f32 && !cpu::runsFewChannelConv(g, v);  // few channels: native
    case OpKind::ConvWeightGrad:
      return n.type.dtype == ir::DType::f32 && !cpu::runsFewChannelWeightGrad(g, v) && !cpu::runsDirectWeightGrad(g, v);
    case OpKind::Matmul:
    case OpKind::AvgPool: return n.type.dtype == ir::DType::f32;
    case OpKind::MaxPool: return n.type.dtype == ir::DType::f32 && !cpu::runsNativeMaxPool(g, v);  // 1-D, 2-D: native
    case OpKind::MaxPoolGrad: return n.type.dtype == ir::DType::f32 && n.type.shape.size() != 4;  // 2-D: native
    case OpKind::Fused: {
      const std::string& kind = ir::AttrReader(n.attrs, n.op).s("kind");
      return kind == "matmul" || (kind == "conv" && !cpu::runsFewChannelConv(g, v));
    }
    default: return false;
  }
}

/// The number of nodes of `g` with op `op`, counting fused contractions of kind `fusedKind`.
int count(const ir::Graph& g, OpKind op, const std::string& fusedKind = "") {
  int n = 0;
  for (const ir::Node& node : g.nodes())
    n += node.op == op ||
         (!fusedKind.empty() && node.op == OpKind::Fused && ir::AttrReader(node.attrs, node.op).s("kind") == fusedKind);
  return n;
}

}  // namespace

TEST(OneDnnTraining, LenetTinyStepMatchesTheReferenceOnOneDnn) {
  ir::Graph g = trainStep("lenet_tiny", 2);
  cpu::Executable exe = cpu::compile(g);
  const ir::Graph& compiled = exe.graph();
  EXPECT_EQ(count(compiled, OpKind::Conv, "conv"), 2);
  EXPECT_EQ(count(compiled, OpKind::ConvWeightGrad), 2);
  EXPECT_EQ(count(compiled, OpKind::ConvTranspose), 1);  // conv2's input gradient (conv1's is not needed)
  EXPECT_EQ(count(compiled, OpKind::MaxPool), 2);
  EXPECT_EQ(count(compiled, OpKind::MaxPoolGrad), 2);
  int expected = 0;
  for (ir::ValueId v = 0; v < compiled.size(); ++v) expected += isOneDnnNode(compiled, v);
  EXPECT_EQ(exe.oneDnnNodeCount(), expected);
  EXPECT_GE(exe.oneDnnNodeCount(), 2 + 2 + 1 + 4);  // and the fc layers' matmuls (the pools and their gradients: native)

  reference::TensorMap refState = reference::initialState(g), cpuState = refState;
  for (int step = 0; step < 3; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    reference::TensorMap inputs = stepInputs(g, step);
    reference::TensorMap want = reference::runStep(g, inputs, refState);
    reference::TensorMap got = cpu::runStep(exe, inputs, cpuState);
    expectClose(got, want, "outputs");
    expectClose(cpuState, refState, "state");
  }
}

TEST(OneDnnTraining, PrintsLenetBatch64StepTiming) {
  ir::Graph g = trainStep("lenet", 64);
  auto start = std::chrono::steady_clock::now();
  cpu::Executable exe = cpu::compile(g);
  double compileSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  reference::TensorMap inputs = stepInputs(g, 0);
  reference::TensorMap state = reference::initialState(g);
  auto time = [](auto&& f, int reps) {
    f();  // warm-up
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
  };
  double reference = time([&] { reference::runStep(g, inputs, state); }, 1);
  double compiled = time([&] { exe.step(inputs); }, 3);
  std::printf("lenet batch 64 training step: reference %.1f ms, cpu::compile %.1f ms (%.1fx), %d oneDNN nodes, "
              "compile %.2f s\n",
              reference * 1e3, compiled * 1e3, reference / compiled, exe.oneDnnNodeCount(), compileSeconds);
  EXPECT_GT(exe.oneDnnNodeCount(), 0);
}
