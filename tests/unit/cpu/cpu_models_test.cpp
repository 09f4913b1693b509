// The compiled CPU backend on whole registered models, against the reference interpreter.
#include <gtest/gtest.h>

#include "cpu_test_util.h"

#include <algorithm>
#include <cmath>

#include "backends/cpu/executable.h"
#include "runtime/cpu/native_conv_pool.h"
#include "runtime/cpu/native_max_pool.h"
#include "runtime/cpu/native_winograd.h"
#include "models/registry.h"
#include "tests/unit/common/model_feeds.h"

using namespace weft;

namespace {

/// The number of f32 nodes of `g` oneDNN should run: contractions, their backward forms,
/// pools, and fused contractions with epilogues, but a max pool that runs natively with its
/// convolution (cpu::convPoolSource) and that convolution, and a native Winograd convolution
/// (cpu::runsWinogradConv, on CPUs where oneDNN has none).
int acceleratedNodes(const ir::Graph& g) {
  using ir::OpKind;
  std::vector<bool> native(static_cast<size_t>(g.size()), false);
  for (ir::ValueId v = 0; v < g.size(); ++v)
    if (ir::ValueId conv = cpu::convPoolSource(g, v); conv >= 0)
      native[static_cast<size_t>(v)] = native[static_cast<size_t>(conv)] = true;
  int n = 0;
  for (ir::ValueId v = 0; v < g.size(); ++v) {
    const ir::Node& node = g.node(v);
    if (node.type.dtype != ir::DType::f32 || native[static_cast<size_t>(v)] || cpu::runsWinogradConv(g, v)) continue;
    switch (node.op) {
      case OpKind::Matmul: case OpKind::Conv: case OpKind::ConvTranspose: case OpKind::ConvWeightGrad:
      case OpKind::AvgPool: case OpKind::MaxPoolGrad: ++n; break;
      case OpKind::MaxPool: n += !cpu::runsNativeMaxPool(g, v); break;
      case OpKind::Fused: {
        auto kind = std::get<std::string>(node.attrs.at("kind"));
        n += kind == "matmul" || kind == "conv";
        break;
      }
      default: break;
    }
  }
  return n;
}

/// Compiles `g`, checks two runs against the reference and each other; returns the executable.
cpu::Executable checkModel(const ir::Graph& g) {
  reference::TensorMap feeds = weft::testing::modelFeeds(g);
  cpu::Executable exe = cpu::compile(g);
  reference::TensorMap first = exe.run(feeds);
  cpu::testing::expectClose(first, reference::run(g, feeds), g.name());
  reference::TensorMap second = exe.run(feeds);  // the same primitives, reused
  EXPECT_EQ(first, second);
  return exe;
}

}  // namespace

TEST(CpuModels, TinyModelsMatchTheReference) {
  int tiny = 0;
  for (const auto& m : models::allModels()) {
    if (m.name.find("_tiny") == std::string::npos) continue;
    SCOPED_TRACE(m.name);
    ++tiny;
    checkModel(m.build());
  }
  EXPECT_GT(tiny, 0);
}

TEST(CpuModels, LenetMatchesTheReferenceWithOneDnnNodes) {
  models::BuildOptions options;
  options.batch = 4;
  ir::Graph g = models::buildModel("lenet", options);
  cpu::Executable exe = checkModel(g);
  EXPECT_GT(exe.oneDnnNodeCount(), 0);
  EXPECT_EQ(exe.oneDnnNodeCount(), acceleratedNodes(exe.graph()));
}

TEST(CpuModels, MlpMatchesTheReferenceWithOneDnnNodes) {
  models::BuildOptions options;
  options.batch = 4;
  ir::Graph g = models::buildModel("mlp", options);
  cpu::Executable exe = checkModel(g);
  EXPECT_GT(exe.oneDnnNodeCount(), 0);
  EXPECT_EQ(exe.oneDnnNodeCount(), acceleratedNodes(exe.graph()));
}

TEST(CpuModels, TinyModelsInEvaluationFormMatchTheReference) {
  // Evaluation form folds batch norm into the convolution's epilogue, so resnet's residual
  // add becomes a oneDNN sum post-op: this covers that path.
  models::BuildOptions options;
  options.training = false;
  for (const auto& m : models::allModels()) {
    if (m.name.find("_tiny") == std::string::npos) continue;
    SCOPED_TRACE(m.name);
    checkModel(m.build(options));
  }
}
