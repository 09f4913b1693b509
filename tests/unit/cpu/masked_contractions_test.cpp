// The masked-contractions pass on RealNVP, whose coupling layers mask every other feature:
// each of its matmuls, forward and backward, does half the work, and the compiled inference
// and Adam training step still compute what the reference interpreter does.
#include <gtest/gtest.h>

#include "cpu_test_util.h"

#include "backends/cpu/executable.h"
#include "models/families.h"
#include "passes/pass_manager.h"

using namespace weft;

namespace {

/// Multiply-adds of the 2-D matmuls of `g`: M N K of each.
int64_t matmulWork(const ir::Graph& g) {
  int64_t work = 0;
  for (ir::ValueId v = 0; v < g.size(); ++v) {
    const ir::Node& n = g.node(v);
    if (n.op != ir::OpKind::Matmul) continue;
    const ir::Shape& lhs = g.type(n.operands[0]).shape;
    const bool transposed = ir::AttrReader(n.attrs, n.op).i("transpose_lhs", 0) != 0;
    work += n.type.numel() * lhs[transposed ? 0 : 1];
  }
  return work;
}

ir::Graph smallRealnvp(bool training) {
  models::RealnvpConfig c{.batch = 4, .dim = 24, .hidden = 16};
  c.training = training;
  return models::buildRealnvp("realnvp_small", c);
}

ir::Graph adamStep(const ir::Graph& model) {
  passes::TrainConfig config;
  config.optimizer = passes::parseOptimizer("adam");
  return passes::buildTrainStep(model, config);
}

}  // namespace

TEST(MaskedContractions, RealnvpMatmulsDoHalfTheWork) {
  for (bool training : {false, true}) {
    SCOPED_TRACE(training ? "training step" : "inference");
    ir::Graph plain = training ? adamStep(smallRealnvp(true)) : smallRealnvp(false);
    passes::PassManager("strip-stop-gradient,decompose-composites,canonicalize,cse,dce").run(plain);
    ir::Graph masked = plain;
    passes::PassManager("masked-contractions,cse").run(masked);
    EXPECT_GT(matmulWork(plain), 0);
    EXPECT_EQ(2 * matmulWork(masked), matmulWork(plain));
  }
}

TEST(MaskedContractions, RealnvpInferenceMatchesTheReference) {
  ir::Graph g = smallRealnvp(false);
  cpu::Executable exe = cpu::compile(g);
  reference::TensorMap feeds = cpu::testing::sineFeeds(g);
  cpu::testing::expectCloseToLargest(exe.run(feeds), reference::run(g, feeds), 1e-5);
}

TEST(MaskedContractions, RealnvpAdamStepMatchesTheReference) {
  ir::Graph g = adamStep(smallRealnvp(true));
  cpu::Executable exe = cpu::compile(g);
  // Every parameter and moment, including the rows and columns the masks make exactly 0.
  cpu::testing::expectStepMatchesReference(exe, g, 1e-4);
}
