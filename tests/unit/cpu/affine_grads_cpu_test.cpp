// affine-grads-from-weight-grads in the CPU pipeline: gpt's first layer norm reads the data
// (its input needs no gradient), so its scale and shift gradients come from the qkv weight
// gradient's product and the qkv data gradient's matmul is gone; every gradient of the
// compiled graph matches the reference interpreter's.
#include <gtest/gtest.h>

#include "cpu_test_util.h"

#include "backends/cpu/executable.h"
#include "models/families.h"
#include "passes/autodiff.h"
#include "passes/train_step.h"

using namespace weft;

namespace {

/// gpt_tiny's graph with the gradient of its loss w.r.t. every parameter as outputs grad.*.
ir::Graph gptWithGradients() {
  models::GptConfig c{.batch = 2, .seq = 4, .dim = 8, .heads = 2, .ff = 16};
  c.training = true;
  ir::Graph g = models::buildGpt("gpt_grads", c);
  // Norms neither the identity nor shift-free, as they start: gamma's and beta's terms count.
  int64_t seed = 11;
  for (ir::ValueId p : g.params())
    if (ir::Node& n = g.node(p); n.name.find(".ln") != std::string::npos)
      n.attrs = {{"init", std::string("uniform")}, {"scale", 0.8}, {"seed", seed++}};
  const std::vector<ir::ValueId> params = passes::trainableParams(g);
  passes::GradResult grads = passes::appendGradients(g, {*g.findOutput("loss"), params, std::nullopt});
  for (size_t i = 0; i < params.size(); ++i) g.addOutput("grad." + g.node(params[i]).name, grads.grads[i].value());
  return g;
}

/// The matmuls of `g` (plain or fused with their epilogue) that read `param`.
int matmulsReading(const ir::Graph& g, const std::string& param) {
  const ir::ValueId p = g.find(param).value();
  int n = 0;
  for (const ir::Node& node : g.nodes()) {
    const bool matmul = node.op == ir::OpKind::Matmul ||
                        (node.op == ir::OpKind::Fused && ir::AttrReader(node.attrs, node.op).s("kind") == "matmul");
    n += matmul && std::find(node.operands.begin(), node.operands.end(), p) != node.operands.end();
  }
  return n;
}

TEST(AffineGradsCpu, GptsFirstNormNeedsNoDataGradientMatmul) {
  const ir::Graph g = gptWithGradients();
  const ir::Graph optimized = cpu::optimizeForCpu(g);
  EXPECT_EQ(matmulsReading(optimized, "blocks.0.qkv.weight"), 1);  // the forward product only
  EXPECT_EQ(matmulsReading(optimized, "blocks.1.qkv.weight"), 2);  // block 1's input needs its gradient
  const reference::TensorMap feeds = cpu::testing::sineFeeds(g);
  cpu::Executable exe = cpu::compile(g);
  cpu::testing::expectCloseToLargest(exe.run(feeds), reference::run(g, feeds), 1e-4);
}

}  // namespace
